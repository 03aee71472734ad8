/**
 * The bit-exact emulator of an IR program.
 *
 * `compileProgram` generates one specialized JavaScript function for the program (straight-line code, one
 * sample per loop iteration). When every wire fits in 52 bits (and all exponents are well inside the double
 * range) it computes on float64 values, which is then exact: every op's true result is on its wire's grid
 * and narrower than 53 bits, so float adds, multiplies and power-of-two scalings are exact, and rounding
 * compares y with floor(y) + 1/2 (exact while |y| < 2^52). Otherwise it compiles a BigInt version where
 * every wire is an integer code at one common scale 2^-F. Quant/input specializations use the operand's
 * interval to drop rounding or overflow handling that cannot change the value.
 *
 * `interpretProgram` is the reference: op by op on exact dyadic BigInt values, quantizing with src/fixed's
 * `quantizeCode`. Tests hold the compiled emulator to it.
 */
import { codeToNumber, doubleToDyadic, quantize, quantizeCode, roundRational } from '../fixed/quantize.ts';
import { qiFromKif, qiWidth } from '../fixed/interval.ts';
import type { Kif, OverflowMode, QInterval, RoundMode } from '../fixed/types.ts';
import type { Node, Program } from './types.ts';
import { inputSize, outputSize, validateProgram } from './validate.ts';
import { operandsOf } from './interval.ts';
import { compileWasmKernel, type WasmKernel } from './wasm.ts';

export interface Emulator {
  readonly program: Program;
  /** input elements per sample */
  readonly nIn: number;
  /** output elements per sample */
  readonly nOut: number;
  /**
   * 'wasm-i32x4' when every wire fits 31-bit integer codes (WebAssembly SIMD kernel), else 'float64' when
   * every wire fits the exact float path, else 'bigint'
   */
  readonly mode: 'wasm-i32x4' | 'float64' | 'bigint';
  /** `inputs` is batch × nIn row-major; returns batch × nOut row-major. Exact (outputs are never -0). */
  run(inputs: Float64Array, batch: number): Float64Array;
  /** The generated JavaScript source (for inspection). */
  readonly source: string;
}

export interface CompileOptions {
  /** Force the BigInt version even when the float path would be exact (tests use this). */
  forceBigInt?: boolean;
  /** Do not use the WebAssembly kernel (tests compare the paths). */
  noWasm?: boolean;
  /** Ops per WebAssembly function (default 200). */
  wasmChunkOps?: number;
  /** Ops per generated function; large programs are split so each stays small enough for V8's optimizer. */
  chunkOps?: number;
}

/** Widest wire (bits) computed on float64. */
export const FLOAT_PATH_MAX_WIDTH = 52;

function log2i(step: number): number {
  return Math.round(Math.log2(step));
}

function fmtNum(x: number): string {
  // String() round-trips a double exactly; keep -0 out of the source.
  const s = String(x + 0);
  return s.includes('e') || s.includes('.') || s.includes('Infinity') ? s : s + '.0';
}

/** Whether the float64 path is exact for program p (see the file comment). */
export function floatPathExact(p: Program): boolean {
  for (const node of p.ops) {
    const q = node.qint;
    if (qiWidth(q) > FLOAT_PATH_MAX_WIDTH) return false;
    const e = log2i(q.step);
    if (e < -900 || e > 900) return false;
    if (node.kind === 'input' || node.kind === 'quant') {
      const t = node.type;
      if (t.k + t.i + t.f > FLOAT_PATH_MAX_WIDTH || Math.abs(t.f) > 900 || Math.abs(t.i) > 900) return false;
    }
    if (node.kind === 'copy' || node.kind === 'add') {
      if (Math.abs(node.shift) > 900) return false;
    }
  }
  for (const o of p.out) {
    if (o.wire >= 0 && Math.abs(log2i(p.ops[o.wire]!.qint.step) + o.shift) > 900) return false;
  }
  return true;
}

/** Wires the outputs depend on (dead ops are not emitted). */
export function liveWires(p: Program): Uint8Array {
  const live = new Uint8Array(p.ops.length);
  for (const o of p.out) if (o.wire >= 0) live[o.wire] = 1;
  for (let j = p.ops.length - 1; j >= 0; j--) {
    if (!live[j]) continue;
    for (const a of operandsOf(p.ops[j]!)) live[a] = 1;
  }
  return live;
}

/** Type range [lo, hi] in values (SAT_SYM drops the most negative code); W >= 1 assumed. */
function typeRange(t: Kif, overflow: OverflowMode): [number, number] {
  const r = qiFromKif(t, overflow);
  return [r.min, r.max];
}

// ---------------------------------------------------------------------------------------------------------
// float64 code generation

/** Statements setting `c` to y (a float holding an exact value, |y| < 2^52) rounded to an integer. */
function roundStmts(y: string, c: string, round: RoundMode, tmp: string): string {
  switch (round) {
    case 'TRN':
      return `${c} = Math.floor(${y});`;
    case 'TRN_ZERO':
      return `${c} = Math.trunc(${y});`;
    default: {
      const fl = `${tmp}f`;
      const h = `${tmp}h`;
      const pre = `const ${fl} = Math.floor(${y}), ${h} = ${fl} + 0.5;`;
      switch (round) {
        case 'RND':
          return `${pre} ${c} = ${y} >= ${h} ? ${fl} + 1 : ${fl};`;
        case 'RND_MIN_INF':
          return `${pre} ${c} = ${y} > ${h} ? ${fl} + 1 : ${fl};`;
        case 'RND_CONV':
          return `${pre} ${c} = ${y} > ${h} ? ${fl} + 1 : ${y} < ${h} ? ${fl} : (${fl} % 2 === 0 ? ${fl} : ${fl} + 1);`;
        case 'RND_ZERO':
          return `${pre} ${c} = ${y} > ${h} ? ${fl} + 1 : ${y} < ${h} ? ${fl} : (${y} > 0 ? ${fl} : ${fl} + 1);`;
        case 'RND_INF':
          return `${pre} ${c} = ${y} > ${h} ? ${fl} + 1 : ${y} < ${h} ? ${fl} : (${y} > 0 ? ${fl} + 1 : ${fl});`;
      }
    }
  }
  throw new Error(`unknown rounding mode ${String(round)}`);
}

/** Statements wrapping integer code `c` into type t's W bits (two's complement when k = 1). */
function wrapStmts(c: string, t: Kif): string {
  const W = t.k + t.i + t.f;
  const K = t.k === 1 ? 2 ** (W - 1) : 0;
  return `${c} = ${c} - Math.floor((${c} + ${fmtNum(K)}) * ${fmtNum(2 ** -W)}) * ${fmtNum(2 ** W)};`;
}

/**
 * Float code for quantizing the on-grid value `x` (interval qa) to t. Uses qa to skip rounding when x is
 * already on t's grid and overflow handling when x is inside t's range.
 */
function quantFloat(v: string, x: string, qa: QInterval, t: Kif, round: RoundMode, overflow: OverflowMode, tmp: string): string {
  const W = t.k + t.i + t.f;
  if (W <= 0 || (qa.min === 0 && qa.max === 0)) return `const ${v} = 0;`;
  const [lo, hi] = typeRange(t, overflow);
  const needOv = qa.min < lo || qa.max > hi;
  const needRound = qa.step < 2 ** -t.f;
  const sc = fmtNum(2 ** t.f);
  const isc = fmtNum(2 ** -t.f);
  if (overflow === 'WRAP') {
    if (!needRound && !needOv) return `const ${v} = ${x};`;
    const c = `${tmp}c`;
    let s = `let ${c}; `;
    if (needRound) s += `{ const ${tmp}y = ${x} * ${sc}; ${roundStmts(`${tmp}y`, c, round, tmp)} } `;
    else s += `${c} = ${x} * ${sc}; `;
    if (needOv) s += wrapStmts(c, t);
    return `${s} const ${v} = ${c} * ${isc};`;
  }
  // SAT / SAT_SYM: clip first (the range ends are on t's grid), then round
  let xc = x;
  let s = '';
  if (needOv) {
    xc = `${tmp}x`;
    s += `const ${xc} = ${x} < ${fmtNum(lo)} ? ${fmtNum(lo)} : ${x} > ${fmtNum(hi)} ? ${fmtNum(hi)} : ${x}; `;
  }
  if (!needRound) return `${s}const ${v} = ${xc};`;
  const c = `${tmp}c`;
  return `${s}let ${c}; { const ${tmp}y = ${xc} * ${sc}; ${roundStmts(`${tmp}y`, c, round, tmp)} } const ${v} = ${c} * ${isc};`;
}

/** Float code for an input op: raw double x (finite) → quantized, with src/fixed's `quantize` as the fallback. */
function inputFloat(v: string, x: string, t: Kif, round: RoundMode, overflow: OverflowMode, tmp: string, tname: string): string {
  const W = t.k + t.i + t.f;
  if (W <= 0) return `const ${v} = 0;`;
  const y = `${tmp}y`;
  const c = `${tmp}c`;
  const slow = `Q(${x}, ${tname}, '${round}', '${overflow}')`;
  let fast: string;
  if (overflow === 'WRAP') {
    fast = `${roundStmts(y, c, round, tmp)} ${wrapStmts(c, t)}`;
  } else {
    const hiC = 2 ** (t.i + t.f) - 1;
    const loC = t.k === 0 ? 0 : overflow === 'SAT_SYM' ? -hiC : -hiC - 1;
    fast = `if (${y} >= ${fmtNum(hiC)}) ${c} = ${fmtNum(hiC)}; else if (${y} <= ${fmtNum(loC)}) ${c} = ${fmtNum(loC)}; else { ${roundStmts(y, c, round, tmp)} }`;
  }
  const head = `let ${v}; { const ${y} = ${x} * ${fmtNum(2 ** t.f)}; let ${c}; `;
  const tail = `${v} = ${c} * ${fmtNum(2 ** -t.f)}; }`;
  if (t.f >= 0) {
    // scaling up by 2^f loses no bits (a tiny y rounds like the exact value: it is never a tie); only
    // |y| >= 2^52 (possible under WRAP) needs the reference
    if (overflow !== 'WRAP') return `${head}${fast} ${tail}`;
    return `${head}if (Math.abs(${y}) < 4503599627370496) { ${fast} } else ${c} = ${slow} * ${fmtNum(2 ** t.f)}; ${tail}`;
  }
  // scaling down may underflow: fast path while |y| < 2^52 and y is a normal double, or x = 0
  return (
    `${head}const ${tmp}a = Math.abs(${y}); ` +
    `if ((${tmp}a < 4503599627370496 && ${tmp}a >= ${fmtNum(2 ** -1000)}) || ${x} === 0) { ${fast} } ` +
    `else ${c} = ${slow} * ${fmtNum(2 ** t.f)}; ${tail}`
  );
}

/** What the code of one op is written against: the program, how to name a wire and an input, the constants. */
interface OpCodeContext {
  p: Program;
  val: (w: number) => string;
  consts: Map<string, unknown>;
  inp: (idx: number) => string;
}

function floatOpCode({ p, val, consts, inp }: OpCodeContext, j: number): string {
  const node = p.ops[j]!;
  const v = `v${j}`;
  const tmp = `t${j}`;
  switch (node.kind) {
    case 'input': {
      const tname = `T${j}`;
      consts.set(tname, { ...node.type });
      return inputFloat(v, inp(node.index), node.type, node.round, node.overflow, tmp, tname);
    }
    case 'const':
      return `const ${v} = ${fmtNum(node.value)};`;
    case 'copy':
      return node.shift === 0 ? `const ${v} = ${val(node.a)};` : `const ${v} = ${val(node.a)} * ${fmtNum(2 ** node.shift)};`;
    case 'add': {
      const b = node.shift === 0 ? val(node.b) : `${val(node.b)} * ${fmtNum(2 ** node.shift)}`;
      return `const ${v} = ${val(node.a)} ${node.sub ? '-' : '+'} ${b};`;
    }
    case 'neg':
      return `const ${v} = -${val(node.a)};`;
    case 'addc':
      return `const ${v} = ${val(node.a)} + ${fmtNum(node.value)};`;
    case 'relu':
      return `const ${v} = ${val(node.a)} > 0 ? ${val(node.a)} : 0;`;
    case 'quant':
      return quantFloat(v, val(node.a), p.ops[node.a]!.qint, node.type, node.round, node.overflow, tmp);
    case 'mux':
      return `const ${v} = ${val(node.cond)} < 0 ? ${val(node.a)} : ${val(node.b)};`;
    case 'mul':
      return `const ${v} = ${val(node.a)} * ${val(node.b)};`;
    case 'lut': {
      const q = p.ops[node.a]!.qint;
      const tname = `L${j}`;
      consts.set(
        tname,
        Float64Array.from(node.table, (x) => x + 0),
      );
      if (q.min === q.max) return `const ${v} = ${tname}[0];`;
      return `const ${v} = ${tname}[(${val(node.a)} - ${fmtNum(q.min)}) * ${fmtNum(1 / q.step)}];`;
    }
    case 'min':
      return `const ${v} = ${val(node.a)} < ${val(node.b)} ? ${val(node.a)} : ${val(node.b)};`;
    case 'max':
      return `const ${v} = ${val(node.a)} > ${val(node.b)} ? ${val(node.a)} : ${val(node.b)};`;
  }
}

function floatOutCode(p: Program, k: number, val: (w: number) => string): string {
  const o = p.out[k]!;
  if (o.wire < 0) return `out[ob + ${k}] = 0;`;
  const m = (o.neg ? -1 : 1) * 2 ** o.shift;
  return m === 1 ? `out[ob + ${k}] = ${val(o.wire)} + 0;` : `out[ob + ${k}] = ${val(o.wire)} * ${fmtNum(m)} + 0;`;
}

// ---------------------------------------------------------------------------------------------------------
// BigInt code generation: every wire is an integer code at scale 2^-F (F = the finest exponent in the program)

function bigLit(x: bigint): string {
  return `${x}n`;
}

/** value (a finite double on the 2^-F grid) as its code at scale 2^-F */
function codeAt(value: number, F: number): bigint {
  if (value === 0) return 0n;
  const { m, e } = doubleToDyadic(value);
  const s = e + F;
  if (s < 0) throw new Error(`internal: ${value} is not on the 2^-${F} grid`);
  return m << BigInt(s);
}

function bigOpCode({ p, val, consts, inp }: OpCodeContext, j: number, F: number): string {
  const node = p.ops[j]!;
  const v = `v${j}`;
  const shiftCode = (x: string, s: number): string => (s === 0 ? x : s > 0 ? `(${x} << ${s}n)` : `(${x} >> ${-s}n)`);
  switch (node.kind) {
    case 'input': {
      const t = node.type;
      if (t.k + t.i + t.f <= 0) return `const ${v} = 0n;`;
      const tname = `T${j}`;
      consts.set(tname, { ...t });
      return `const ${v} = ${shiftCode(`QC(${inp(node.index)}, ${tname}, '${node.round}', '${node.overflow}')`, F - t.f)};`;
    }
    case 'const':
      return `const ${v} = ${bigLit(codeAt(node.value, F))};`;
    case 'copy':
      return `const ${v} = ${shiftCode(val(node.a), node.shift)};`;
    case 'add':
      return `const ${v} = ${val(node.a)} ${node.sub ? '-' : '+'} ${shiftCode(val(node.b), node.shift)};`;
    case 'neg':
      return `const ${v} = -${val(node.a)};`;
    case 'addc':
      return `const ${v} = ${val(node.a)} + ${bigLit(codeAt(node.value, F))};`;
    case 'relu':
      return `const ${v} = ${val(node.a)} > 0n ? ${val(node.a)} : 0n;`;
    case 'quant': {
      const t = node.type;
      const W = t.k + t.i + t.f;
      const qa = p.ops[node.a]!.qint;
      if (W <= 0 || (qa.min === 0 && qa.max === 0)) return `const ${v} = 0n;`;
      const d = F - t.f; // >= 0: F includes every quant type's f
      const x = val(node.a);
      let s = '';
      let xc = x;
      if (node.overflow !== 'WRAP') {
        const [lo, hi] = typeRange(t, node.overflow);
        xc = `c${j}`;
        s += `const ${xc} = ${x} < ${bigLit(codeAt(lo, F))} ? ${bigLit(codeAt(lo, F))} : ${x} > ${bigLit(codeAt(hi, F))} ? ${bigLit(codeAt(hi, F))} : ${x}; `;
      }
      // code at scale 2^-f
      let code = d === 0 ? xc : `RR(${xc}, ${bigLit(1n << BigInt(d))}, '${node.round}')`;
      if (node.overflow === 'WRAP') code = t.k === 1 ? `BigInt.asIntN(${W}, ${code})` : `BigInt.asUintN(${W}, ${code})`;
      return `${s}const ${v} = ${shiftCode(code, d)};`;
    }
    case 'mux':
      return `const ${v} = ${val(node.cond)} < 0n ? ${val(node.a)} : ${val(node.b)};`;
    case 'mul':
      return `const ${v} = ${shiftCode(`(${val(node.a)} * ${val(node.b)})`, -F)};`;
    case 'lut': {
      const q = p.ops[node.a]!.qint;
      const tname = `L${j}`;
      consts.set(
        tname,
        node.table.map((x) => codeAt(x, F)),
      );
      if (q.min === q.max) return `const ${v} = ${tname}[0];`;
      const sh = log2i(q.step) + F;
      return `const ${v} = ${tname}[Number((${val(node.a)} - ${bigLit(codeAt(q.min, F))}) >> ${sh}n)];`;
    }
    case 'min':
      return `const ${v} = ${val(node.a)} < ${val(node.b)} ? ${val(node.a)} : ${val(node.b)};`;
    case 'max':
      return `const ${v} = ${val(node.a)} > ${val(node.b)} ? ${val(node.a)} : ${val(node.b)};`;
  }
}

function bigOutCode(p: Program, k: number, F: number, val: (w: number) => string): string {
  const o = p.out[k]!;
  if (o.wire < 0) return `out[ob + ${k}] = 0;`;
  return `out[ob + ${k}] = OUT(${o.neg ? '-' : ''}${val(o.wire)}, ${F - o.shift}, s, ${k});`;
}

// ---------------------------------------------------------------------------------------------------------
// assembly

function badInput(s: number, j: number, x: number): never {
  throw new RangeError(
    `input sample ${s}, element ${j} is ${x}: the emulator needs finite numbers (check the input file for NaN/Inf)`,
  );
}

function outBig(code: bigint, f: number, s: number, k: number): number {
  const v = codeToNumber(code, f);
  if (v === null) throw new RangeError(`output ${k} of sample ${s} (${code}·2^${-f}) is not exactly representable as a float64`);
  return v + 0;
}

/**
 * Runs program p on `inputs` (samples × inputs per sample, row-major) and returns samples × outputs, exactly.
 * Compiles the program on every call: to run it many times, keep `compileProgram(p)` and call its `run`.
 */
export function emulate(p: Program, inputs: ArrayLike<number>): Float64Array {
  const em = compileProgram(p);
  const batch = em.nIn === 0 ? 0 : inputs.length / em.nIn;
  if (!Number.isInteger(batch))
    throw new RangeError(`emulate: ${inputs.length} input values are not a whole number of samples of ${em.nIn} values`);
  return em.run(inputs instanceof Float64Array ? inputs : Float64Array.from(inputs), batch);
}

export function compileProgram(p: Program, opts: CompileOptions = {}): Emulator {
  validateProgram(p);
  const nIn = inputSize(p);
  const nOut = outputSize(p);
  const mode: 'float64' | 'bigint' = !opts.forceBigInt && floatPathExact(p) ? 'float64' : 'bigint';
  const live = liveWires(p);
  if (mode === 'float64' && !opts.noWasm) {
    const kernel = compileWasmKernel(p, live, opts.wasmChunkOps);
    if (kernel) return wasmEmulator(p, nIn, nOut, kernel);
  }
  const chunkOps = Math.max(1, opts.chunkOps ?? 2000);
  let F = -Infinity;
  if (mode === 'bigint') {
    for (const node of p.ops) {
      F = Math.max(F, -log2i(node.qint.step));
      if (node.kind === 'input' || node.kind === 'quant') F = Math.max(F, node.type.f);
    }
    if (!Number.isFinite(F)) F = 0;
  }
  const consts = new Map<string, unknown>();
  const order: number[] = [];
  for (let j = 0; j < p.ops.length; j++) if (live[j]) order.push(j);

  // Split the live ops into chunks; a wire used by a later chunk goes through the per-sample array w.
  const chunkOf = new Int32Array(p.ops.length).fill(-1);
  order.forEach((j, n) => (chunkOf[j] = Math.floor(n / chunkOps)));
  const nChunks = Math.max(1, Math.ceil(order.length / chunkOps));
  const spilled = new Uint8Array(p.ops.length);
  for (const j of order) for (const a of operandsOf(p.ops[j]!)) if (chunkOf[a] !== chunkOf[j]) spilled[a] = 1;
  for (const o of p.out) if (o.wire >= 0 && chunkOf[o.wire] !== nChunks - 1) spilled[o.wire] = 1;

  const inp = (idx: number): string => `inp[ib + ${idx}]`;
  const chunkSources: string[] = [];
  for (let c = 0; c < nChunks; c++) {
    const lines: string[] = [];
    const loaded = new Set<number>();
    const val = (w: number): string => {
      if (chunkOf[w] !== c && !loaded.has(w)) {
        loaded.add(w);
        lines.push(`const v${w} = w[${w}];`);
      }
      return `v${w}`;
    };
    const cx: OpCodeContext = { p, val, consts, inp };
    for (const j of order.slice(c * chunkOps, (c + 1) * chunkOps)) {
      const code = mode === 'float64' ? floatOpCode(cx, j) : bigOpCode(cx, j, F);
      lines.push(code);
      if (spilled[j]) lines.push(`w[${j}] = v${j};`);
    }
    if (c === nChunks - 1) {
      for (let k = 0; k < nOut; k++) lines.push(mode === 'float64' ? floatOutCode(p, k, val) : bigOutCode(p, k, F, val));
    }
    chunkSources.push(`function chunk${c}(w, inp, ib, out, ob, s) {\n${lines.join('\n')}\n}`);
  }
  const driver = `
return function run(inp, out, batch, w) {
  for (let s = 0; s < batch; s++) {
    const ib = s * ${nIn}, ob = s * ${nOut};
    for (let j = 0; j < ${nIn}; j++) { const x = inp[ib + j]; if (x - x !== 0) BAD(s, j, x); }
${chunkSources.map((_, c) => `    chunk${c}(w, inp, ib, out, ob, s);`).join('\n')}
  }
};`;
  const names = ['Q', 'QC', 'RR', 'BAD', 'OUT', ...consts.keys()];
  const values = [quantize, quantizeCode, roundRational, badInput, outBig, ...consts.values()];
  const source = `'use strict';\n${chunkSources.join('\n')}\n${driver}`;
  const factory = new Function(...names, source) as (
    ...args: unknown[]
  ) => (inp: Float64Array, out: Float64Array, batch: number, w: unknown[] | Float64Array) => void;
  const fn = factory(...values);
  return {
    program: p,
    nIn,
    nOut,
    mode,
    source,
    run(inputs: Float64Array, batch: number): Float64Array {
      if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`run: batch must be a non-negative integer, got ${batch}`);
      if (inputs.length !== batch * nIn) {
        throw new RangeError(`run: expected ${batch} × ${nIn} = ${batch * nIn} input values, got ${inputs.length}`);
      }
      const out = new Float64Array(batch * nOut);
      const w = mode === 'float64' ? new Float64Array(p.ops.length) : new Array<bigint>(p.ops.length).fill(0n);
      fn(inputs, out, batch, w);
      return out;
    },
  };
}

/** Samples per kernel call (bounds the kernel's memory). */
const WASM_SLICE = 16384;

function wasmEmulator(p: Program, nIn: number, nOut: number, kernel: WasmKernel): Emulator {
  const nK = kernel.inputOps.length;
  // JavaScript quantizes the raw inputs (exactly, with src/fixed's quantize as the fallback) into codes,
  // four samples interleaved per vector: codes[(block·nK + k)·4 + lane]
  const consts = new Map<string, unknown>();
  const lines: string[] = [];
  kernel.inputOps.forEach((j, k) => {
    const node = p.ops[j]! as Node & { kind: 'input' };
    const tname = `T${j}`;
    consts.set(tname, { ...node.type });
    lines.push(inputFloat(`v${j}`, `inp[ib + ${node.index}]`, node.type, node.round, node.overflow, `t${j}`, tname));
    lines.push(`codes[cb + ${k * 4}] = v${j} * ${fmtNum(2 ** -kernel.inputScales[k]!)};`);
  });
  const src = `'use strict';
return function pre(inp, codes, s0, count) {
  for (let s = s0; s < s0 + count; s++) {
    const ib = s * ${nIn}, r = s - s0, cb = (r >> 2) * ${nK * 4} + (r & 3);
    for (let j = 0; j < ${nIn}; j++) { const x = inp[ib + j]; if (x - x !== 0) BAD(s, j, x); }
${lines.join('\n')}
  }
};`;
  const pre = new Function('Q', 'BAD', ...consts.keys(), src)(quantize, badInput, ...consts.values()) as (
    inp: Float64Array,
    codes: Int32Array,
    s0: number,
    count: number,
  ) => void;
  return {
    program: p,
    nIn,
    nOut,
    mode: 'wasm-i32x4',
    source: src,
    run(inputs: Float64Array, batch: number): Float64Array {
      if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`run: batch must be a non-negative integer, got ${batch}`);
      if (inputs.length !== batch * nIn) {
        throw new RangeError(`run: expected ${batch} × ${nIn} = ${batch * nIn} input values, got ${inputs.length}`);
      }
      const out = new Float64Array(batch * nOut);
      for (let s0 = 0; s0 < batch; s0 += WASM_SLICE) {
        const count = Math.min(WASM_SLICE, batch - s0);
        const nBlocks = Math.ceil(count / 4);
        const codes = kernel.prepare(nBlocks);
        codes.fill(0); // padding lanes: input code 0 is a valid input
        pre(inputs, codes, s0, count);
        out.set(kernel.exec(nBlocks).subarray(0, count * nOut), s0 * nOut);
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reference interpreter: exact dyadic values m·2^e, op by op.

export interface Dyadic {
  m: bigint;
  e: number;
}

const ZERO: Dyadic = { m: 0n, e: 0 };

function dy(x: number): Dyadic {
  return doubleToDyadic(x);
}
function align(a: Dyadic, b: Dyadic): [bigint, bigint, number] {
  const e = Math.min(a.e, b.e);
  return [a.m << BigInt(a.e - e), b.m << BigInt(b.e - e), e];
}
function dAdd(a: Dyadic, b: Dyadic): Dyadic {
  const [x, y, e] = align(a, b);
  return { m: x + y, e };
}
function dNeg(a: Dyadic): Dyadic {
  return { m: -a.m, e: a.e };
}
function dCmp(a: Dyadic, b: Dyadic): number {
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}
function dShift(a: Dyadic, s: number): Dyadic {
  return { m: a.m, e: a.e + s };
}

/** The exact value as a number, or null when it is not a double. */
export function dyadicToNumber(a: Dyadic): number | null {
  const v = codeToNumber(a.m, -a.e);
  return v === null ? null : v + 0;
}

/** A dyadic as an argument quantizeCode accepts exactly: a number when exact, else a decimal string. */
function quantArg(a: Dyadic): number | string {
  const v = dyadicToNumber(a);
  if (v !== null) return v;
  return a.e >= 0 ? (a.m << BigInt(a.e)).toString() : `${a.m * 5n ** BigInt(-a.e)}e${a.e}`;
}

/**
 * The exact result of one non-input op from its operands' values (operandsOf order); `q` are the operands'
 * intervals (a lookup indexes its table by its operand's interval).
 */
export function evalOp(node: Node, v: readonly Dyadic[], q: readonly QInterval[]): Dyadic {
  switch (node.kind) {
    case 'input':
      throw new Error('evalOp: input ops take raw inputs (see interpretSample)');
    case 'const':
      return dy(node.value);
    case 'copy':
      return dShift(v[0]!, node.shift);
    case 'add': {
      const b = dShift(v[1]!, node.shift);
      return dAdd(v[0]!, node.sub ? dNeg(b) : b);
    }
    case 'neg':
      return dNeg(v[0]!);
    case 'addc':
      return dAdd(v[0]!, dy(node.value));
    case 'relu':
      return v[0]!.m > 0n ? v[0]! : ZERO;
    case 'quant':
      return { m: quantizeCode(quantArg(v[0]!), node.type, node.round, node.overflow), e: -node.type.f };
    case 'mux':
      return v[0]!.m < 0n ? v[1]! : v[2]!;
    case 'mul':
      return { m: v[0]!.m * v[1]!.m, e: v[0]!.e + v[1]!.e };
    case 'lut': {
      const a = q[0]!;
      // index = (x − min) / step, an exact integer
      const d = dShift(dAdd(v[0]!, dNeg(dy(a.min))), -log2i(a.step));
      const idx = d.e >= 0 ? d.m << BigInt(d.e) : d.m >> BigInt(-d.e);
      if (d.e < 0 && idx << BigInt(-d.e) !== d.m) throw new Error('lut operand is off its grid');
      const e = node.table[Number(idx)];
      if (e === undefined) throw new Error(`lut index ${idx} outside its table of ${node.table.length}`);
      return dy(e);
    }
    case 'min':
      return dCmp(v[0]!, v[1]!) <= 0 ? v[0]! : v[1]!;
    case 'max':
      return dCmp(v[0]!, v[1]!) >= 0 ? v[0]! : v[1]!;
  }
}

/** Runs the program on one sample, exactly; returns the output values. */
export function interpretSample(p: Program, x: ArrayLike<number>, sample = 0): Dyadic[] {
  const w: Dyadic[] = new Array(p.ops.length);
  p.ops.forEach((node: Node, j) => {
    if (node.kind === 'input') {
      const raw = x[node.index]!;
      if (!Number.isFinite(raw)) badInput(sample, node.index, raw);
      w[j] = { m: quantizeCode(raw, node.type, node.round, node.overflow), e: -node.type.f };
      return;
    }
    const ops = operandsOf(node);
    w[j] = evalOp(
      node,
      ops.map((a) => w[a]!),
      ops.map((a) => p.ops[a]!.qint),
    );
  });
  return p.out.map((o) => {
    if (o.wire < 0) return ZERO;
    const v = dShift(w[o.wire]!, o.shift);
    return o.neg ? dNeg(v) : v;
  });
}

/** Reference emulator: op by op, BigInt-exact. Same contract as Emulator.run. */
export function interpretProgram(p: Program, inputs: Float64Array, batch: number): Float64Array {
  validateProgram(p);
  const nIn = inputSize(p);
  const nOut = outputSize(p);
  if (inputs.length !== batch * nIn)
    throw new RangeError(`interpretProgram: expected ${batch} × ${nIn} input values, got ${inputs.length}`);
  const out = new Float64Array(batch * nOut);
  for (let s = 0; s < batch; s++) {
    for (let j = 0; j < nIn; j++) if (!Number.isFinite(inputs[s * nIn + j]!)) badInput(s, j, inputs[s * nIn + j]!);
    const ys = interpretSample(p, inputs.subarray(s * nIn, (s + 1) * nIn), s);
    ys.forEach((y, k) => {
      const v = dyadicToNumber(y);
      if (v === null)
        throw new RangeError(`output ${k} of sample ${s} (${y.m}·2^${y.e}) is not exactly representable as a float64`);
      out[s * nOut + k] = v;
    });
  }
  return out;
}
