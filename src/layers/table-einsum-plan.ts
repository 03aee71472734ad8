/**
 * The geometry of HGQ2's QEinsumDenseT, as plain data (no tfjs: the importer's EBOPs use it too).
 *
 * An equation '<input>,<kernel>-><output>' (one letter per axis; the first input and output letter is the
 * batch axis; a leading '...' stands for as many axes as the input has beyond its letters) is turned into the
 * "pre-sum" tensor HGQ2 builds: the input broadcast over the kernel letters it lacks (`extra`, which must be
 * output letters), i.e. letters `presum` = input letters + extra letters. Every pre-sum element is one table
 * edge: its input is the input element it was broadcast from, its sub-network is the kernel slice its kernel
 * letters select, and the output sums the edges over the input letters missing from the output (`contract`).
 *
 * Canonical edge order (the tracer's table_sum layout): e = (p·nIn + k)·nOut + o, with p over the output's
 * letters taken from the input (`free`, output order), k over `contract` (input order), o over `extra` (output
 * order).
 */

export interface EinsumTablePlan {
  /** the equation with the ellipsis written out */
  equation: string;
  inSpec: string;
  kerSpec: string;
  outSpec: string;
  /** kernel letters missing from the input (broadcast axes of the pre-sum tensor), output order */
  extra: string;
  /** input letters then extra letters */
  presum: string;
  /** input letters summed away (not in the output), input order */
  contract: string;
  /** output letters that come from the input, batch excluded, output order */
  free: string;
  /** size of every letter but the batch's */
  dims: Record<string, number>;
  presumShape: number[];
  kernelShape: number[];
  outShape: number[];
  P: number;
  nIn: number;
  nOut: number;
  /** HGQ2 `_einsum_free0_size`: product of the input's non-batch axes that are outputs and not kernel axes */
  nParallel: number;
}

const prod = (a: readonly number[]): number => a.reduce((x, y) => x * y, 1);
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Checks an equation's form without shapes (constructor-time errors); throws naming what is wrong. */
export function checkEinsumTableEquation(equation: unknown, who: string): string {
  const bad = (why: string): never => {
    throw new Error(`${who}: equation ${JSON.stringify(equation)} is not supported: ${why}`);
  };
  if (typeof equation !== 'string') return bad('expected a string like "bi,io->bo" or "...i,io->...o"');
  const eq = equation.replace(/\s+/g, '');
  const m = /^((?:\.\.\.)?[a-zA-Z]*),([a-zA-Z]+)->((?:\.\.\.)?[a-zA-Z]*)$/.exec(eq);
  if (!m) return bad("expected '<input>,<kernel>-><output>' with letters and at most a leading '...' on input and output");
  if (m[1]!.startsWith('...') !== m[3]!.startsWith('...')) bad("'...' must lead both the input and the output, or neither");
  return eq;
}

/**
 * The plan for `equation` on a per-sample input shape (batch excluded); `partialOutputShape` is Keras'
 * output_shape: the sizes of the output letters after the batch axis or the ellipsis (null where the input
 * gives the size).
 */
export function planEinsumTable(
  equation: string,
  partialOutputShape: readonly (number | null)[],
  inputShape: readonly number[],
  who: string,
): EinsumTablePlan {
  const eq0 = checkEinsumTableEquation(equation, who);
  const bad = (why: string): never => {
    throw new Error(`${who}: equation '${eq0}' on input [${inputShape}]: ${why}`);
  };
  let [inSpec, rest] = eq0.split(',') as [string, string];
  let [kerSpec, outSpec] = rest.split('->') as [string, string];
  if (inSpec.startsWith('...')) {
    const explicit = inSpec.length - 3;
    const elided = inputShape.length + 1 - explicit;
    if (elided < 1) bad(`the input has rank ${inputShape.length + 1}, fewer axes than the equation's letters`);
    const used = new Set(inSpec + kerSpec + outSpec);
    const fresh = [...LETTERS]
      .filter((c) => !used.has(c))
      .slice(0, elided)
      .join('');
    inSpec = fresh + inSpec.slice(3);
    outSpec = fresh + outSpec.slice(3);
  }
  const nOutLetters = partialOutputShape.length;
  const explicitOut = eq0.split('->')[1]!.startsWith('...') ? eq0.split('->')[1]!.length - 3 : outSpec.length - 1;
  if (nOutLetters !== explicitOut)
    bad(
      `output_shape [${partialOutputShape}] must have ${explicitOut} entries (the output letters after the batch axis or '...')`,
    );
  for (const [s, what] of [
    [inSpec, 'input'],
    [kerSpec, 'kernel'],
    [outSpec, 'output'],
  ] as const)
    if (new Set(s).size !== s.length) bad(`the ${what} letters '${s}' repeat a letter`);
  if (inSpec.length !== inputShape.length + 1) bad(`the input letters '${inSpec}' need an input of rank ${inSpec.length}`);
  const batch = inSpec[0]!;
  if (outSpec[0] !== batch) bad(`the first input and output letters must both be the batch axis ('${batch}')`);
  if (kerSpec.includes(batch)) bad(`the batch letter '${batch}' cannot be a kernel axis`);
  for (const c of kerSpec)
    if (!inSpec.includes(c) && !outSpec.includes(c))
      bad(`kernel letter '${c}' is in neither the input nor the output (HGQ2: kernel-only contract axes are not supported)`);
  for (const c of outSpec) if (!inSpec.includes(c) && !kerSpec.includes(c)) bad(`output letter '${c}' is in no operand`);

  const dims: Record<string, number> = {};
  [...inSpec.slice(1)].forEach((c, a) => (dims[c] = inputShape[a]!));
  const outTail = outSpec.slice(outSpec.length - nOutLetters);
  [...outTail].forEach((c, a) => {
    const d = partialOutputShape[a];
    if (d === null || d === undefined) return;
    if (!Number.isInteger(d) || d < 1) bad(`output_shape entry ${d} for '${c}' must be a positive integer or null`);
    if (dims[c] !== undefined && dims[c] !== d) bad(`output_shape gives '${c}' size ${d}, the input ${dims[c]}`);
    dims[c] = d;
  });
  for (const c of kerSpec + outSpec.slice(1))
    if (dims[c] === undefined) bad(`the size of '${c}' is unknown (give it in output_shape)`);

  const extra = [...outSpec].filter((c) => kerSpec.includes(c) && !inSpec.includes(c)).join('');
  const contract = [...inSpec].filter((c) => !outSpec.includes(c)).join('');
  const free = [...outSpec.slice(1)].filter((c) => inSpec.includes(c)).join('');
  const size = (s: string) => prod([...s].map((c) => dims[c]!));
  const presum = inSpec + extra;
  return {
    equation: `${inSpec},${kerSpec}->${outSpec}`,
    inSpec,
    kerSpec,
    outSpec,
    extra,
    presum,
    contract,
    free,
    dims,
    presumShape: [...presum.slice(1)].map((c) => dims[c]!),
    kernelShape: [...kerSpec].map((c) => dims[c]!),
    outShape: [...outSpec.slice(1)].map((c) => dims[c]!),
    P: size(free),
    nIn: size(contract),
    nOut: size(extra),
    nParallel: size([...inSpec.slice(1)].filter((c) => !kerSpec.includes(c) && outSpec.includes(c)).join('')),
  };
}

/** Row-major flat index of the letter assignment `at` in a tensor with axes `spec` (batch letter skipped). */
function flat(plan: EinsumTablePlan, spec: string, at: Record<string, number>): number {
  let j = 0;
  for (const c of spec.slice(1)) j = j * plan.dims[c]! + at[c]!;
  return j;
}

/** Calls fn(assignment, j) for every assignment of `letters`, row-major, j counting from 0. */
function forEachIndex(plan: EinsumTablePlan, letters: string, fn: (at: Record<string, number>, j: number) => void): void {
  const n = prod([...letters].map((c) => plan.dims[c]!));
  const at: Record<string, number> = {};
  for (let j = 0; j < n; j++) {
    let r = j;
    for (let a = letters.length - 1; a >= 0; a--) {
      const d = plan.dims[letters[a]!]!;
      at[letters[a]!] = r % d;
      r = Math.floor(r / d);
    }
    fn(at, j);
  }
}

/** Per-sample flat indices of the canonical edge order (see the file comment). */
export interface EinsumTableIndex {
  /** [P·nIn]: the input element (p, k) reads */
  inputIndex: Int32Array;
  /** [P·nIn·nOut]: the pre-sum element of edge e (where its quantizer types live) */
  edgePresum: Int32Array;
  /** [P·nOut]: the output element (p, o) is */
  outputIndex: Int32Array;
}

export function einsumTableIndex(plan: EinsumTablePlan): EinsumTableIndex {
  const { P, nIn, nOut } = plan;
  const inputIndex = new Int32Array(P * nIn);
  const edgePresum = new Int32Array(P * nIn * nOut);
  const outputIndex = new Int32Array(P * nOut);
  forEachIndex(plan, plan.free + plan.contract + plan.extra, (at, e) => {
    const o = e % nOut;
    const pk = (e - o) / nOut;
    const p = Math.floor(pk / nIn);
    edgePresum[e] = flat(plan, plan.presum, at);
    if (o === 0) inputIndex[pk] = flat(plan, plan.inSpec, at);
    if (pk % nIn === 0) outputIndex[p * nOut + o] = flat(plan, plan.outSpec, at);
  });
  return { inputIndex, edgePresum, outputIndex };
}
