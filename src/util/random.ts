/** mulberry32: a tiny seeded 32-bit PRNG, uniform in [0, 1). Used wherever a draw must be reproducible
 * (data splits, test vectors, random matrices); not for anything that needs statistical quality. */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs `fn` with Math.random drawing from mulberry32(seed), then restores it. tfjs seeds every unseeded random
 * op (weight initializers among them) from Math.random, so this makes a model's initial weights a function
 * of the seed: the same spec and seed train the same network, on any machine and after any resume.
 */
export async function withSeededMathRandom<T>(seed: number, fn: () => T | Promise<T>): Promise<T> {
  const saved = Math.random;
  Math.random = mulberry32(seed ^ 0x5eed);
  try {
    return await fn();
  } finally {
    Math.random = saved;
  }
}
