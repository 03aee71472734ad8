/** Small tfjs helpers for layer tests: set and read a layer's variables, read a quantizer export's types. */
import * as tf from '@tensorflow/tfjs';
import type { Kif } from '../../src/fixed/types.ts';

function variable(layer: tf.layers.Layer, suffix: string): tf.LayerVariable {
  const v =
    layer.weights.find((w) => w.originalName === `${layer.name}/${suffix}`) ??
    layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`));
  if (!v) throw new Error(`no weight ${suffix} in ${layer.weights.map((w) => w.originalName)}`);
  return v;
}

/** Writes `values` (an array, or a function of the flat index) into the layer's variable `<layer>/<suffix>`. */
export function setVar(layer: tf.layers.Layer, suffix: string, values: number[] | ((j: number) => number)): void {
  const v = variable(layer, suffix);
  const n = v.shape.reduce((a: number, b) => a * (b ?? 1), 1);
  const arr = typeof values === 'function' ? Array.from({ length: n }, (_, j) => values(j)) : values;
  v.write(tf.tensor(arr, v.shape as number[]));
}

export function getVar(layer: tf.layers.Layer, suffix: string): Float32Array {
  return variable(layer, suffix).read().dataSync() as Float32Array;
}

/** The type of element j of a quantizer export ({k, i, f} arrays). */
export function kifAt(e: { k: ArrayLike<number>; i: ArrayLike<number>; f: ArrayLike<number> }, j: number): Kif {
  return { k: e.k[j] as 0 | 1, i: e.i[j]!, f: e.f[j]! };
}
