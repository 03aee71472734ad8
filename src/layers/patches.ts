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
 * Slices of x along `axis` for each window offset d = 0..k−1: element o of slice d is x[o·s + d].
 * x must already be padded. Returns k tensors with `out` along `axis`.
 */
function axisTaps(x: tf.Tensor, axis: number, g: Window1D): tf.Tensor[] {
  const shape = x.shape;
  const len = shape[axis]!;
  // Extra zero padding at the end so every tap can take out·s elements, then keep every s-th by reshape.
  const need = g.k - 1 + g.out * g.s;
  let xp = x;
  if (need > len) {
    const pads = shape.map((_, a) => (a === axis ? [0, need - len] : [0, 0]) as [number, number]);
    xp = tf.pad(x, pads);
  }
  const taps: tf.Tensor[] = [];
  for (let d = 0; d < g.k; d++) {
    const begin = shape.map((_, a) => (a === axis ? d : 0));
    const size = xp.shape.map((n, a) => (a === axis ? g.out * g.s : n));
    let t = tf.slice(xp, begin, size);
    if (g.s > 1) {
      const split = [...t.shape.slice(0, axis), g.out, g.s, ...t.shape.slice(axis + 1)];
      t = tf.reshape(t, split);
      const b2 = split.map(() => 0);
      const s2 = split.map((n, a) => (a === axis + 1 ? 1 : n));
      t = tf.reshape(tf.slice(t, b2, s2), [...shape.slice(0, axis), g.out, ...shape.slice(axis + 1)]);
    }
    taps.push(t);
  }
  return taps;
}

/**
 * Patches of a channels-last tensor x = [N, ...spatial, C] over the spatial axes with the given window
 * geometries: returns [N, ...out, K, C] with K = Π k, window offsets in row-major order (first axis slowest).
 * `padValue` fills 'same' padding (0 for convolution, −∞ for max pooling).
 */
export function patches(x: tf.Tensor, geoms: Window1D[], padValue = 0): tf.Tensor {
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
    return tf.stack(parts, rank + 1); // [N, ...out, K, C]
  });
}
