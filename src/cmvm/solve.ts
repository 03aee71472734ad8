/**
 * solveCmvm: y = W·x for a constant matrix W as a graph of shift-adders (docs/cmvm.md §1), emitted as a
 * standalone IR program. Pipeline per candidate: optional MST decomposition of the rows (W = M1·D), greedy
 * common-pair extraction on each stage, then per output the earliest-two-first adder tree. Several
 * decomposition depths are tried; the cheapest candidate that meets the delay constraint wins.
 */
import { ceilLog2, minimalKif, qiFromKif, qiIsZero } from '../fixed/interval.ts';
import type { QInterval } from '../fixed/types.ts';
import type { Node, Program } from '../ir/types.ts';
import { adderCost } from './cost.ts';
import { toOddExp, csdDigits } from './csd.ts';
import { decomposeRows, RowDistances, type Decomposition } from './decompose.ts';
import { extractCommon, type Method } from './cse.ts';
import { AdderGraph, type Term } from './graph.ts';

export interface CmvmInput {
  qint: QInterval;
  /** Arrival time in adder levels (default 0). */
  latency?: number;
}

export interface CmvmOptions {
  /**
   * Delay constraint: no output may finish later than its plain balanced tree (all CSD terms, given the
   * arrival times) plus `dc` adder levels. −1 (default) = unconstrained, as in the published reference.
   */
  dc?: number;
  /** Pair score: 'wmc' = occurrences × overlapping bits (default), 'mc' = occurrences. The other score is
   *  also tried on a few decomposed candidates unless effort is 0. */
  method?: Method;
  /** How many candidates to try: 0 fast (3 runs; 1 above 4096 entries), 1 default (5–7 runs; small matrices as 2), 2 thorough (every path limit × both scores). */
  effort?: number;
  /** MST decomposition first stage: 'auto' (default) tries it at several depths and keeps the best. */
  decompose?: boolean | 'auto';
  /** What "cheapest" means when choosing among candidates (default 'adders'; ties go to the other). */
  objective?: 'adders' | 'cost';
  /**
   * With objective 'adders', candidates are ranked by adders + latencyWeight × latency (default 1: one
   * adder level of the latest output is worth one adder), so a slightly larger but much shallower graph
   * can win. 0 ranks by adders alone.
   */
  latencyWeight?: number;
}

export interface CmvmResult {
  /** Inputs: one 'input' op per column; output r = row r of W·x. */
  program: Program;
  adders: number;
  /** Σ adder cost in bits (the IR cost model, src/ir/cost.ts). */
  cost: number;
  /** Adder levels on the longest input-to-output path. */
  depth: number;
  /** Latest output arrival time (input arrival times + adder levels). */
  latency: number;
  ms: number;
}

interface Candidate {
  g: AdderGraph;
  outs: Term[];
  /** Wires some output depends on. */
  need: Uint8Array;
  adders: number;
  /** Σ adder cost, computed when first needed (costOf): ranking by adders rarely needs it. */
  cost: number | null;
  latency: number;
}

function costOf(c: Candidate): number {
  if (c.cost === null) {
    const { g, need } = c;
    let cost = 0;
    for (let w = 0; w < g.size; w++) {
      const op = g.ops[w];
      if (op && need[w]) cost += adderCost(g.qint[op.a]!, g.qint[op.b]!, op.shift, op.sub, g.qint[w]!);
    }
    c.cost = cost;
  }
  return c.cost;
}

function checkMatrix(W: number[][], nIn: number): void {
  if (!Array.isArray(W)) throw new TypeError('solveCmvm: W must be an array of rows');
  W.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== nIn)
      throw new RangeError(`solveCmvm: row ${r} has ${Array.isArray(row) ? row.length : 'no'} entries, expected ${nIn} (one per input)`);
    row.forEach((v, c) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`solveCmvm: W[${r}][${c}] = ${v} is not a finite number`);
    });
  });
}

/** Finish time of the earliest-two-first tree over terms arriving at `lats`. */
export function treeFinish(lats: number[]): number {
  if (lats.length === 0) return -Infinity;
  const h = lats.slice().sort((a, b) => a - b);
  // two sorted queues (inputs, merged results) replace a heap: merged results come out in order
  const merged: number[] = [];
  let i = 0;
  let m = 0;
  const take = (): number => (m < merged.length && (i >= h.length || merged[m]! < h[i]!) ? merged[m++]! : h[i++]!);
  while (h.length - i + merged.length - m > 1) merged.push(Math.max(take(), take()) + 1);
  return m < merged.length ? merged[m]! : h[i]!;
}

/** Above this many matrix entries, effort 0 makes a single greedy run. */
const SINGLE_RUN_ENTRIES = 4096;

export function solveCmvm(W: number[][], inputs: CmvmInput[], opts: CmvmOptions = {}): CmvmResult {
  const t0 = performance.now();
  const nIn = inputs.length;
  checkMatrix(W, nIn);
  const nOut = W.length;
  const dc = opts.dc ?? -1;
  if (!Number.isInteger(dc) || dc < -1) throw new RangeError(`solveCmvm: dc must be an integer ≥ −1, got ${dc}`);
  const method = opts.method ?? 'wmc';
  const objective = opts.objective ?? 'adders';
  const effort = opts.effort ?? 1;
  const latencyWeight = opts.latencyWeight ?? 1;
  if (!(latencyWeight >= 0)) throw new RangeError(`solveCmvm: latencyWeight must be ≥ 0, got ${latencyWeight}`);
  if (![0, 1, 2].includes(effort)) throw new RangeError(`solveCmvm: effort must be 0, 1 or 2, got ${effort}`);

  const types = inputs.map((x, c) => {
    const q = x.qint;
    if (!(q.step > 0) || !(q.min <= q.max)) throw new RangeError(`solveCmvm: input ${c} has an invalid interval ${JSON.stringify(q)}`);
    return minimalKif(q);
  });
  // the wires carry the interval of the input op's type, as the IR will see it
  const srcQ = types.map((t) => qiFromKif(t));
  const srcLat = inputs.map((x) => x.latency ?? 0);
  const live = srcQ.map((q) => !qiIsZero(q));
  const Wl = W.map((row) => row.map((v, c) => (live[c] ? v : 0)));

  const newGraph = (): AdderGraph => {
    const g = new AdderGraph();
    for (let c = 0; c < nIn; c++) g.addSource(srcQ[c]!, srcLat[c]!);
    return g;
  };
  const directRows = Wl.map((row) => {
    const r: Array<{ wire: number; coef: number }> = [];
    for (let c = 0; c < nIn; c++) if (row[c] !== 0) r.push({ wire: c, coef: row[c]! });
    return r;
  });

  // per-output bound: the plain tree over all CSD terms, plus dc
  let bound: number[] | null = null;
  if (dc >= 0) {
    bound = Wl.map((row) => {
      const lats: number[] = [];
      row.forEach((v, c) => {
        for (let k = csdDigits(v).length; k > 0; k--) lats.push(srcLat[c]!);
      });
      return lats.length === 0 ? 0 : treeFinish(lats) + dc;
    });
  }

  const finish = (g: AdderGraph, outs: Term[]): Candidate | null => {
    let latency = -Infinity;
    for (let o = 0; o < nOut; o++) {
      const w = outs[o]!.wire;
      if (w < 0) continue;
      const l = g.lat[w]!;
      if (bound && l > bound[o]!) return null;
      latency = Math.max(latency, l);
    }
    // count only adders some output depends on
    const need = reachable(g, outs, nIn);
    let adders = 0;
    for (let w = nIn; w < g.size; w++) adders += need[w]!;
    return { g, outs, need, adders, cost: null, latency: latency === -Infinity ? 0 : latency };
  };

  const solveDirect = (method: Method): Candidate => {
    const g = newGraph();
    const rest = extractCommon(g, directRows, { method, bound });
    const c = finish(g, rest.map((ts) => g.sumTerms(ts)));
    if (c) return c;
    // (only with fractional arrival times can the Kraft rule be off) the plain tree meets the bound by definition
    const g0 = newGraph();
    const plain = finish(g0, extractCommon(g0, directRows, { method, bound, extract: false }).map((ts) => g0.sumTerms(ts)));
    if (!plain) throw new Error('solveCmvm: internal error: the plain adder tree misses its own delay bound');
    return plain;
  };

  const solveDecomposed = (dec: Decomposition, method: Method, scale: number): Candidate | null => {
    const { diffs, paths } = dec;
    const g = newGraph();
    // stage 0: the difference rows; under a delay constraint each must finish early enough that its
    // path sums still fit: bound − ceil(log2(path length)) for every output using it
    let b0: number[] | null = null;
    if (bound) {
      b0 = diffs.map(() => Infinity);
      paths.forEach((path, o) => {
        const slackLevels = ceilLog2(Math.max(1, path.length));
        for (const e of path) b0![e.diff] = Math.min(b0![e.diff]!, bound![o]! - slackLevels);
      });
    }
    const rows0 = diffs.map((row) => {
      const r: Array<{ wire: number; coef: number }> = [];
      for (let c = 0; c < row.length; c++) if (row[c] !== 0) r.push({ wire: c, coef: row[c]! * scale });
      return r;
    });
    if (b0) {
      for (let d = 0; d < diffs.length; d++) {
        const lats: number[] = [];
        for (const { wire, coef } of rows0[d]!) for (let k = csdDigits(coef).length; k > 0; k--) lats.push(srcLat[wire]!);
        if (lats.length > 0 && treeFinish(lats) > b0[d]!) return null;
      }
    }
    const rest0 = extractCommon(g, rows0, { method, bound: b0 });
    const z = rest0.map((ts) => g.sumTerms(ts));
    // stage 1: each output is the signed sum of its path's difference wires
    const rows1 = paths.map((path) => {
      const r: Array<{ wire: number; coef: number }> = [];
      for (const { diff, sign } of path) {
        const t = z[diff]!;
        if (t.wire >= 0) r.push({ wire: t.wire, coef: sign * t.sign * 2 ** t.pos });
      }
      return r;
    });
    const rest1 = extractCommon(g, rows1, { method, bound });
    return finish(g, rest1.map((ts) => g.sumTerms(ts)));
  };

  const better = (a: Candidate, b: Candidate): boolean => {
    if (objective === 'adders') {
      const ea = a.adders + latencyWeight * a.latency;
      const eb = b.adders + latencyWeight * b.latency;
      if (ea !== eb) return ea < eb;
      if (a.adders !== b.adders) return a.adders < b.adders;
      if (costOf(a) !== costOf(b)) return costOf(a) < costOf(b);
    } else {
      if (costOf(a) !== costOf(b)) return costOf(a) < costOf(b);
      if (a.adders !== b.adders) return a.adders < b.adders;
    }
    return a.latency < b.latency;
  };

  const decompose = opts.decompose ?? 'auto';
  const scaled = decompose !== false && nOut > 1 ? scaleToIntegers(Wl) : null;
  // Unconstrained, a decomposed candidate contains the plain one as its degenerate tree (rows closer to
  // zero than to each other hang off the root), and on larger matrices the plain run never wins while
  // costing the most: skip it there (effort 1). Under a delay constraint it is the guaranteed fallback.
  // effort 0 on a large layer (e.g. 128×784, where one run takes seconds): a single run; unconstrained the
  // first decomposed candidate (which contains the plain one), under a delay constraint the plain one
  const single = effort === 0 && nOut * nIn > SINGLE_RUN_ENTRIES;
  const skipDirect = scaled !== null && dc < 0 && (effort === 1 ? nOut * nIn > 64 : single);
  let best: Candidate | null = skipDirect ? null : solveDirect(method);
  if (scaled && !(single && best)) {
    // one tree per path limit (shared by both pair scores); a tree already tried with a score is skipped
    // (a deeper limit often yields the same tree)
    const trees = new Map<number, Decomposition>();
    const distances = new RowDistances(scaled.rows);
    const tried = new Set<string>();
    for (const { hops, method: m } of candidatePlan(nOut, nIn, dc, method, effort)) {
      let t = trees.get(hops);
      if (!t) {
        t = decomposeRows(scaled.rows, hops, distances);
        trees.set(hops, t);
      }
      if (tried.has(m + t.key)) continue;
      tried.add(m + t.key);
      const c = solveDecomposed(t, m, scaled.scale);
      if (c && (!best || better(c, best))) best = c;
      if (single) break;
    }
  }
  if (!best) best = solveDirect(method);

  const program = toProgram(best, types, nOut);
  const depth = programDepth(program);
  return { program, adders: best.adders, cost: costOf(best), depth, latency: best.latency, ms: performance.now() - t0 };
}

/** Path-length limits 2, 3, 4, 6, 8, 12, … up to the number of rows. */
export function hopLimits(nOut: number): number[] {
  const hs: number[] = [];
  for (let p = 2; p < nOut; p *= 2) {
    hs.push(p);
    if (p + p / 2 < nOut) hs.push(p + p / 2);
  }
  if (nOut >= 2) hs.push(nOut);
  return hs;
}

/**
 * The decomposed candidates tried (besides the plain one). Each is a different greedy run, and keeping the
 * best of several runs is where much of the quality comes from. The default set (effort 1) was chosen from
 * the winners' histogram on random 4×4…16×16 matrices (bench/cmvm.ts): small matrices (≤ 64 entries) get
 * every path limit with both pair scores (cheap, and the short-path candidates keep them shallow);
 * unconstrained, the other score at limits 4, 6, 8 and the given one at 8 (on 100 16×16 draws the two
 * dropped runs, limits 4 and 6 with 'wmc', cost 341.84 → 341.91 mean adders for a third of the time;
 * large matrices: 4, 8, 16 and the other score at 8, for time); under a delay constraint short paths are
 * what fits, so 3, 4 (and 2 when dc = 0; 6 and 8 in case dc allows them: infeasible candidates are rejected before any extraction) and the other score at
 * 3 and 4. effort 0: limits 4 and 8 only; effort 2: every limit with both scores.
 */
export function candidatePlan(nOut: number, nIn: number, dc: number, method: Method, effort: number): Array<{ hops: number; method: Method }> {
  const other: Method = method === 'wmc' ? 'mc' : 'wmc';
  const plan: Array<{ hops: number; method: Method }> = [];
  const seen = new Set<string>();
  const add = (hops: number, m: Method): void => {
    const h = Math.min(hops, nOut);
    if (h < 2 || seen.has(`${h}${m}`)) return;
    seen.add(`${h}${m}`);
    plan.push({ hops: h, method: m });
  };
  if (effort <= 0) {
    add(4, method);
    add(8, method);
  } else if (effort >= 2 || nOut * nIn <= 64) {
    for (const h of hopLimits(nOut)) {
      add(h, method);
      add(h, other);
    }
  } else if (dc >= 0) {
    for (const h of dc === 0 ? [2, 3, 4, 6, 8] : [3, 4, 6, 8]) add(h, method);
    for (const h of [3, 4]) add(h, other);
  } else if (nOut > 16) {
    for (const h of [4, 8, 16]) add(h, method);
    add(8, other);
  } else {
    // (in the order of the full set, which decides ties)
    add(4, other);
    add(6, other);
    add(8, method);
    add(8, other);
  }
  return plan;
}

/** W·2^e as safe integers (with headroom for row sums/differences), or null when the span is too wide. */
function scaleToIntegers(W: number[][]): { rows: number[][]; scale: number } | null {
  let minExp = Infinity;
  let maxAbs = 0;
  for (const row of W)
    for (const v of row) {
      if (v === 0) continue;
      minExp = Math.min(minExp, toOddExp(v).exp);
      maxAbs = Math.max(maxAbs, Math.abs(v));
    }
  if (maxAbs === 0) return null;
  const scale = 2 ** minExp;
  if (maxAbs / scale >= 2 ** 50) return null;
  return { rows: W.map((row) => row.map((v) => v / scale)), scale };
}

/** Wires some output depends on. */
function reachable(g: AdderGraph, outs: Term[], nIn: number): Uint8Array {
  const need = new Uint8Array(g.size);
  for (const t of outs) if (t.wire >= 0) need[t.wire] = 1;
  for (let w = g.size - 1; w >= nIn; w--) {
    const op = g.ops[w];
    if (need[w] && op) need[op.a] = need[op.b] = 1;
  }
  return need;
}

/** Emit the candidate as IR: inputs, then its adders in creation order (operands always come first). */
function toProgram(c: Candidate, types: ReturnType<typeof minimalKif>[], nOut: number): Program {
  const g = c.g;
  const nIn = types.length;
  const need = c.need;
  const ops: Node[] = [];
  const id = new Int32Array(g.size).fill(-1);
  for (let cidx = 0; cidx < nIn; cidx++) {
    id[cidx] = ops.length;
    ops.push({ kind: 'input', index: cidx, type: types[cidx]!, round: 'TRN', overflow: 'WRAP', qint: g.qint[cidx]! });
  }
  for (let w = nIn; w < g.size; w++) {
    const op = g.ops[w]!;
    if (!need[w]) continue;
    id[w] = ops.length;
    ops.push({ kind: 'add', a: id[op.a]!, b: id[op.b]!, shift: op.shift, sub: op.sub, qint: g.qint[w]! });
  }
  return {
    version: 1,
    name: 'cmvm',
    inputs: [{ name: 'x', shape: [nIn] }],
    outputs: [{ name: 'y', shape: [nOut] }],
    ops,
    out: c.outs.map((t) => (t.wire < 0 ? { wire: -1, shift: 0, neg: false } : { wire: id[t.wire]!, shift: t.pos, neg: t.sign < 0 })),
  };
}

/** Adder levels on the longest path from an input to an output. */
export function programDepth(p: Program): number {
  const lv = new Int32Array(p.ops.length);
  p.ops.forEach((op, i) => {
    if (op.kind === 'add') lv[i] = Math.max(lv[op.a]!, lv[op.b]!) + 1;
  });
  let d = 0;
  for (const o of p.out) if (o.wire >= 0) d = Math.max(d, lv[o.wire]!);
  return d;
}
