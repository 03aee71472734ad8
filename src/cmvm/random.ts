/** Seeded random matrices for `hgq cmvm --random` and the benchmark (reproducible across runs). */
export { mulberry32 as prng } from '../util/random.ts';

/** n×n matrix of uniform integers in [2^(bits−1)+1, 2^bits − 1] (bits=8: 129..255), the reference benchmark's draw. */
export function randomMatrix(n: number, bits: number, next: () => number, nCols = n): number[][] {
  const lo = bits <= 1 ? 1 : 2 ** (bits - 1) + 1;
  const hi = 2 ** bits - 1;
  return Array.from({ length: n }, () => Array.from({ length: nCols }, () => lo + Math.floor(next() * (hi - lo + 1))));
}
