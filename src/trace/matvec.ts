/**
 * Constant matrix × vector products for the tracer: y = W·x with W given as rows (n_out × n_in), x as wires.
 * 'da' solves the matrix once with the CMVM optimizer (src/cmvm) and splices the adder graph at every
 * position (a conv's positions, a dense layer applied over leading axes) — the graph was solved for the
 * union of the positions' input intervals, so it is exact at each of them. 'none' writes each output as
 * the plain sum of the canonical signed digits of its row, added by a balanced tree (for comparison).
 */
import { qiUnion } from '../fixed/interval.ts';
import type { QInterval } from '../fixed/types.ts';
import { inlineProgram, type ProgramBuilder } from '../ir/builder.ts';
import type { OutputRef } from '../ir/types.ts';
import { solveCmvm } from '../cmvm/solve.ts';
import { forEachCsdDigit } from '../cmvm/csd.ts';

export type CmvmMethod = 'da' | 'none';

export interface MatVecOptions {
  cmvm: CmvmMethod;
  /** CMVM delay constraint (−1: unconstrained). */
  dc: number;
  /** CMVM search effort (0 fast, 1 baseline, 2 default, 3 thorough): how many greedy candidates are tried. */
  effort?: number;
  /** CMVM search threads (see CmvmOptions.threads). */
  threads?: number;
}

/**
 * For each position p, outputs W·xs[p]. Every xs[p] has n_in wires. Returns per position n_out OutputRefs
 * (wire −1 = constant 0).
 */
export function matVec(
  b: ProgramBuilder,
  W: number[][],
  xs: number[][],
  opts: MatVecOptions,
  latency?: (w: number) => number,
): OutputRef[][] {
  const nIn = xs[0]?.length ?? 0;
  if (opts.cmvm === 'none') return xs.map((x) => W.map((row) => plainSum(b, row, x)));
  const qs: QInterval[] = [];
  // arrival times: the CMVM's delay-aware trees add late inputs last
  const lats = Array.from({ length: nIn }, (_, c) => (latency ? Math.max(...xs.map((x) => latency(x[c]!))) : 0));
  for (let c = 0; c < nIn; c++) {
    // zero wires (padding, pruned inputs) add nothing: leave them out of the union unless all are zero
    let q: QInterval | null = null;
    for (const x of xs) {
      const r = b.qint(x[c]!);
      if (r.min === 0 && r.max === 0) continue;
      q = q ? qiUnion(q, r) : r;
    }
    qs.push(q ?? { min: 0, max: 0, step: 1 });
  }
  const sol = solveCmvm(
    W,
    qs.map((q, c) => ({ qint: q, latency: lats[c]! })),
    {
      dc: opts.dc,
      ...(opts.effort !== undefined ? { effort: opts.effort } : {}),
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    },
  );
  return xs.map((x) => inlineProgram(b, sol.program, x));
}

/** Σ_c row[c]·x[c] as CSD terms added by a balanced tree. */
export function plainSum(b: ProgramBuilder, row: number[], x: number[]): OutputRef {
  // terms: (−1)^neg · wire · 2^shift
  let level: OutputRef[] = [];
  row.forEach((v, c) => {
    const w = x[c]!;
    const q = b.qint(w);
    if (v === 0 || (q.min === 0 && q.max === 0)) return;
    forEachCsdDigit(v, (pos, sign) => level.push({ wire: w, shift: pos, neg: sign < 0 }));
  });
  if (level.length === 0) return { wire: -1, shift: 0, neg: false };
  // start from a positive term when there is one (saves a negation at the end)
  const pos = level.findIndex((t) => !t.neg);
  if (pos > 0) [level[0], level[pos]] = [level[pos]!, level[0]!];
  while (level.length > 1) {
    const next: OutputRef[] = [];
    for (let j = 0; j + 1 < level.length; j += 2) {
      const s = level[j]!;
      const t = level[j + 1]!;
      // (−1)^ns·s·2^ss ± t·2^st = (−1)^ns·2^ss·(s ± t·2^(st−ss))
      next.push({ wire: b.add(s.wire, t.wire, t.shift - s.shift, s.neg !== t.neg), shift: s.shift, neg: s.neg });
    }
    if (level.length % 2) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}
