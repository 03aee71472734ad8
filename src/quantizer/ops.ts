/**
 * Stateless fixed-point ops on tfjs tensors, exact in float32 (docs/fixed-point.md §2–3 semantics, same results as
 * src/fixed bit for bit within the ranges below).
 *
 * Exactness: tfjs computes in float32. Scaling by 2^f, floor/ceil, and differences of integers below 2^24 are
 * exact, so every result here is exact when the type's width k+i+f <= 24 (codes fit the 24-bit significand) and
 * x·2^f neither overflows nor falls below the normal range (|x|·2^f in [2^-126, 2^127], or x = 0).
 * No result is -0.
 */
import * as tf from '@tensorflow/tfjs';
import type { OverflowMode, RoundMode } from '../fixed/types.ts';

/**
 * `y` rounded to an integer with `mode`, exact for every float32 y with |y| < 2^24 (and for integer-valued y
 * beyond). RND is floor(y + 1/2) in exact arithmetic: computed as floor(2y) − floor(y) because y + 1/2 can round
 * in float32. Never returns -0 (a difference of equal values is +0; the other modes add +0).
 */
export function roundCodes(y: tf.Tensor, mode: RoundMode): tf.Tensor {
  return tf.tidy(() => {
    switch (mode) {
      case 'TRN':
        return tf.add(tf.floor(y), 0);
      case 'RND':
        return tf.sub(tf.floor(tf.add(y, y)), tf.floor(y));
      case 'RND_MIN_INF':
        return tf.sub(tf.ceil(tf.add(y, y)), tf.ceil(y));
      case 'RND_CONV':
        return tf.add(tf.round(y), 0); // tf.round is exact half-to-even on cpu and wasm; + 0 clears -0
      case 'TRN_ZERO': {
        const a = tf.abs(y);
        return tf.add(tf.mul(tf.sign(y), tf.floor(a)), 0);
      }
      case 'RND_ZERO': {
        const a = tf.abs(y);
        return tf.add(tf.mul(tf.sign(y), tf.sub(tf.ceil(tf.add(a, a)), tf.ceil(a))), 0);
      }
      case 'RND_INF': {
        const a = tf.abs(y);
        return tf.add(tf.mul(tf.sign(y), tf.sub(tf.floor(tf.add(a, a)), tf.floor(a))), 0);
      }
      default:
        throw new Error(`roundCodes: unknown rounding mode '${String(mode)}'`);
    }
  });
}

/** Exact 2^e for integer-valued e (tf.pow with base 2 is exact on cpu and wasm; checked in tests). */
export function exp2(e: tf.Tensor): tf.Tensor {
  return tf.pow(tf.scalar(2), e);
}

/**
 * Exact ceil(log2(v)) for v > 0: a float estimate corrected by comparing against exact powers of two,
 * so that 2^(c−1) < v <= 2^c holds.
 */
export function ceilLog2(v: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    let c = tf.ceil(tf.div(tf.log(v), Math.LN2));
    // too big if 2^(c−1) >= v; too small if 2^c < v
    c = tf.sub(c, tf.cast(tf.greaterEqual(exp2(tf.sub(c, 1)), v), 'float32'));
    c = tf.add(c, tf.cast(tf.less(exp2(c), v), 'float32'));
    return c;
  });
}

/**
 * Quantize `x` to the types (k, i, f), given as integer-valued tensors broadcastable to x, in inference
 * semantics: SAT/SAT_SYM clip then round, WRAP rounds then keeps the low k+i+f bits, and a type with
 * k+i+f <= 0 gives exactly 0. Not differentiable (use Quantizer for training).
 */
export function quantizeTensor(
  x: tf.Tensor,
  k: tf.Tensor,
  i: tf.Tensor,
  f: tf.Tensor,
  round: RoundMode,
  overflow: OverflowMode,
): tf.Tensor {
  return tf.tidy(() => {
    const scale = exp2(f);
    const step = exp2(tf.neg(f));
    if (overflow === 'WRAP') return wrapScaled(x, k, i, f, scale, step, round);
    const alive = tf.cast(tf.greater(tf.add(tf.add(k, i), f), 0), 'float32');
    const { lo, hi } = satBounds(k, tf.maximum(i, tf.neg(f)), step, overflow);
    // dead types (k+i+f <= 0) clip to [0, 0]
    const xc = tf.minimum(tf.maximum(x, tf.mul(lo, alive)), tf.mul(hi, alive));
    return tf.mul(roundCodes(tf.mul(xc, scale), round), step);
  });
}

/** SAT/SAT_SYM value bounds for integer bits `i` (already raised to >= −f): [−k·2^i, 2^i − 2^-f], symmetric min −k·hi. */
export function satBounds(
  k: tf.Tensor,
  i: tf.Tensor,
  step: tf.Tensor,
  overflow: OverflowMode,
): { lo: tf.Tensor; hi: tf.Tensor; top: tf.Tensor } {
  const top = exp2(i);
  const hi = tf.sub(top, step);
  const lo = overflow === 'SAT_SYM' ? tf.neg(tf.mul(k, hi)) : tf.neg(tf.mul(k, top));
  return { lo, hi, top };
}

/**
 * WRAP in inference: codes q = round(x·2^f), then the low W = k+i+f bits, two's complement when k = 1.
 * Computed as m = q − 2^W·floor(q·2^-W) ∈ [0, 2^W) (exact for W <= 24), minus 2^W where k = 1 and m >= 2^(W−1).
 * W <= 0 gives m = 0, so dead types need no separate mask.
 */
function wrapScaled(
  x: tf.Tensor,
  k: tf.Tensor,
  i: tf.Tensor,
  f: tf.Tensor,
  scale: tf.Tensor,
  step: tf.Tensor,
  round: RoundMode,
): tf.Tensor {
  const W = tf.add(tf.add(k, i), f);
  const mod = exp2(W);
  const half = tf.mul(exp2(tf.sub(W, 1)), k); // k = 0: never subtract (m < 2^W); guarded below
  const q = roundCodes(tf.mul(x, scale), round);
  const m = tf.sub(q, tf.mul(tf.floor(tf.mul(q, exp2(tf.neg(W)))), mod));
  const neg = tf.logicalAnd(tf.greater(k, 0), tf.greaterEqual(m, half));
  const wrapped = tf.sub(m, tf.mul(tf.cast(neg, 'float32'), mod)); // m − 0 or m − 2^W: never -0
  return tf.mul(wrapped, step);
}
