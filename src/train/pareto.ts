/** Pareto front on (accuracy ↑, EBOPs ↓): pure bookkeeping; the checkpointing callback uses it. */

export interface FrontPoint {
  accuracy: number;
  ebops: number;
}

/** a weakly dominates b: at least as accurate and at most as costly. */
export function weaklyDominates(a: FrontPoint, b: FrontPoint): boolean {
  return a.accuracy >= b.accuracy && a.ebops <= b.ebops;
}

/**
 * Offers `p` to `front` (a set with no member weakly dominating another). Returns whether `p` joins and the
 * members it evicts. A point equal to a member on both axes does not join (the first one is kept).
 */
export function offer<T extends FrontPoint>(front: readonly T[], p: T): { accepted: boolean; evicted: T[] } {
  if (!Number.isFinite(p.accuracy) || !Number.isFinite(p.ebops)) return { accepted: false, evicted: [] };
  if (front.some((q) => weaklyDominates(q, p))) return { accepted: false, evicted: [] };
  return { accepted: true, evicted: front.filter((q) => weaklyDominates(p, q)) };
}
