/**
 * solveCmvm: y = W·x for a constant matrix W as a graph of shift-adders (docs/cmvm.md §1), emitted as a
 * standalone IR program. Several greedy candidates are built (candidates.ts: plain, row decompositions at
 * several path limits, column decompositions, restarts with other tie-breaks or perturbed scores) and the cheapest that meets
 * the delay constraint wins. `effort` sets how many.
 */
import type { minimalKif } from '../fixed/interval.ts';
import type { QInterval } from '../fixed/types.ts';
import type { Node, Program } from '../ir/types.ts';
import { columnBlocks } from './blocks.ts';
import {
  costOf,
  mergeBlocks,
  prepareProblem,
  solveColumns,
  solveDirect,
  solvePlain,
  solveRows,
  solveRowsOverColumns,
  type Candidate,
  type Problem,
} from './candidates.ts';
import { decomposeRows, RowDistances, type Decomposition } from './decompose.ts';
import type { Method } from './cse.ts';
import { AdderGraph } from './graph.ts';
import { defaultThreads, PARALLEL, runShared } from './parallel.ts';

export { treeFinish } from './candidates.ts';

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
  /**
   * Search effort: 0 fast (3 runs; 1 above 4096 entries), 1 the baseline (5–7 runs; small matrices as 2),
   * 2 default (1, then its decompositions again with look-ahead in pair selection, plain, with other
   * tie-breaks and with perturbed pair scores, and, unconstrained, column and (up to 1024 entries)
   * row-and-column decompositions, on matrices up to 6400 entries), 3 thorough (every path limit × both
   * scores, more restarts and columns, and the wider look-ahead).
   */
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
  /**
   * Threads for the search on large matrices (≥ PARALLEL.minEntries entries), this one included (default 1,
   * see parallel.ts): the candidates are built in parallel; the same result as with 1.
   */
  threads?: number;
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

/** The default search effort. */
export const DEFAULT_EFFORT = 2;
/** Above this many matrix entries, effort 0 makes a single greedy run. */
const SINGLE_RUN_ENTRIES = 4096;
/**
 * Up to this many entries, effort 2 adds its restarts and column decompositions (beyond, as effort 1). It
 * reaches the 100×50 kernels of HGQ2's jet models; at 8192 it took in the MNIST demo's 128×64 hidden layer and
 * doubled `hgq trace` of its largest checkpoint (62 s against 31 s, one run under load) for a few adders.
 */
const EXTRA_SEARCH_ENTRIES = 6400;
/**
 * Score perturbation of the perturbed restarts (CseOptions.noise): pairs whose scores differ by up to 5% may
 * swap. Four such restarts after the two tie-break ones found 0.1–0.35% fewer adders on a seeded set (random
 * 16–64 at dc −1 and 2, the HGQ2 fixtures' kernels); a noise of 0.15 found less.
 */
const RESTART_NOISE = 0.05;
/**
 * Up to this many entries, effort 2 also tries the row-and-column decompositions (hybridJobs; effort 3 up
 * to EXTRA_SEARCH_ENTRIES). Unconstrained, against effort 2 without them (one process, two seeded sets):
 * random 8-bit 16×16 −0.2…−0.4% adders at ×1.2 time, 24×24 −0.5…−0.75% at ×1.4, 32×32 −0.2…−1.2% at
 * ×1.45–1.7; 48×48 only −0.2% at ×5.8 (the difference rows over the column sums have many terms there),
 * hence the limit.
 */
const HYBRID_ENTRIES = 1024;

export function solveCmvm(W: number[][], inputs: CmvmInput[], opts: CmvmOptions = {}): CmvmResult {
  const t0 = performance.now();
  checkMatrix(W, inputs.length);
  const o = checkOptions(opts);
  const blocks = columnBlocks(W, inputs.length);
  const p = prepareProblem(W, inputs, o.dc, opts.decompose ?? 'auto');
  const best = blocks.length > 1 ? solveBlocks(p, o, blocks, { W, inputs, opts }) : search(p, o, { W, inputs, opts });
  const program = toProgram(best, p.types, p.nOut);
  return {
    program,
    adders: best.adders,
    cost: costOf(best),
    depth: programDepth(program),
    latency: best.latency,
    ms: performance.now() - t0,
  };
}

function checkMatrix(W: number[][], nIn: number): void {
  if (!Array.isArray(W)) throw new TypeError('solveCmvm: W must be an array of rows');
  W.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== nIn)
      throw new RangeError(
        `solveCmvm: row ${r} has ${Array.isArray(row) ? row.length : 'no'} entries, expected ${nIn} (one per input)`,
      );
    row.forEach((v, c) => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new RangeError(`solveCmvm: W[${r}][${c}] = ${v} is not a finite number`);
    });
  });
}

function search(p: Problem, o: Settings, task: SearchTask): Candidate {
  const better = ranking(o.objective, o.latencyWeight);
  const best = baselineSearch(p, o, better, task);
  if (p.scaled && (o.effort >= 3 || (o.effort === 2 && p.nOut * p.nIn <= EXTRA_SEARCH_ENTRIES)))
    return extraSearch(p, o, better, best);
  return best;
}

/**
 * Rows too wide for the pair count (see blocks.ts): each column block searched on its own (on this thread),
 * the partial sums added per output. Under a delay constraint the blocks get one level less (adding their
 * sums costs up to one level over the whole row's plain tree); if that still misses, the plain trees.
 */
function solveBlocks(p: Problem, o: Settings, blocks: Array<[number, number]>, task: SearchTask): Candidate {
  const dc = o.dc >= 1 ? o.dc - 1 : o.dc;
  const parts = blocks.map(([start, end]) => {
    const sub: SearchTask = {
      W: task.W.map((row) => row.slice(start, end)),
      inputs: task.inputs.slice(start, end),
      opts: { ...task.opts, dc, threads: 1 },
    };
    const sp = prepareProblem(sub.W, sub.inputs, dc, task.opts.decompose ?? 'auto');
    return { start, c: search(sp, { ...o, dc, threads: 1 }, sub) };
  });
  return mergeBlocks(p, parts) ?? solvePlain(p, o.method);
}

type Settings = Required<Pick<CmvmOptions, 'dc' | 'method' | 'objective' | 'effort' | 'latencyWeight' | 'threads'>>;

function checkOptions(opts: CmvmOptions): Settings {
  const dc = opts.dc ?? -1;
  if (!Number.isInteger(dc) || dc < -1) throw new RangeError(`solveCmvm: dc must be an integer ≥ −1, got ${dc}`);
  const effort = opts.effort ?? DEFAULT_EFFORT;
  if (![0, 1, 2, 3].includes(effort)) throw new RangeError(`solveCmvm: effort must be 0, 1, 2 or 3, got ${effort}`);
  const latencyWeight = opts.latencyWeight ?? 1;
  if (!(latencyWeight >= 0)) throw new RangeError(`solveCmvm: latencyWeight must be ≥ 0, got ${latencyWeight}`);
  const threads = opts.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1)
    throw new RangeError(`solveCmvm: threads must be an integer ≥ 1, got ${threads}`);
  return { dc, method: opts.method ?? 'wmc', objective: opts.objective ?? 'adders', effort, latencyWeight, threads };
}

type Better = (a: Candidate, b: Candidate) => boolean;

/** Whether candidate a ranks before b (see CmvmOptions.objective and latencyWeight). */
function ranking(objective: 'adders' | 'cost', latencyWeight: number): Better {
  return (a, b) => {
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
}

/** candidatePlan's effort for a search effort (2 plans as 1 and adds the extra search; 3 plans as the old thorough 2). */
function planEffort(effort: number): number {
  return effort >= 3 ? 2 : Math.min(effort, 1);
}

/**
 * The plain candidate and the row decompositions of candidatePlan. Unconstrained, a decomposed candidate
 * contains the plain one as its degenerate tree (rows closer to zero than to each other hang off the root),
 * and on larger matrices the plain run never wins while costing the most: skip it there (effort ≥ 1). Under
 * a delay constraint it is the guaranteed fallback. Effort 0 on a large layer (e.g. 128×784, where one run
 * takes seconds): a single run; unconstrained the first decomposed candidate (which contains the plain
 * one), under a delay constraint the plain one.
 */
function baselineSearch(p: Problem, o: Settings, better: Better, task: SearchTask): Candidate {
  const { nOut, nIn, scaled } = p;
  const single = o.effort === 0 && nOut * nIn > SINGLE_RUN_ENTRIES;
  const skipDirect = scaled !== null && o.dc < 0 && (o.effort >= 1 ? nOut * nIn > 64 : single);
  let best: Candidate | null = skipDirect ? null : solveDirect(p, o.method);
  if (scaled && !(single && best)) {
    const jobs = baselineJobs(p, o);
    const threads = o.threads;
    if (!single && threads > 1 && jobs.length > 1 && nOut * nIn >= PARALLEL.minEntries) {
      const outcomes = runShared<Candidate | null, RemoteOutcome | null>(jobs.length, threads, task, (i) =>
        solveRows(p, jobs[i]!.tree, jobs[i]!.method),
      );
      for (const x of outcomes) {
        const c = 'local' in x ? x.local : x.remote && remoteCandidate(x.remote);
        if (c && (!best || better(c, best))) best = c;
      }
    } else {
      for (const { tree, method } of jobs) {
        const c = solveRows(p, tree, method);
        if (c && (!best || better(c, best))) best = c;
        if (single) break;
      }
    }
  }
  return best ?? solveDirect(p, o.method);
}

function baselineJobs(p: Problem, o: Settings): Array<{ tree: Decomposition; method: Method }> {
  return rowJobs(p.scaled!.rows, candidatePlan(p.nOut, p.nIn, o.dc, o.method, planEffort(o.effort)));
}

/** A candidate built on a helper thread: its figures and program. */
interface RemoteOutcome {
  adders: number;
  latency: number;
  cost: number;
  program: Program;
}

function remoteCandidate(r: RemoteOutcome): Candidate {
  return {
    g: new AdderGraph(),
    outs: [],
    need: new Uint8Array(0),
    adders: r.adders,
    cost: r.cost,
    latency: r.latency,
    program: r.program,
  };
}

/** What a helper thread needs to rebuild a search's jobs. */
interface SearchTask {
  W: number[][];
  inputs: CmvmInput[];
  opts: CmvmOptions;
}

/** On a helper thread: run the baseline jobs claimed from `counter` (see parallel.ts) as [job, outcome] pairs. */
export function runClaimedJobs(task: SearchTask, counter: Int32Array): Array<[number, RemoteOutcome | null]> {
  const o = checkOptions(task.opts);
  const p = prepareProblem(task.W, task.inputs, o.dc, task.opts.decompose ?? 'auto');
  const jobs = baselineJobs(p, o);
  const out: Array<[number, RemoteOutcome | null]> = [];
  for (let i = Atomics.add(counter, 0, 1); i < jobs.length; i = Atomics.add(counter, 0, 1)) {
    Atomics.notify(counter, 0); // (see PARALLEL.helperFirst)
    const c = solveRows(p, jobs[i]!.tree, jobs[i]!.method);
    out.push([i, c && { adders: c.adders, latency: c.latency, cost: costOf(c), program: toProgram(c, p.types, p.nOut) }]);
  }
  return out;
}

/**
 * Effort 2 and 3: more greedy runs, all with look-ahead in pair selection (CseOptions.lookahead), the best
 * ranked among those with no more adders than the baseline (so the search never returns more adders than
 * the baseline): the baseline's row decompositions again, with `restarts` other tie-breaks, then with
 * `perturbed` restarts that also perturb the pair scores, and, unconstrained, column decompositions (the
 * dual of the rows' ones, which wins on some matrices) at a few path limits with both scores, then on small
 * matrices the row-and-column decompositions (hybridJobs). Under a delay constraint the column sums add
 * levels in front of every output, which rarely fits: not tried.
 */
function extraSearch(p: Problem, o: Settings, better: Better, baseline: Candidate): Candidate {
  let best = baseline;
  // (against the baseline's adders, not the best so far: which candidate wins must not depend on the order)
  const keep = (c: Candidate | null): void => {
    if (c && c.adders <= baseline.adders && (shallowerOnTie(c, best, o) ?? better(c, best))) best = c;
  };
  const restarts = o.effort >= 3 ? 4 : 2;
  const perturbed = o.effort >= 3 ? 8 : 4;
  const rows = p.scaled!.rows;
  const jobs = rowJobs(rows, candidatePlan(p.nOut, p.nIn, o.dc, o.method, planEffort(o.effort)));
  for (let seed = 0; seed <= restarts + perturbed; seed++) {
    const noise = seed > restarts ? RESTART_NOISE : 0;
    for (const { tree, method } of jobs) keep(solveRows(p, tree, method, { seed, noise, lookahead: 'ties' }));
  }
  // (the wider look-ahead helps on 16×16 and trained kernels, not on 32×32 and up, at up to 6× the time there)
  if (o.effort >= 3)
    for (let seed = 0; seed <= restarts; seed++)
      for (const { tree, method } of jobs) keep(solveRows(p, tree, method, { seed, lookahead: 'near' }));
  if (o.dc >= 0 || p.nIn < 2) return best;
  const columns = transpose(rows);
  const hops = o.effort >= 3 ? hopLimits(p.nIn) : [4, 8];
  for (const { tree, method } of rowJobs(
    columns,
    hops.flatMap((h) => [
      { hops: h, method: o.method },
      { hops: h, method: other(o.method) },
    ]),
  ))
    for (let seed = 0; seed <= restarts; seed++) keep(solveColumns(p, tree, method, { seed, lookahead: 'ties' }));
  if (p.nOut * p.nIn <= (o.effort >= 3 ? EXTRA_SEARCH_ENTRIES : HYBRID_ENTRIES))
    for (const { rowTree, columnTree, method } of hybridJobs(rows, o))
      for (let seed = 0; seed <= restarts; seed++)
        keep(solveRowsOverColumns(p, rowTree, columnTree, method, { seed, lookahead: 'ties' }));
  return best;
}

/**
 * The row-and-column decompositions of the extra search (solveRowsOverColumns): the row trees at path
 * limits 8 and 16, the column trees of their difference rows at limits 2 and 4, with the other pair score
 * ('mc' by default, which won nearly all of them on random 16×16 and 32×32); effort 3 also with the given
 * score.
 */
function hybridJobs(rows: number[][], o: Settings): Array<{ rowTree: Decomposition; columnTree: Decomposition; method: Method }> {
  const methods = o.effort >= 3 ? [other(o.method), o.method] : [other(o.method)];
  const jobs: Array<{ rowTree: Decomposition; columnTree: Decomposition; method: Method }> = [];
  for (const { tree } of rowJobs(
    rows,
    [8, 16].map((hops) => ({ hops, method: o.method })),
  )) {
    if (tree.diffs.length < 2) continue;
    for (const { tree: columnTree } of rowJobs(
      transpose(tree.diffs),
      [2, 4].map((hops) => ({ hops, method: o.method })),
    ))
      for (const method of methods) jobs.push({ rowTree: tree, columnTree, method });
  }
  return jobs;
}

/**
 * In the extra search, ranking by adders: between equally ranked runs the shallower one (the look-ahead's
 * runs trade a level for an adder often enough to deepen small matrices: 4×4 mean depth 5.98 → 6.03
 * otherwise); null: no preference, `better` decides.
 */
function shallowerOnTie(a: Candidate, b: Candidate, o: Settings): boolean | null {
  if (o.objective !== 'adders') return null;
  const ea = a.adders + o.latencyWeight * a.latency;
  const eb = b.adders + o.latencyWeight * b.latency;
  if (ea !== eb) return ea < eb;
  if (a.latency !== b.latency) return a.latency < b.latency;
  return null;
}

function transpose(m: number[][]): number[][] {
  return m[0]!.map((_, c) => m.map((row) => row[c]!));
}

function other(m: Method): Method {
  return m === 'wmc' ? 'mc' : 'wmc';
}

/**
 * The plan's trees, one per path limit (shared by both pair scores); a tree already tried with a score is
 * skipped (a deeper limit often yields the same tree).
 */
function rowJobs(
  rows: number[][],
  plan: Array<{ hops: number; method: Method }>,
): Array<{ tree: Decomposition; method: Method }> {
  const trees = new Map<number, Decomposition>();
  const distances = new RowDistances(rows);
  const tried = new Set<string>();
  const jobs: Array<{ tree: Decomposition; method: Method }> = [];
  for (const { hops, method } of plan) {
    const h = Math.min(hops, rows.length);
    if (h < 2) continue;
    let t = trees.get(h);
    if (!t) {
      t = decomposeRows(rows, h, distances);
      trees.set(h, t);
    }
    if (tried.has(method + t.key)) continue;
    tried.add(method + t.key);
    jobs.push({ tree: t, method });
  }
  return jobs;
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
export function candidatePlan(
  nOut: number,
  nIn: number,
  dc: number,
  method: Method,
  effort: number,
): Array<{ hops: number; method: Method }> {
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

/** Emit the candidate as IR: inputs, then its adders in creation order (operands always come first). */
function toProgram(c: Candidate, types: ReturnType<typeof minimalKif>[], nOut: number): Program {
  if (c.program) return c.program;
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
    out: c.outs.map((t) =>
      t.wire < 0 ? { wire: -1, shift: 0, neg: false } : { wire: id[t.wire]!, shift: t.pos, neg: t.sign < 0 },
    ),
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
