/**
 * Sliding-window patches built only from pad / slice / reshape / concat, so convolution and pooling
 * train on every backend (wasm has no Conv2DBackpropFilter and no StridedSlice gradient, and its
 * MaxPool gradient is wrong where the window max is ≤ 0).
 *
 * Layout is channels-last. Padding follows TF: 'valid' = none; 'same' = out = ceil(in/stride), total pad
 * max((out−1)·s + k − in, 0), split floor(total/2) before and the rest after.
 */
import * as tf from '@tensorflow/tfjs';

export type Padding = 'valid' | 'same';

export interface Window1D {
  in: number;
  k: number;
  s: number;
  out: number;
  padBefore: number;
  padAfter: number;
}

/** Geometry of one spatial axis. */
export function windowGeometry(inSize: number, k: number, s: number, padding: Padding): Window1D {
  if (!(k >= 1 && s >= 1)) throw new Error(`window size ${k} and stride ${s} must be ≥ 1`);
  if (padding === 'valid') {
    const out = Math.floor((inSize - k) / s) + 1;
    if (out < 1) throw new Error(`window ${k} is larger than the input (${inSize}) under 'valid' padding`);
    return { in: inSize, k, s, out, padBefore: 0, padAfter: 0 };
  }
  const out = Math.ceil(inSize / s);
  const total = Math.max((out - 1) * s + k - inSize, 0);
  return { in: inSize, k, s, out, padBefore: Math.floor(total / 2), padAfter: total - Math.floor(total / 2) };
}

/**
 * Geometry of each spatial axis of an input shape (batch, ...spatial, channels) under windows of `size`
 * and `strides`; `fail` reports an axis of unknown size or a window that does not fit.
 */
export function spatialGeometry(
  shape: readonly (number | null)[],
  size: readonly number[],
  strides: readonly number[],
  padding: Padding,
  fail: (msg: string) => never,
): Window1D[] {
  return shape.slice(1, -1).map((d, a) => {
    if (d === null) fail(`spatial axis ${a + 1} must have a known size`);
    try {
      return windowGeometry(d, size[a]!, strides[a]!, padding);
    } catch (e) {
      fail((e as Error).message);
    }
  });
}

/**
 * Slices of x along `axis` for each window offset d = 0..k−1: element o of slice d is x[o·s + d].
 * x must already be padded. Returns k tensors with `out` along `axis`.
 * Works on x folded to [before, axis, after] (rank 3, rank 4 for the stride split): the wasm Slice kernel
 * falls back to a generic per-element JS loop above rank 4 (~100× slower).
 */
function axisTaps(x: tf.Tensor, axis: number, g: Window1D): tf.Tensor[] {
  const shape = x.shape;
  const len = shape[axis]!;
  const pre = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const post = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const x3 = tf.reshape(x, [pre, len, post]);
  const outShape = [...shape.slice(0, axis), g.out, ...shape.slice(axis + 1)];
  /** x3 zero-padded or cut at the end to `n` along the axis */
  const fit = (n: number) =>
    n > len
      ? tf.pad(x3, [
          [0, 0],
          [0, n - len],
          [0, 0],
        ])
      : n < len
        ? tf.slice(x3, [0, 0, 0], [pre, n, post])
        : x3;
  const taps: tf.Tensor[] = [];
  if (g.s > 1 && g.k <= g.s) {
    // Non-overlapping windows (pooling): [pre, out, s, post] → [s, pre, out, post] by one transpose, then
    // tap d is a contiguous block (a plain copy) instead of a strided slice of short rows.
    const t = tf.transpose(tf.reshape(fit(g.out * g.s), [pre, g.out, g.s, post]), [2, 0, 1, 3]);
    for (let d = 0; d < g.k; d++) taps.push(tf.reshape(tf.slice(t, [d, 0, 0, 0], [1, pre, g.out, post]), outShape));
    return taps;
  }
  // Zero padding at the end so every tap can take out·s elements, then keep every s-th by reshape.
  const xp = fit(Math.max(len, g.k - 1 + g.out * g.s));
  for (let d = 0; d < g.k; d++) {
    let t = tf.slice(xp, [0, d, 0], [pre, g.out * g.s, post]);
    if (g.s > 1) t = tf.slice(tf.reshape(t, [pre, g.out, g.s, post]), [0, 0, 0, 0], [pre, g.out, 1, post]);
    taps.push(tf.reshape(t, outShape));
  }
  return taps;
}

/**
 * Window taps of a channels-last tensor x = [N, ...spatial, C] over the spatial axes with the given window
 * geometries: K = Π k tensors [N, ...out, C], window offsets in row-major order (first axis slowest).
 * `padValue` fills 'same' padding (0 for convolution, −∞ for max pooling). Reducing the taps elementwise
 * (tf.maximum / tf.addN) keeps every op at rank ≤ 4; stacking them costs a rank-5 Pack whose gradient
 * (Unpack) is a per-element JS loop on wasm.
 */
export function windowTaps(x: tf.Tensor, geoms: Window1D[], padValue = 0): tf.Tensor[] {
  return tf.tidy(() => {
    const rank = geoms.length;
    if (x.rank !== rank + 2) throw new Error(`patches: expected rank ${rank + 2} input, got shape [${x.shape.join(',')}]`);
    let xp = x;
    if (geoms.some((g) => g.padBefore || g.padAfter)) {
      const pads = [[0, 0], ...geoms.map((g) => [g.padBefore, g.padAfter]), [0, 0]] as Array<[number, number]>;
      xp = tf.pad(x, pads, padValue);
    }
    // Apply the taps axis by axis; offsets multiply out into a list in row-major order.
    let parts: tf.Tensor[] = [xp];
    for (let a = 0; a < rank; a++) {
      const next: tf.Tensor[] = [];
      for (const p of parts) next.push(...axisTaps(p, a + 1, geoms[a]!));
      parts = next;
    }
    return parts;
  });
}

/** The taps stacked: [N, ...out, K, C] (see windowTaps). */
export function patches(x: tf.Tensor, geoms: Window1D[], padValue = 0): tf.Tensor {
  return tf.tidy(() => tf.stack(windowTaps(x, geoms, padValue), geoms.length + 1));
}
