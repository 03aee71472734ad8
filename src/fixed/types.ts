/** Fixed-point type vocabulary shared by every module (docs/fixed-point.md §1). Pure data, no behaviour. */

export const ROUND_MODES = ['TRN', 'RND', 'RND_CONV', 'TRN_ZERO', 'RND_ZERO', 'RND_MIN_INF', 'RND_INF'] as const;
export type RoundMode = (typeof ROUND_MODES)[number];

export const OVERFLOW_MODES = ['WRAP', 'SAT', 'SAT_SYM'] as const;
export type OverflowMode = (typeof OVERFLOW_MODES)[number];

/**
 * A fixed-point type: `k` sign bit kept (0|1), `i` integer bits not counting the sign, `f` fractional bits.
 * Width = k + i + f; i and f may be negative; width <= 0 means the constant 0.
 */
export interface Kif {
  k: 0 | 1;
  i: number;
  f: number;
}

/**
 * The exact set of values a wire can take: every multiple of `step` in [min, max].
 * `step` is a power of two (2^-f); min and max are multiples of it. min = max = 0 is a pruned (constant-zero) wire.
 */
export interface QInterval {
  min: number;
  max: number;
  step: number;
}
