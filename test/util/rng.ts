import { mulberry32 } from '../../src/util/random.ts';

/** A tiny seeded PRNG for reproducible tests (mulberry32). */
export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
  /** uniform integer in [lo, hi] (inclusive) */
  int(lo: number, hi: number): number;
  /** one element of a non-empty array */
  pick<T>(xs: readonly T[]): T;
  /** true with probability p */
  chance(p: number): boolean;
}

export function makeRng(seed: number): Rng {
  const next = mulberry32(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}
