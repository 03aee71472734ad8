/**
 * Pair selection of the common-pair extraction (cse.ts): every pair that occurs at least twice, with its
 * count, and a lazy bucket queue by score (count × weight) that hands out the best pair. Ties go to the pair
 * with the earlier operands, then to the newer pair (or, in a restart, to a hash of the pair and the seed).
 */
import type { AdderGraph } from './graph.ts';
import type { CseScratch, F64, I32 } from './cse-scratch.ts';

/** Heap keys are count × weight (integers) plus a fraction < 1 that prefers early operands. */
const LAT_SLOTS = 1024;
/** Current entries of the top bucket compared for the tie-break. */
const TIE_SCAN = 32;
/**
 * With look-ahead, the entries compared: more candidates, fewer adders (seeded set, vs 32: 128 found 0.4–0.9%
 * fewer on 32×32 and 64×64 at up to 2× the time, 512 another 0.3–0.8% at 2–3× more).
 */
const LOOKAHEAD_SCAN = 128;
/**
 * Look-ahead 'near' (CseOptions.lookahead): pairs scoring up to NEAR_FRAC below the top are valued at
 * score − NEAR_ALPHA × weight × dissolved occurrences, NEAR_SCAN current entries per bucket. Tuned on random
 * 16×16 and the HGQ2 kernels (α 0.1–0.3 and a 5–10% window helped, a 20–35% window hurt).
 */
const NEAR_FRAC = 0.1;
const NEAR_ALPHA = 0.1;
const NEAR_SCAN = 16;
/** Weight resolution of perturbed scores. */
const NOISE_SCALE = 64;

/** The pair id of occurrences that can never become a common pair (its count is meaningless). */
export const DEAD = 0;

/** The per-pair arrays (grown together). */
const PAIR_COLUMNS = [
  'pW0',
  'pW1',
  'pSub',
  'pShift',
  'pCount',
  'pWeight',
  'pTie',
  'pNewest',
  'pBlocked',
  'pDirty',
  'pOrder',
] as const satisfies readonly (keyof PairQueue)[];

export class PairQueue {
  pcap: number;
  pW0: I32;
  pW1: I32;
  pSub: I32;
  pShift: I32;
  pCount: I32;
  pWeight: F64;
  pTie: F64;
  /** Key of the pair's newest heap entry (0: none; real keys are ≥ 2). */
  pNewest: F64;
  /** The count at which the pair had fewer than 2 feasible occurrences (0: not blocked). */
  pBlocked: I32;
  pDirty: I32;
  /** First-sight order of each pair (ties go to the newer pair); ids themselves are given lazily. */
  pOrder: I32;
  /** Pairs seen so far, live or not (the next first-sight order). */
  seq = 0;
  /** Pair id 0 is DEAD: the matrix entry of an occurrence whose pair can never occur twice. */
  nPairs = DEAD + 1;
  /**
   * Look-ahead (CseOptions.lookahead): the occurrences of other repeated pairs that taking pair p would
   * dissolve; among equally scored pairs the fewest go first. Set by the extraction; null: no look-ahead.
   */
  loss: ((p: number) => number) | null = null;
  /** Look-ahead also below the top bucket (see NEAR_FRAC). */
  near = false;
  /** Pairs whose count rose to 2 or more since the last flush. */
  readonly dirty: number[] = [];

  /**
   * Bucket queue of pairs by integer score (count × weight): bucket s is a linked list (head[s], then eNext)
   * of entries ePair, newest first, kept in scratch typed arrays (no garbage) — lazily: an entry is
   * current only while pNewest[p] === s and the pair still scores s. `top` ≥ every current entry's score.
   */
  head: I32;
  ePair: I32;
  eNext: I32;
  nEntries = 0;
  freeEntry = -1;
  top = 0;
  private readonly wmc: boolean;
  /** Relative score perturbation of a restart (see CseOptions.noise). */
  private readonly noise: number;
  private readonly latBase: number;

  constructor(
    private readonly s: CseScratch,
    private readonly g: AdderGraph,
    method: 'wmc' | 'mc',
    nPairsHint: number,
    private readonly seed: number,
    noise: number,
  ) {
    this.noise = seed !== 0 ? noise : 0;
    this.wmc = method === 'wmc';
    this.latBase = g.lat.length > 0 ? Math.min(...g.lat) : 0;
    const pc = Math.max(1024, nPairsHint); // grows when needed
    this.pcap = pc;
    // (newPair initialises every field)
    this.pW0 = s.i32('pW0', pc, false);
    this.pW1 = s.i32('pW1', pc, false);
    this.pSub = s.i32('pSub', pc, false);
    this.pShift = s.i32('pShift', pc, false);
    this.pCount = s.i32('pCount', pc, false);
    this.pWeight = s.f64('pWeight', pc, false);
    this.pTie = s.f64('pTie', pc, false);
    this.pNewest = s.f64('pNewest', pc, false);
    this.pBlocked = s.i32('pBlocked', pc, false);
    this.pDirty = s.i32('pDirty', pc, false);
    this.pOrder = s.i32('pOrder', pc, false);
    this.head = s.i32('head', 1024).fill(-1);
    this.ePair = s.i32('ePair', 4096, false);
    this.eNext = s.i32('eNext', 4096, false);
  }

  /** Among equally scored, equally early pairs: whether p goes before q (the newer pair, or by hash in a restart). */
  private laterTie(p: number, q: number, pOrder: I32): boolean {
    return this.seed === 0 ? pOrder[p]! > pOrder[q]! : this.tieHash(p) > this.tieHash(q);
  }

  /** A hash of the pair (its wires, shift and sign, not its id) and the seed. */
  private tieHash(p: number): number {
    let h = Math.imul(this.pW0[p]! ^ this.seed, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 16) ^ this.pW1[p]!, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ (this.pShift[p]! * 2 + this.pSub[p]!), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** Pair p had fewer than 2 feasible occurrences: out of the running until its count rises. */
  block(p: number): void {
    this.pBlocked[p] = this.pCount[p]!;
  }

  /** Room for `extra` more pairs without growing the pair arrays (so callers may hold on to them). */
  reservePairs(extra: number): void {
    if (this.nPairs + extra <= this.pcap) return;
    const c = Math.max(this.pcap * 2, this.nPairs + extra);
    this.pcap = c;
    this.s.growFields(this, PAIR_COLUMNS, c);
  }

  newPair(w0: number, w1: number, sub: number, shift: number, order = this.seq++): number {
    this.reservePairs(1);
    const p = this.nPairs++;
    this.pW0[p] = w0;
    this.pW1[p] = w1;
    this.pSub[p] = sub;
    this.pShift[p] = shift;
    this.pOrder[p] = order;
    this.pCount[p] = 0;
    this.pWeight[p] = 0;
    this.pTie[p] = 0;
    this.pNewest[p] = 0;
    this.pBlocked[p] = 0;
    this.pDirty[p] = 0;
    return p;
  }

  /** Score (an integer); the weight is computed when first needed (most pairs never occur twice). */
  scoreOf(p: number): number {
    if (this.pWeight[p] === 0) this.setWeight(p);
    return this.pCount[p]! * this.pWeight[p]!;
  }

  enqueue(p: number, score: number): void {
    if (score >= this.head.length) {
      const old = this.head.length;
      this.head = this.s.grow('head', this.head, Math.max(score + 1, old * 2));
      this.head.fill(-1, old);
    }
    let e = this.freeEntry;
    if (e >= 0) this.freeEntry = this.eNext[e]!;
    else {
      e = this.nEntries++;
      if (e >= this.ePair.length) {
        this.ePair = this.s.grow('ePair', this.ePair, e * 2);
        this.eNext = this.s.grow('eNext', this.eNext, e * 2);
      }
    }
    this.ePair[e] = p;
    this.eNext[e] = this.head[score]!;
    this.head[score] = e;
    this.pNewest[p] = score;
    if (score > this.top) this.top = score;
  }

  setWeight(p: number): void {
    const g = this.g;
    const w0 = this.pW0[p]!;
    const w1 = this.pW1[p]!;
    const shift = this.pShift[p]!;
    let weight = 1;
    if (this.wmc) {
      // overlapping bits of the two operands (da4ml's "weighted most common"): sign + the smaller
      // operand's integer bits + the coarser operand's fraction bits
      const k = g.kk[w0]! | g.kk[w1]!;
      const i = Math.min(g.ki[w0]!, g.ki[w1]! + shift);
      const f = Math.min(g.kf[w0]!, g.kf[w1]! - shift);
      weight = Math.max(1, k + i + f);
    }
    // (scaled so that the perturbed weight stays an integer with a fine enough resolution)
    if (this.noise > 0) weight = Math.round(weight * NOISE_SCALE * (1 + (this.noise * this.tieHash(p)) / 2 ** 32));
    this.pWeight[p] = weight;
    const late = Math.max(g.lat[w0]!, g.lat[w1]!) - this.latBase;
    this.pTie[p] = (LAT_SLOTS - 1 - Math.min(LAT_SLOTS - 1, Math.max(0, Math.round(late)))) / LAT_SLOTS;
  }

  inc(p: number): void {
    const c = ++this.pCount[p]!;
    if (c >= 2 && this.pDirty[p] === 0) {
      this.pDirty[p] = 1;
      this.dirty.push(p);
    }
  }

  /** Queue every pair whose count rose since the last flush. */
  flush(): void {
    const dirty = this.dirty;
    for (let i = 0; i < dirty.length; i++) {
      const p = dirty[i]!;
      this.pDirty[p] = 0;
      if (this.pCount[p]! < 2 || this.pBlocked[p]! >= this.pCount[p]!) continue;
      const sc = this.scoreOf(p);
      if (sc > this.pNewest[p]!) this.enqueue(p, sc);
    }
    dirty.length = 0;
  }

  /**
   * Look-ahead 'near': a pair in the buckets just below `top` whose score less NEAR_ALPHA × weight × loss beats `value`
   * (the top pick's), or −1. Read-only: stale entries are left for popBest to drop.
   */
  private nearTop(top: number, value: number): number {
    const { pNewest, pCount, pBlocked, pWeight } = this;
    let best = -1;
    const floor = Math.max(value, top * (1 - NEAR_FRAC));
    for (let s = top - 1; s >= 2 && s > floor; s--) {
      if (s >= this.head.length) continue;
      let seen = 0;
      for (let e = this.head[s]!; e >= 0 && seen < NEAR_SCAN; e = this.eNext[e]!) {
        const p = this.ePair[e]!;
        if (pNewest[p] !== s || pCount[p]! < 2 || pBlocked[p]! >= pCount[p]! || this.scoreOf(p) !== s) continue;
        seen++;
        const v = s - NEAR_ALPHA * pWeight[p]! * this.loss!(p);
        if (v > value) {
          value = v;
          best = p;
        }
      }
    }
    return best;
  }

  /**
   * The current best pair (highest score, then with look-ahead the least dissolving, then earliest operands,
   * then newest), or −1 when no pair occurs twice.
   */
  popBest(): number {
    const { pNewest, pCount, pBlocked, pTie, pOrder } = this;
    while (this.top >= 2) {
      const top = this.top;
      let best = -1;
      let bestE = -1;
      let bestPrev = -1;
      let bestLoss = 0;
      let seen = 0;
      // look at the most recently queued entries only: a bucket can hold thousands of equal scores
      let prev = -1;
      let e = this.head[top]!;
      const scan = this.loss ? LOOKAHEAD_SCAN : TIE_SCAN;
      while (e >= 0 && seen < scan) {
        const p = this.ePair[e]!;
        const next = this.eNext[e]!;
        let drop = pNewest[p] !== top; // superseded by a newer entry
        if (!drop && (pCount[p]! < 2 || pBlocked[p]! >= pCount[p]!)) {
          pNewest[p] = 0;
          drop = true;
        }
        if (!drop) {
          const sc = this.scoreOf(p);
          if (sc !== top) {
            this.enqueue(p, sc); // its count dropped since it was queued: re-queue at the true score
            drop = true;
          }
        }
        if (drop) {
          // unlink e and recycle it
          if (prev < 0) this.head[top] = next;
          else this.eNext[prev] = next;
          this.eNext[e] = this.freeEntry;
          this.freeEntry = e;
        } else {
          seen++;
          const lp = this.loss ? this.loss(p) : 0;
          if (
            best < 0 ||
            lp < bestLoss ||
            (lp === bestLoss && (pTie[p]! > pTie[best]! || (pTie[p] === pTie[best] && this.laterTie(p, best, pOrder))))
          ) {
            bestLoss = lp;
            best = p;
            bestE = e;
            bestPrev = prev;
          }
          prev = e;
        }
        e = next;
      }
      if (best >= 0 && this.near) {
        const alt = this.nearTop(top, top - NEAR_ALPHA * this.pWeight[best]! * bestLoss);
        if (alt >= 0) {
          pNewest[alt] = 0; // (its entry is left behind, superseded)
          return alt;
        }
      }
      if (best >= 0) {
        const next = this.eNext[bestE]!;
        if (bestPrev < 0) this.head[top] = next;
        else this.eNext[bestPrev] = next;
        this.eNext[bestE] = this.freeEntry;
        this.freeEntry = bestE;
        pNewest[best] = 0;
        return best;
      }
      this.top--;
    }
    return -1;
  }
}
