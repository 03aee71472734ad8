/**
 * The candidates solveCmvm chooses among (docs/cmvm.md). Each is one greedy construction of an adder graph
 * for the problem: the plain one (common pairs extracted from the rows' CSD terms), a row decomposition
 * (W = M1·D: the rows as sums of sparse difference rows along a spanning tree of rows) or a column
 * decomposition (W = D·M2: the inputs summed along a spanning tree of columns first, then the sparse
 * difference columns applied to those sums). Every output then adds its remaining terms with the
 * earliest-two-first tree.
 */
import { ceilLog2, minimalKif, qiFromKif, qiIsZero } from '../fixed/interval.ts';
import type { QInterval } from '../fixed/types.ts';
import type { Program } from '../ir/types.ts';
import { adderCost } from './cost.ts';
import { csdDigits, toOddExp } from './csd.ts';
import { CseScratch } from './cse-scratch.ts';
import { extractCommon, type Method } from './cse.ts';
import type { Decomposition } from './decompose.ts';
import { AdderGraph, type Term } from './graph.ts';

type Row = Array<{ wire: number; coef: number }>;

/** A validated problem: what every candidate needs. */
export interface Problem {
  nIn: number;
  nOut: number;
  /** minimalKif of each input's interval: the input ops' types. */
  types: ReturnType<typeof minimalKif>[];
  /** The interval each input wire carries (its type's, as the IR will see it). */
  srcQ: QInterval[];
  srcLat: number[];
  /** W with the columns of always-zero inputs cleared. */
  Wl: number[][];
  /** Per output, the latest allowed finish time (its plain tree + dc), or null: unconstrained. */
  bound: number[] | null;
  /** W·2^e as safe integers for the decompositions, or null (one row, or too wide a span). */
  scaled: { rows: number[][]; scale: number } | null;
  scratch: CseScratch;
}

export interface Candidate {
  g: AdderGraph;
  outs: Term[];
  /** Wires some output depends on. */
  need: Uint8Array;
  adders: number;
  /** Σ adder cost, computed when first needed (costOf): ranking by adders rarely needs it. */
  cost: number | null;
  latency: number;
  /** Set when the candidate was built on a helper thread (g is then empty). */
  program?: Program;
}

export function prepareProblem(
  W: number[][],
  inputs: Array<{ qint: QInterval; latency?: number }>,
  dc: number,
  decompose: boolean | 'auto',
): Problem {
  const nIn = inputs.length;
  const types = inputs.map((x, c) => {
    const q = x.qint;
    if (!(q.step > 0) || !(q.min <= q.max))
      throw new RangeError(`solveCmvm: input ${c} has an invalid interval ${JSON.stringify(q)}`);
    return minimalKif(q);
  });
  const srcQ = types.map((t) => qiFromKif(t));
  const srcLat = inputs.map((x) => x.latency ?? 0);
  const live = srcQ.map((q) => !qiIsZero(q));
  const Wl = W.map((row) => row.map((v, c) => (live[c] ? v : 0)));
  const bound = dc >= 0 ? Wl.map((row) => plainFinish(row, srcLat) + dc) : null;
  const scaled = decompose !== false && W.length > 1 ? scaleToIntegers(Wl) : null;
  return { nIn, nOut: W.length, types, srcQ, srcLat, Wl, bound, scaled, scratch: new CseScratch() };
}

/** Finish time of the plain tree over all CSD terms of a row (0 for an empty row). */
function plainFinish(row: number[], srcLat: number[]): number {
  const lats: number[] = [];
  row.forEach((v, c) => {
    for (let k = csdDigits(v).length; k > 0; k--) lats.push(srcLat[c]!);
  });
  return lats.length === 0 ? 0 : treeFinish(lats);
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

function newGraph(p: Problem): AdderGraph {
  const g = new AdderGraph();
  for (let c = 0; c < p.nIn; c++) g.addSource(p.srcQ[c]!, p.srcLat[c]!);
  return g;
}

/** The nonzero entries of an integer row over the given wires, times `scale`. */
function sparseRow(row: number[], wireOf: (c: number) => Term | null, scale: number): Row {
  const r: Row = [];
  for (let c = 0; c < row.length; c++) {
    if (row[c] === 0) continue;
    const t = wireOf(c);
    if (t && t.wire >= 0) r.push({ wire: t.wire, coef: row[c]! * scale * t.sign * 2 ** t.pos });
  }
  return r;
}

const INPUT_TERM: Term[] = [];
function inputTerm(c: number): Term {
  while (INPUT_TERM.length <= c) INPUT_TERM.push({ wire: INPUT_TERM.length, pos: 0, sign: 1 });
  return INPUT_TERM[c]!;
}

/** The graph's outputs as a candidate, or null when some output misses its bound. */
function finishCandidate(p: Problem, g: AdderGraph, outs: Term[]): Candidate | null {
  let latency = -Infinity;
  for (let o = 0; o < p.nOut; o++) {
    const w = outs[o]!.wire;
    if (w < 0) continue;
    const l = g.lat[w]!;
    if (p.bound && l > p.bound[o]!) return null;
    latency = Math.max(latency, l);
  }
  // count only adders some output depends on
  const need = reachable(g, outs, p.nIn);
  let adders = 0;
  for (let w = p.nIn; w < g.size; w++) adders += need[w]!;
  return { g, outs, need, adders, cost: null, latency: latency === -Infinity ? 0 : latency };
}

/** Extract common pairs from the rows into g, then sum each row's remaining terms. */
/** How one greedy run differs from the baseline's (see CseOptions): a restart's seed and noise, look-ahead. */
export interface RunOptions {
  seed?: number;
  noise?: number;
  lookahead?: 'ties' | 'near';
}

function extractAndSum(p: Problem, g: AdderGraph, rows: Row[], method: Method, bound: number[] | null, run: RunOptions): Term[] {
  return extractCommon(g, rows, { method, bound, ...run, scratch: p.scratch }).map((ts) => g.sumTerms(ts));
}

/** The plain candidate: common pairs over the rows' own CSD terms. Always meets the bound. */
export function solveDirect(p: Problem, method: Method): Candidate {
  const rows = p.Wl.map((row) => sparseRow(row, inputTerm, 1));
  const g = newGraph(p);
  const c = finishCandidate(p, g, extractAndSum(p, g, rows, method, p.bound, {}));
  if (c) return c;
  // (only with fractional arrival times can the Kraft rule be off) the plain tree meets the bound by definition
  return solvePlain(p, method);
}

/** Every output's CSD terms summed by the earliest-two-first tree, no sharing: meets the bound by definition. */
export function solvePlain(p: Problem, method: Method = 'wmc'): Candidate {
  const rows = p.Wl.map((row) => sparseRow(row, inputTerm, 1));
  const g = newGraph(p);
  const plainTerms = extractCommon(g, rows, { method, bound: p.bound, extract: false, scratch: p.scratch });
  const plain = finishCandidate(
    p,
    g,
    plainTerms.map((ts) => g.sumTerms(ts)),
  );
  if (!plain) throw new Error('solveCmvm: internal error: the plain adder tree misses its own delay bound');
  return plain;
}

/**
 * The candidates of column blocks (each solved over the inputs from `start` on) as one graph, each output
 * the earliest-two-first sum of its blocks' partial sums; null when some output then misses its bound.
 */
export function mergeBlocks(p: Problem, parts: Array<{ start: number; c: Candidate }>): Candidate | null {
  const g = newGraph(p);
  const terms: Term[][] = p.Wl.map(() => []);
  for (const { start, c } of parts) {
    const map = new Int32Array(c.g.size);
    for (let w = 0; w < c.g.size; w++) {
      const op = c.g.ops[w];
      if (!op)
        map[w] = start + w; // (a block's sources come first, in column order)
      else if (c.need[w]) map[w] = g.addAdder(map[op.a]!, map[op.b]!, op.shift, op.sub);
    }
    c.outs.forEach((t, o) => {
      if (t.wire >= 0) terms[o]!.push({ wire: map[t.wire]!, pos: t.pos, sign: t.sign });
    });
  }
  return finishCandidate(
    p,
    g,
    terms.map((ts) => g.sumTerms(ts)),
  );
}

/**
 * Row decomposition: stage 0 makes the difference rows, stage 1 sums each output's path. Under a delay
 * constraint each difference row must finish early enough that its path sums still fit:
 * bound − ceil(log2(path length)) for every output using it; null when some cannot.
 */
export function solveRows(p: Problem, dec: Decomposition, method: Method, run: RunOptions = {}): Candidate | null {
  const { diffs } = dec;
  const scale = p.scaled!.scale;
  const b0 = p.bound ? diffBounds(p.bound, dec) : null;
  const rows0 = diffs.map((row) => sparseRow(row, inputTerm, scale));
  if (b0 && !diffsCanMeet(p, rows0, b0)) return null;
  const g = newGraph(p);
  const z = extractAndSum(p, g, rows0, method, b0, run);
  return finishCandidate(p, g, extractAndSum(p, g, pathRows(dec, z), method, p.bound, run));
}

function diffBounds(bound: number[], dec: Decomposition): number[] {
  const b0 = dec.diffs.map(() => Infinity);
  dec.paths.forEach((path, o) => {
    const slackLevels = ceilLog2(Math.max(1, path.length));
    for (const e of path) b0[e.diff] = Math.min(b0[e.diff]!, bound[o]! - slackLevels);
  });
  return b0;
}

/** Whether every difference row's plain tree meets its bound (else no extraction can). */
function diffsCanMeet(p: Problem, rows0: Row[], b0: number[]): boolean {
  for (let d = 0; d < rows0.length; d++) {
    const lats: number[] = [];
    for (const { wire, coef } of rows0[d]!) for (let k = csdDigits(coef).length; k > 0; k--) lats.push(p.srcLat[wire]!);
    if (lats.length > 0 && treeFinish(lats) > b0[d]!) return false;
  }
  return true;
}

/**
 * Column decomposition (the dual of the row one): with the columns as a spanning tree, column c is the
 * signed sum of the difference columns on its path, so W·x = Σ_e d_e·z_e where z_e sums (with signs) the
 * inputs whose path holds e. Stage 0 makes the z (common pairs find the nested subtree sums), stage 1
 * applies the sparse difference columns to them. `dec` decomposes the transposed matrix.
 */
export function solveColumns(p: Problem, dec: Decomposition, method: Method, run: RunOptions = {}): Candidate | null {
  const { diffs } = dec;
  const g = newGraph(p);
  const z = extractAndSum(p, g, columnSumRows(dec), method, null, run);
  const scale = p.scaled!.scale;
  const rows1 = p.Wl.map((_, o) =>
    sparseRow(
      diffs.map((d) => d[o]!),
      (e) => z[e]!,
      scale,
    ),
  );
  return finishCandidate(p, g, extractAndSum(p, g, rows1, method, p.bound, run));
}

/**
 * Row and column decomposition together (unconstrained): the difference rows of `dec` (W = M1·D) are made
 * by the column decomposition `colDec` of D (D = D'·M2: nested input sums first, then D's sparse
 * difference columns over them), then each output sums its path as in solveRows.
 */
export function solveRowsOverColumns(
  p: Problem,
  dec: Decomposition,
  colDec: Decomposition,
  method: Method,
  run: RunOptions = {},
): Candidate | null {
  const g = newGraph(p);
  const z = extractAndSum(p, g, columnSumRows(colDec), method, null, run);
  const scale = p.scaled!.scale;
  const rows0 = dec.diffs.map((_, d) =>
    sparseRow(
      colDec.diffs.map((col) => col[d]!),
      (e) => z[e]!,
      scale,
    ),
  );
  const zd = extractAndSum(p, g, rows0, method, null, run);
  return finishCandidate(p, g, extractAndSum(p, g, pathRows(dec, zd), method, p.bound, run));
}

/** The rows of a column decomposition's sums: z_e = Σ ± the inputs whose path holds e. */
function columnSumRows(colDec: Decomposition): Row[] {
  const rowsZ: Row[] = colDec.diffs.map(() => []);
  colDec.paths.forEach((path, c) => {
    for (const { diff, sign } of path) rowsZ[diff]!.push({ wire: c, coef: sign });
  });
  return rowsZ;
}

/** Each output's path of difference rows (made as the terms `zd`) as a row to sum. */
function pathRows(dec: Decomposition, zd: Term[]): Row[] {
  return dec.paths.map((path) => {
    const r: Row = [];
    for (const { diff, sign } of path) {
      const t = zd[diff]!;
      if (t.wire >= 0) r.push({ wire: t.wire, coef: sign * t.sign * 2 ** t.pos });
    }
    return r;
  });
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

export function costOf(c: Candidate): number {
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
