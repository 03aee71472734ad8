/**
 * The HGQ layer contract and model-level views over it: a layer with `hgqEbops()` / `getBeta()` / `setBeta()`
 * (implemented by QLayer in base.ts). Found by duck typing, so nested models and layers from another copy of
 * the package count too. Training (src/train) builds on these; layers never import from train.
 */
import type * as tf from '@tensorflow/tfjs';

export interface HgqLayerContract {
  /** Current differentiable EBOPs at the current parameters (float; exact integer after calibration). */
  hgqEbops(): number;
  getBeta(): number;
  setBeta(beta: number): void;
}

export function isHgqLayer(l: unknown): l is HgqLayerContract {
  return (
    typeof l === 'object' &&
    l !== null &&
    typeof (l as HgqLayerContract).hgqEbops === 'function' &&
    typeof (l as HgqLayerContract).setBeta === 'function'
  );
}

/** All HGQ layers of a model, descending into nested models. */
export function hgqLayers(model: tf.LayersModel | tf.layers.Layer): HgqLayerContract[] {
  const out: HgqLayerContract[] = [];
  const visit = (l: tf.layers.Layer) => {
    if (isHgqLayer(l)) out.push(l);
    const sub = (l as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(sub)) sub.forEach(visit);
  };
  visit(model as unknown as tf.layers.Layer);
  return out;
}

export function modelEbops(model: tf.LayersModel): number {
  return hgqLayers(model).reduce((s, l) => s + l.hgqEbops(), 0);
}

export function setModelBeta(model: tf.LayersModel, beta: number): void {
  if (!Number.isFinite(beta) || beta < 0) throw new Error(`β must be finite and ≥ 0, got ${beta}`);
  for (const l of hgqLayers(model)) l.setBeta(beta);
}

/** Mean β over HGQ layers (0 if none). */
export function modelBeta(model: tf.LayersModel): number {
  const ls = hgqLayers(model);
  return ls.length ? ls.reduce((s, l) => s + l.getBeta(), 0) / ls.length : 0;
}
