/** Seeded random matrices for `hgq cmvm --random` and the benchmark (reproducible across runs). */

/** mulberry32: a tiny 32-bit PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n×n matrix of uniform integers in [2^(bits−1)+1, 2^bits − 1] (bits=8: 129..255), the reference benchmark's draw. */
export function randomMatrix(n: number, bits: number, next: () => number, nCols = n): number[][] {
  const lo = bits <= 1 ? 1 : 2 ** (bits - 1) + 1;
  const hi = 2 ** bits - 1;
  return Array.from({ length: n }, () => Array.from({ length: nCols }, () => lo + Math.floor(next() * (hi - lo + 1))));
}
