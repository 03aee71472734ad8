/**
 * Greedy common-subexpression extraction over CSD terms (docs/cmvm.md §1–2).
 *
 * Every output is a sum of terms sign·wire·2^pos. A "pair" is the two-term pattern
 * wire0 ± wire1·2^shift; its count is how many (output, term, term) combinations currently match it.
 * Repeatedly the best pair (count × weight) is made into a new adder wire and substituted wherever it occurs
 * (non-overlapping), until no pair occurs twice. Counts are maintained incrementally: replacing two terms of
 * an output only changes the pairs those terms form with the output's other terms. A lazy bucket queue keeps
 * the best pair at hand.
 *
 * What keeps it fast: a pair's count only grows in the step that makes its newer wire (or at the start), so
 * a pair seen once by then is dead for good and never gets an id (the pair arrays hold only pairs that
 * repeat); per-output pair matrices find the pairs a substitution dissolves without hashing; the pairs of
 * the starting wires and of each step's new wire go through directly indexed tables. The greedy's choices
 * (ties included) do not depend on these structures: the hash-table fallbacks for huge layers give the same
 * graphs (test/cmvm-fallback.test.ts).
 *
 * Delay constraint: with integer arrival times, the earliest-two-first tree of a set of terms finishes at
 * ceil(log2 Σ 2^lat) (Kraft's inequality). So an output with bound B stays feasible exactly while
 * Σ_terms 2^(lat−B) ≤ 1, which is checked for every substitution.
 *
 * Layout: this file holds the extraction state (terms, pair matrices, substitution) and the greedy loop
 * (`greedy`); cse-pairs.ts the pair counts and the queue that picks the best pair; cse-scratch.ts the
 * scratch memory, passed in by the caller (one per solve or thread), and the hash tables.
 */
import { forEachCsdDigit } from './csd.ts';
import { CseScratch, Table3, type F64, type I32 } from './cse-scratch.ts';
import { PairQueue } from './cse-pairs.ts';
import type { AdderGraph, Term } from './graph.ts';

export type Method = 'wmc' | 'mc';

export interface CseOptions {
  method: Method;
  /** Per-output latest allowed finish time, or null for unconstrained. */
  bound: number[] | null;
  /** false: no extraction, just each output's CSD terms (the plain tree's input). */
  extract?: boolean;
  /** Nonzero: a restart, whose ties between equally scored pairs go by a hash of the pair and the seed. */
  seed?: number;
  /**
   * With a nonzero seed: each pair's score is scaled by 1 + noise·u, u ∈ [0, 1) a hash of the pair and the
   * seed, so a restart also reorders nearly equal pairs (a perturbed greedy), not only exact ties.
   */
  noise?: number;
  /**
   * Look-ahead in pair selection: 'ties': among the equally scored pairs at the top, take the one whose
   * occurrences dissolve the fewest occurrences of other repeated pairs (what stays shareable after taking
   * it); 'near': also weigh pairs scoring up to 10% lower (score − 0.1 × weight × dissolved occurrences).
   */
  lookahead?: 'ties' | 'near';
  /** Scratch memory to reuse (one per solve or thread); a fresh one if absent. */
  scratch?: CseScratch;
}

/**
 * Memory budgets (entries) of the fast structures; beyond them the hash tables take over, with the same
 * results. Mutable only so that tests can force the fallbacks on small matrices.
 */
export const CSE_BUDGETS = {
  /** Pair matrices of all outputs (4 bytes each); outputs beyond it find their pairs by hashing. */
  matrices: 1 << 25,
  /** Direct pair index over the starting wires; beyond it their pairs are hashed too. */
  direct: 1 << 24,
  /** Direct step table (wires × shifts). */
  step: 1 << 23,
};

/** Outputs with at least this many terms gather their matrix entries first in a substitution. */
const GATHER_MIN = 64;
const GATHER_NONE: I32 = new Int32Array(0);

/**
 * Index of the unordered slot pair {a, b} (a ≠ b) in an n-slot pair matrix: the strict upper triangle,
 * row-major, so the pairs of one slot with all later ones are contiguous (the initial count walks them in
 * that order).
 */
function tri(a: number, b: number, n: number): number {
  return a < b ? ((a * (2 * n - a - 3)) >> 1) - 1 + b : ((b * (2 * n - b - 3)) >> 1) - 1 + a;
}

/** Removes t from `list` in O(1), moving the last entry into its place; index[x] is x's position in the list. */
function swapRemove(list: number[], t: number, index: I32): void {
  const last = list.pop()!;
  if (last === t) return;
  const i = index[t]!;
  list[i] = last;
  index[last] = i;
}

/** The per-term arrays (grown together). */
const TERM_COLUMNS = [
  'tWire',
  'tPos',
  'tSign',
  'tOut',
  'tAlive',
  'tIdxOut',
  'tIdxWire',
  'tMark',
  'tSlot',
  'tKey',
] as const satisfies readonly (keyof Cse)[];

/** The extraction state; one instance per extractCommon call. */
class Cse {
  readonly g: AdderGraph;
  readonly bound: number[] | null;
  readonly doExtract: boolean;

  // terms
  tcap: number;
  tWire: I32;
  tPos: I32;
  tSign: I32;
  tOut: I32;
  tAlive: I32;
  tIdxOut: I32;
  tIdxWire: I32;
  tMark: I32;
  /** Slot of the term within its output (a term replacing two reuses the first one's slot). */
  tSlot: I32;
  /** Per term, its part of the direct step index: wire·keyWidth − 2·pos + (1 if negative). */
  tKey: I32;
  keyWidth = 0;
  nTerms = 0;
  readonly outTerms: number[][] = [];
  readonly wireTerms: number[][] = [];
  readonly termTable: Table3;
  /** Σ 2^(lat − bound) over each output's terms: the output stays feasible while ≤ 1. */
  readonly slack: F64;

  /** Positions of all terms lie in [posLo, posLo + posSpan] (substitutions keep positions), so |shift| ≤ posSpan. */
  posLo = 0;
  posSpan = 0;
  /** Entries per wire of the direct step index, or 0: this step uses the hash table. */
  stepWidth = 0;
  /** Every output has a pair matrix, so pairs with a new wire need only the step table. */
  allMats = false;
  /** This step's pairs (see substituteMerged). */
  sEnt: I32;
  nStep = 0;
  stepSeq = 0;
  /** The terms made in this step. */
  readonly stepTerms: number[] = [];

  /**
   * Per output, the pair id of every two slots (lower triangle, see tri), so a substitution finds the pairs
   * it dissolves without hashing. matBase[o] = −1: too big, use the hash table.
   */
  matBase: Int32Array = new Int32Array(0);
  /** Local index of each starting wire (−1: none) and the direct pair index over them. */
  localMap: I32 = new Int32Array(0);
  nLocal = 0;
  shiftSpan = 0;
  direct: I32 = new Int32Array(0);
  matDim: Int32Array = new Int32Array(0);
  mat: I32 = new Int32Array(0);

  /** Pair counts and the queue that picks the best pair. */
  readonly q: PairQueue;
  readonly pairTable: Table3;

  constructor(
    private readonly s: CseScratch,
    g: AdderGraph,
    nOut: number,
    nTermsHint: number,
    nPairsHint: number,
    opts: CseOptions,
  ) {
    this.g = g;
    this.doExtract = opts.extract ?? true;
    this.bound = opts.bound ? opts.bound.map((b) => Math.floor(b)) : null;
    const tc = Math.max(64, nTermsHint * 2);
    this.tcap = tc;
    this.tWire = this.s.i32('tWire', tc);
    this.tPos = this.s.i32('tPos', tc);
    this.tSign = this.s.i32('tSign', tc);
    this.tOut = this.s.i32('tOut', tc);
    this.tAlive = this.s.i32('tAlive', tc);
    this.tIdxOut = this.s.i32('tIdxOut', tc);
    this.tIdxWire = this.s.i32('tIdxWire', tc);
    this.tMark = this.s.i32('tMark', tc);
    this.tSlot = this.s.i32('tSlot', tc);
    this.tKey = this.s.i32('tKey', tc, false);
    this.termTable = new Table3(s, 'termTable', tc);
    this.slack = new Float64Array(nOut);
    for (let o = 0; o < nOut; o++) this.outTerms.push([]);
    this.q = new PairQueue(s, g, opts.method, nPairsHint, opts.seed ?? 0, opts.noise ?? 0);
    if (opts.lookahead) this.q.loss = (p) => this.lossOf(p);
    this.q.near = opts.lookahead === 'near';
    this.sEnt = s.i32('sEnt', 512, false);
    this.pairTable = new Table3(s, 'pairTable', 1024); // starting-wire pairs outside the direct index (rare); grows
  }

  /** Give each output a pair matrix sized to its (never growing) number of terms. */
  allocMatrices(): void {
    const nOut = this.outTerms.length;
    this.matBase = new Int32Array(nOut).fill(-1);
    this.matDim = new Int32Array(nOut);
    let total = 0;
    for (let o = 0; o < nOut; o++) {
      const n = this.outTerms[o]!.length;
      this.matDim[o] = n;
      const size = (n * (n - 1)) >> 1; // lower triangle: the matrix is symmetric
      if (total + size > CSE_BUDGETS.matrices) continue;
      this.matBase[o] = total;
      total += size;
    }
    this.mat = this.s.i32('mat', total, false); // every entry read is written first
    this.allMats = this.matBase.every((b) => b >= 0);
  }

  addTerm(o: number, w: number, pos: number, sign: number, slot: number): number {
    if (this.nTerms >= this.tcap) {
      const c = this.tcap * 2;
      this.tcap = c;
      this.s.growFields(this, TERM_COLUMNS, c);
    }
    const t = this.nTerms++;
    this.tWire[t] = w;
    this.tPos[t] = pos;
    this.tSign[t] = sign;
    this.tOut[t] = o;
    this.tAlive[t] = 1;
    this.tSlot[t] = slot;
    this.tKey[t] = w * this.keyWidth - 2 * pos + (sign < 0 ? 1 : 0);
    const ol = this.outTerms[o]!;
    this.tIdxOut[t] = ol.length;
    ol.push(t);
    while (this.wireTerms.length <= w) this.wireTerms.push([]);
    const wl = this.wireTerms[w]!;
    this.tIdxWire[t] = wl.length;
    wl.push(t);
    this.termTable.insert(o, w, pos, t);
    if (this.bound) this.slack[o] += 2 ** (Math.ceil(this.g.lat[w]!) - this.bound[o]!);
    return t;
  }

  removeTerm(t: number): void {
    this.tAlive[t] = 0;
    const o = this.tOut[t]!;
    const w = this.tWire[t]!;
    swapRemove(this.outTerms[o]!, t, this.tIdxOut);
    swapRemove(this.wireTerms[w]!, t, this.tIdxWire);
    if (this.bound) this.slack[o] -= 2 ** (Math.ceil(this.g.lat[w]!) - this.bound[o]!);
  }

  /** The pair formed by terms t and u (ordered: lower wire first, then lower position). */
  pairOf(t: number, u: number): number {
    const tWire = this.tWire;
    const tPos = this.tPos;
    let a = t;
    let b = u;
    if (tWire[a]! > tWire[b]! || (tWire[a] === tWire[b] && tPos[a]! > tPos[b]!)) {
      a = u;
      b = t;
    }
    const w0 = tWire[a]!;
    const w1 = tWire[b]!;
    const sub = this.tSign[a] !== this.tSign[b] ? 1 : 0;
    const shift = tPos[b]! - tPos[a]!;
    // pairs of the wires present from the start: a direct index (most lookups), others: the hash table
    const lm = this.localMap;
    if (w1 < lm.length) {
      const l0 = lm[w0]!;
      const l1 = lm[w1]!;
      const sh = shift + this.shiftSpan;
      if (l0 >= 0 && l1 >= 0 && sh >= 0 && sh <= 2 * this.shiftSpan) {
        // wires ordered, so the unordered local pair (with the diagonal) identifies the pair of wires;
        // upper triangle row-major: one wire's pairs with the later ones (the initial count's order) are adjacent
        const lp =
          l0 < l1 ? ((l0 * (2 * this.nLocal - l0 + 1)) >> 1) + l1 - l0 : ((l1 * (2 * this.nLocal - l1 + 1)) >> 1) + l0 - l1;
        const i = (lp * (2 * this.shiftSpan + 1) + sh) * 2 + sub;
        let p = this.direct[i]!;
        if (p < 0) {
          p = this.q.newPair(w0, w1, sub, shift);
          this.direct[i] = p;
        }
        return p;
      }
    }
    const key = shift * 2 + sub; // stays a small integer (no heap numbers)
    let p = this.pairTable.get(w0, w1, key);
    if (p < 0) {
      p = this.q.newPair(w0, w1, sub, shift);
      this.pairTable.insert(w0, w1, key, p);
    }
    return p;
  }

  /**
   * substitute() when every output has a pair matrix, in one pass over the output's terms: each of t's
   * pairs is dissolved and then replaced in the same matrix entry by the pair with the new term nt (which
   * takes t's slot), u's pairs are dissolved alongside. The pairs of nt with the other terms of the output
   * are this step's (wire n is the newest): they only get occurrences in this step, so one seen once by its
   * end is dead for good. It gets no id unless a second occurrence shows up; its first-sight order is the
   * step's first order (stepSeq) + e, e its record in the step table (sEnt: matrix entry of the occurrence,
   * then state: the pair id once seen twice, −1 while seen once, 0 after that occurrence was removed), and
   * until then its entry holds −1 − order. Such references from earlier steps are below stepSeq: DEAD. Same counts and the same order of reaching count 2 as dissolving
   * all of t's and u's pairs first: only pairs with this step's earlier new terms can be this step's pairs,
   * and those are dissolved before anything is added.
   */
  substituteMerged(t: number, u: number, n: number, o: number, ol: number[], base: number, k: number): void {
    const { tWire, tPos, tSign, tSlot, mat } = this;
    const pCount = this.q.pCount;
    const st = tSlot[t]!;
    const su = tSlot[u]!;
    const rowSt = ((st * (2 * k - st - 3)) >> 1) - 1;
    const rowSu = ((su * (2 * k - su - 3)) >> 1) - 1;
    // pairs of t and u with this output's earlier new terms (step-table entries possible), and with each other
    const stepTerms = this.stepTerms;
    for (let i = 0; i < stepTerms.length; i++) {
      const v = stepTerms[i]!;
      if (this.tOut[v] !== o) continue;
      const sv = tSlot[v]!;
      const p = mat[base + (st < sv ? rowSt + sv : ((sv * (2 * k - sv - 3)) >> 1) - 1 + st)]!;
      if (p > 0) pCount[p]!--;
      else if (p < 0 && -1 - p >= this.stepSeq) this.sEnt[2 * (-1 - p - this.stepSeq) + 1] = 0;
      const q = mat[base + (su < sv ? rowSu + sv : ((sv * (2 * k - sv - 3)) >> 1) - 1 + su)]!;
      if (q > 0) pCount[q]!--;
      else if (q < 0 && -1 - q >= this.stepSeq) this.sEnt[2 * (-1 - q - this.stepSeq) + 1] = 0;
    }
    const ptu = mat[base + (st < su ? rowSt + su : rowSu + st)]!;
    if (ptu > 0) pCount[ptu]!--;
    const pn = tPos[t]!;
    const gn = tSign[t]!;
    this.removeTerm(t);
    this.removeTerm(u);
    const nt = this.addTerm(o, n, pn, gn, st);
    stepTerms.push(nt);

    const width = this.stepWidth;
    const off = 2 * this.posSpan;
    // direct step index of (nt, v) = wv·width + 2·shift + sub + off (shift = pn − pos_v) = (tKey[v] + cst) XOR gbit
    const cst = 2 * pn + off;
    const gbit = gn < 0 ? 1 : 0;
    const tKey = this.tKey;
    const tab = this.s.stepTab;
    const epoch = this.s.stepEpoch;
    const nv = ol.length;
    // long rows: first gather the matrix entries of t's and u's pairs (independent loads, which the CPU
    // overlaps; half of them are a column of the triangle, a cache line each), then use them
    const gather = nv >= GATHER_MIN;
    const gm = gather ? this.s.i32('gatherM', nv, false) : GATHER_NONE;
    const gp = gather ? this.s.i32('gatherP', nv, false) : GATHER_NONE;
    const gq = gather ? this.s.i32('gatherQ', nv, false) : GATHER_NONE;
    if (gather) {
      for (let i = 0; i < nv; i++) {
        const sv = tSlot[ol[i]!]!;
        const mi = base + (st < sv ? rowSt + sv : ((sv * (2 * k - sv - 3)) >> 1) - 1 + st);
        gm[i] = mi;
        gp[i] = mat[mi]!;
        gq[i] = mat[base + (su < sv ? rowSu + sv : ((sv * (2 * k - sv - 3)) >> 1) - 1 + su)]!;
      }
    }
    for (let i = 0; i < nv; i++) {
      const v = ol[i]!;
      if (v === nt) continue;
      let mi: number;
      let sv = 0;
      if (gather) mi = gm[i]!;
      else {
        sv = tSlot[v]!;
        mi = base + (st < sv ? rowSt + sv : ((sv * (2 * k - sv - 3)) >> 1) - 1 + st);
      }
      const wv = tWire[v]!;
      let x: number;
      let e: number;
      if (wv !== n) {
        // dissolve (t, v) and (u, v): pairs of older wires (an id or DEAD)
        const p = gather ? gp[i]! : mat[mi]!;
        if (p > 0) pCount[p]!--;
        const q = gather ? gq[i]! : mat[base + (su < sv ? rowSu + sv : ((sv * (2 * k - sv - 3)) >> 1) - 1 + su)]!;
        if (q > 0) pCount[q]!--;
        if (width > 0) {
          x = (tKey[v]! + cst) ^ gbit;
          e = tab[2 * x] === epoch ? tab[2 * x + 1]! : -1;
        } else {
          x = -1;
          e = this.s.stepTable.get(wv, 2 * (pn - tPos[v]!) + (gn !== tSign[v] ? 1 : 0));
        }
      } else {
        // two terms of wire n: the lower position first
        const key = 2 * Math.abs(pn - tPos[v]!) + (gn !== tSign[v] ? 1 : 0);
        x = width > 0 ? wv * width + key + off : -1;
        e = x >= 0 ? (tab[2 * x] === epoch ? tab[2 * x + 1]! : -1) : this.s.stepTable.get(wv, key);
      }
      if (e < 0) {
        e = this.nStep++;
        if (2 * e + 1 >= this.sEnt.length) this.sEnt = this.s.grow('sEnt', this.sEnt, 4 * e + 2);
        if (x >= 0) {
          tab[2 * x] = epoch;
          tab[2 * x + 1] = e;
        } else
          this.s.stepTable.insert(
            wv,
            wv === n ? 2 * Math.abs(pn - tPos[v]!) + (gn !== tSign[v] ? 1 : 0) : 2 * (pn - tPos[v]!) + (gn !== tSign[v] ? 1 : 0),
            e,
          );
        this.sEnt[2 * e] = mi;
        this.sEnt[2 * e + 1] = -1;
        mat[mi] = -1 - this.stepSeq - e;
        continue;
      }
      const sEnt = this.sEnt;
      let p = sEnt[2 * e + 1]!;
      if (p === 0) {
        // seen again after its occurrence was removed
        sEnt[2 * e] = mi;
        sEnt[2 * e + 1] = -1;
        mat[mi] = -1 - this.stepSeq - e;
        continue;
      }
      if (p < 0) {
        // the second occurrence: now a pair, with the count of both
        const shift = wv === n ? Math.abs(pn - tPos[v]!) : pn - tPos[v]!;
        p = this.q.newPair(wv, n, gn !== tSign[v] ? 1 : 0, shift, this.stepSeq + e);
        sEnt[2 * e + 1] = p;
        mat[sEnt[2 * e]!] = p;
        this.q.pCount[p] = 1;
      }
      this.q.inc(p);
      mat[mi] = p;
    }
  }

  /** Open a step that makes wire n: an empty step table. */
  beginStep(n: number): void {
    this.s.stepEpoch++;
    this.stepSeq = this.q.seq;
    const width = this.keyWidth;
    const size = (n + 1) * width;
    this.stepWidth = 0;
    if (size > CSE_BUDGETS.step) return;
    if (this.s.stepTab.length < 2 * size) {
      // (a fresh array: zero stamps are never current)
      this.s.stepTab = new Int32Array(2 * Math.min(CSE_BUDGETS.step, Math.max(size * 2, 4096)));
    }
    this.stepWidth = width;
  }

  /** Close a step: the pairs seen once are dead. */
  endStep(): void {
    // (entries of pairs seen once keep their references −1 − order: below the next step's first order,
    // they read as DEAD)
    this.q.seq += this.nStep;
    this.nStep = 0;
    this.stepTerms.length = 0;
    this.s.stepTable.clear();
  }

  /** Set up the direct pair index over the wires the terms start with. */
  allocDirect(): void {
    const g = this.g;
    const lm = this.s.i32('localMap', g.size, false).fill(-1);
    let lo = Infinity;
    let hi = -Infinity;
    for (let t = 0; t < this.nTerms; t++) {
      lm[this.tWire[t]!] = 0;
      lo = Math.min(lo, this.tPos[t]!);
      hi = Math.max(hi, this.tPos[t]!);
    }
    // local indices in wire order, so the local pair order is the wire order
    let n = 0;
    for (let w = 0; w < lm.length; w++) if (lm[w] === 0) lm[w] = n++ + 1;
    for (let w = 0; w < lm.length; w++) lm[w]--;
    const span = hi - lo;
    const size = ((n * (n + 1)) >> 1) * (2 * span + 1) * 2;
    if (n === 0 || size > CSE_BUDGETS.direct) return;
    this.localMap = lm;
    this.nLocal = n;
    this.shiftSpan = span;
    this.direct = this.s.i32('direct', size, false).fill(-1);
  }

  initialCounts(): void {
    let lo = Infinity;
    let hi = -Infinity;
    for (let t = 0; t < this.nTerms; t++) {
      lo = Math.min(lo, this.tPos[t]!);
      hi = Math.max(hi, this.tPos[t]!);
    }
    this.posLo = lo;
    this.posSpan = this.nTerms > 0 ? hi - lo : 0;
    const kw = (2 * this.posSpan + 1) * 2;
    this.keyWidth = kw;
    for (let t = 0; t < this.nTerms; t++) this.tKey[t] = this.tWire[t]! * kw - 2 * this.tPos[t]! + (this.tSign[t]! < 0 ? 1 : 0);
    this.allocDirect();
    this.allocMatrices();
    const mat = this.mat;
    this.outTerms.forEach((ol, o) => {
      const base = this.matBase[o]!;
      const k = this.matDim[o]!;
      if (base >= 0 && this.direct.length > 0 && this.sortedRow(ol)) {
        this.countSortedRow(ol, base);
        return;
      }
      for (let i = 0; i < ol.length; i++) {
        const si = this.tSlot[ol[i]!]!;
        for (let j = i + 1; j < ol.length; j++) {
          const p = this.pairOf(ol[i]!, ol[j]!);
          this.q.inc(p);
          if (base >= 0) mat[base + tri(si, this.tSlot[ol[j]!]!, k)] = p;
        }
      }
    });
    this.q.flush();
  }

  /** Whether an output's terms are in (wire, position) order, each in its own slot (as extractCommon adds them). */
  sortedRow(ol: number[]): boolean {
    const { tWire, tPos, tSlot } = this;
    for (let i = 0; i < ol.length; i++) {
      const t = ol[i]!;
      if (tSlot[t] !== i) return false;
      if (i > 0) {
        const s = ol[i - 1]!;
        if (tWire[s]! > tWire[t]! || (tWire[s] === tWire[t] && tPos[s]! >= tPos[t]!)) return false;
      }
    }
    return true;
  }

  /**
   * initialCounts for a sorted row (the common case): the same pairs, ids and order as pairOf, with term i
   * always the pair's first operand, the direct index and the pair matrix walked in address order.
   */
  countSortedRow(ol: number[], base: number): void {
    const { tWire, tPos, tSign, localMap: lm, direct, mat } = this;
    const dirty = this.q.dirty;
    const n = this.nLocal;
    const span = this.shiftSpan;
    const s2 = (2 * span + 1) * 2;
    const k = ol.length;
    // per term: its part of the direct index, l·s2 + 2·pos, with its sign bit (1: negative) in bit 0
    const rk = this.s.i32('rowKey', k, false);
    for (let j = 0; j < k; j++) {
      const t = ol[j]!;
      rk[j] = lm[tWire[t]!]! * s2 + tPos[t]! * 2 + (tSign[t]! < 0 ? 1 : 0);
    }
    let m = base;
    for (let i = 0; i < k - 1; i++) {
      const ti = ol[i]!;
      const li = lm[tWire[ti]!]!;
      const pi = tPos[ti]!;
      const gi = tSign[ti]! < 0 ? 1 : 0;
      // direct index of (i, j) = rowOff + l_j·s2 + 2·pos_j + sub, sub = the sign bits' XOR (see pairOf)
      const rowOff = (((li * (2 * n - li + 1)) >> 1) - li) * s2 + (span - pi) * 2;
      this.q.reservePairs(k - 1 - i);
      const pCount = this.q.pCount;
      const pDirty = this.q.pDirty;
      for (let j = i + 1; j < k; j++) {
        const x = (rowOff + rk[j]!) ^ gi;
        let p = direct[x]!;
        if (p < 0) {
          const tj = ol[j]!;
          p = this.q.newPair(tWire[ti]!, tWire[tj]!, x & 1, tPos[tj]! - pi);
          direct[x] = p;
        }
        if (++pCount[p]! === 2) {
          pDirty[p] = 1;
          dirty.push(p);
        }
        mat[m++] = p;
      }
    }
  }

  private epoch = 0;
  private readonly cand: number[] = [];
  private readonly matches: number[] = [];
  private readonly dryOuts: number[] = [];

  /**
   * Non-overlapping occurrences of pair p that keep their outputs within bound, as [t, u, t, u, ...]
   * (t the first operand's term).
   */
  findMatches(p: number): number[] {
    const w0 = this.q.pW0[p]!;
    const w1 = this.q.pW1[p]!;
    const sub = this.q.pSub[p]!;
    const shift = this.q.pShift[p]!;
    const { tOut, tPos, tSign, tAlive, tMark } = this;
    const cand = this.cand;
    cand.length = 0;
    const wl = this.wireTerms[w0]!;
    for (let i = 0; i < wl.length; i++) cand.push(wl[i]!);
    // chains of one wire (x, x<<s, x<<2s) must pair up in position order; otherwise any fixed order works
    if (w0 === w1) cand.sort((x, y) => tOut[x]! - tOut[y]! || tPos[x]! - tPos[y]!);
    const epoch = ++this.epoch;
    const matches = this.matches;
    matches.length = 0;
    const bound = this.bound;
    // (arrival times rounded up: the Kraft rule is exact for integers and conservative otherwise)
    const l0 = Math.ceil(this.g.lat[w0]!);
    const l1 = Math.ceil(this.g.lat[w1]!);
    // substituting equally early operands never changes Σ 2^lat, so only unequal ones need checking
    const check = bound !== null && l0 !== l1;
    const lNew = Math.max(l0, l1) + 1;
    const dry = this.dryOuts;
    dry.length = 0;
    for (let i = 0; i < cand.length; i++) {
      const t = cand[i]!;
      if (tMark[t] === epoch) continue;
      const o = tOut[t]!;
      const u = this.termTable.get(o, w1, tPos[t]! + shift);
      if (u < 0 || u === t || tAlive[u] === 0 || tMark[u] === epoch) continue;
      if ((tSign[u] !== tSign[t] ? 1 : 0) !== sub) continue;
      if (check) {
        const b = bound[o]!;
        const d = 2 ** (lNew - b) - 2 ** (l0 - b) - 2 ** (l1 - b);
        if (this.slack[o]! + d > 1) continue;
        this.slack[o] += d; // tentatively; undone below
        dry.push(o, d);
      }
      tMark[t] = epoch;
      tMark[u] = epoch;
      matches.push(t, u);
    }
    for (let i = 0; i < dry.length; i += 2) this.slack[dry[i]!] -= dry[i + 1]!;
    return matches;
  }

  /**
   * Look-ahead of taking pair p: the occurrences of other repeated pairs (count ≥ 2) that its occurrences'
   * terms take part in, which the substitution would dissolve. (Outputs without a pair matrix look their
   * pairs up by hashing: every pair of live terms has an id then, so the count is the same.)
   */
  lossOf(p: number): number {
    const w0 = this.q.pW0[p]!;
    const w1 = this.q.pW1[p]!;
    const sub = this.q.pSub[p]!;
    const shift = this.q.pShift[p]!;
    const { tOut, tPos, tSign, tAlive, tSlot, mat } = this;
    const pCount = this.q.pCount;
    const wl = this.wireTerms[w0]!;
    let loss = 0;
    for (let i = 0; i < wl.length; i++) {
      const t = wl[i]!;
      const o = tOut[t]!;
      const u = this.termTable.get(o, w1, tPos[t]! + shift);
      if (u < 0 || u === t || tAlive[u] === 0 || (tSign[u] !== tSign[t] ? 1 : 0) !== sub) continue;
      const base = this.matBase[o]!;
      const k = this.matDim[o]!;
      const st = tSlot[t]!;
      const su = tSlot[u]!;
      const ol = this.outTerms[o]!;
      for (let j = 0; j < ol.length; j++) {
        const v = ol[j]!;
        if (v === t || v === u) continue;
        const sv = tSlot[v]!;
        const a = base >= 0 ? mat[base + tri(st, sv, k)]! : this.pairOf(t, v);
        const b = base >= 0 ? mat[base + tri(su, sv, k)]! : this.pairOf(u, v);
        if (a > 0 && a !== p && pCount[a]! >= 2) loss++;
        if (b > 0 && b !== p && pCount[b]! >= 2) loss++;
      }
    }
    return loss;
  }

  /** Replace terms t, u (an occurrence of the pair that wire n implements) by one term of n. */
  substitute(t: number, u: number, n: number): void {
    const o = this.tOut[t]!;
    const ol = this.outTerms[o]!;
    const base = this.matBase[o]!;
    const k = this.matDim[o]!;
    if (base >= 0 && this.allMats) {
      this.substituteMerged(t, u, n, o, ol, base, k);
      return;
    }
    // some outputs find their pairs by hashing: every pair gets its id at first sight
    const pCount = this.q.pCount;
    const tSlot = this.tSlot;
    const st = tSlot[t]!;
    const mat = this.mat;
    if (base >= 0) {
      const su = tSlot[u]!;
      for (let i = 0; i < ol.length; i++) {
        const v = ol[i]!;
        if (v === t || v === u) continue;
        const sv = tSlot[v]!;
        pCount[mat[base + tri(st, sv, k)]!]!--;
        pCount[mat[base + tri(su, sv, k)]!]!--;
      }
      pCount[mat[base + tri(st, su, k)]!]!--;
    } else {
      for (let i = 0; i < ol.length; i++) {
        const v = ol[i]!;
        if (v === t || v === u) continue;
        pCount[this.pairOf(t, v)]!--;
        pCount[this.pairOf(u, v)]!--;
      }
      pCount[this.pairOf(t, u)]!--;
    }
    const pos = this.tPos[t]!;
    const sign = this.tSign[t]!;
    this.removeTerm(t);
    this.removeTerm(u);
    const nt = this.addTerm(o, n, pos, sign, st);
    for (let i = 0; i < ol.length; i++) {
      const v = ol[i]!;
      if (v === nt) continue;
      const p = this.pairOf(nt, v);
      if (base >= 0) mat[base + tri(st, tSlot[v]!, k)] = p;
      this.q.inc(p);
    }
  }

  /** Make wire n from the pair's occurrences `matches` ([t, u, t, u, …]) in one step. */
  substituteAll(matches: number[], n: number): void {
    this.beginStep(n);
    for (let m = 0; m < matches.length; m += 2) this.substitute(matches[m]!, matches[m + 1]!, n);
    this.endStep();
  }
}

/**
 * The greedy: repeatedly make the best pair into an adder and substitute it wherever it occurs (without
 * overlaps, within the outputs' delay bounds), until no pair occurs twice.
 */
function greedy(st: Cse): void {
  const q = st.q;
  for (;;) {
    const p = q.popBest();
    if (p < 0) return;
    const matches = st.findMatches(p);
    if (matches.length < 4) {
      q.block(p);
      continue;
    }
    st.substituteAll(matches, st.g.addAdder(q.pW0[p]!, q.pW1[p]!, q.pShift[p]!, q.pSub[p] === 1));
    q.flush();
  }
}

/**
 * Extract common pairs from `rows` (row r = Σ coef·wire over its entries) into `g`, and return, per row,
 * the terms left to be summed (CSD digits of each wire's total coefficient, rewritten through the new wires).
 */
export function extractCommon(g: AdderGraph, rows: Array<Array<{ wire: number; coef: number }>>, opts: CseOptions): Term[][] {
  const nOut = rows.length;
  // each wire's total coefficient per row (in order of first appearance), then its CSD digits as
  // [wire, position, sign] triples
  const scratch = opts.scratch ?? new CseScratch();
  const seen = scratch.i32('seenWire', g.size, false).fill(-1);
  const digits: number[][] = new Array(nOut);
  let nTerms = 0;
  let nPairs = 0;
  for (let o = 0; o < nOut; o++) {
    let row = rows[o]!;
    let repeated = false;
    for (const { wire } of row) {
      if (wire < 0) continue;
      if (seen[wire] === o) repeated = true;
      seen[wire] = o;
    }
    if (repeated) {
      const coef = new Map<number, number>();
      for (const { wire, coef: c } of row) if (wire >= 0 && c !== 0) coef.set(wire, (coef.get(wire) ?? 0) + c);
      row = [...coef].map(([wire, c]) => ({ wire, coef: c }));
    }
    const out: number[] = [];
    for (const { wire, coef } of row) if (wire >= 0 && coef !== 0) forEachCsdDigit(coef, (p, s) => out.push(wire, p, s));
    digits[o] = out;
    const d = out.length / 3;
    nTerms += d;
    nPairs += (d * (d - 1)) / 2;
  }
  const st = new Cse(scratch, g, nOut, nTerms, Math.ceil(nPairs * 1.25), opts);
  for (let o = 0; o < nOut; o++) {
    const d = digits[o]!;
    for (let i = 0; i < d.length; i += 3) st.addTerm(o, d[i]!, d[i + 1]!, d[i + 2]!, i / 3);
  }
  if (st.doExtract) {
    st.initialCounts();
    greedy(st);
  }
  return st.outTerms.map((ol) => ol.map((t) => ({ wire: st.tWire[t]!, pos: st.tPos[t]!, sign: st.tSign[t]! as 1 | -1 })));
}
