/**
 * Calibration (docs/quantizers.md §5): run data through the model in inference mode with the quantizers widening their
 * WRAP ranges (i ← max(i, needed), k ← k OR any(x < 0)), then report the exact EBOPs. Repeatable over several
 * data sets (the ranges are a union) unless `reset`.
 */
import * as tf from '@tensorflow/tfjs';
import { QLayer, setCalibrating } from '../layers/base.ts';
import { hgqLayers } from '../layers/model.ts';

export interface CalibrateOptions {
  /** Forget previous ranges first (default false: union with what was seen before). */
  reset?: boolean;
  batchSize?: number;
}

export interface CalibrateResult {
  /** exact integer EBOPs of the calibrated model */
  ebops: number;
  perLayer: { name: string; className: string; ebops: number }[];
}

/** Exact EBOPs of a model at its current parameters (integers: bit widths are integers after rounding). */
export function exactEbops(model: tf.LayersModel): CalibrateResult {
  const perLayer: CalibrateResult['perLayer'] = [];
  let total = 0;
  for (const l of hgqLayers(model)) {
    if (!(l instanceof QLayer)) continue;
    const e = l.hgqEbops();
    // Bits are integers and every partial sum is a non-negative integer, so float32 is exact below 2^24.
    if (e >= 2 ** 24)
      process.stderr.write(`hgq: warning: EBOPs of layer ${l.name} (${e}) exceed 2^24; the float32 sum may be off by rounding\n`);
    perLayer.push({ name: l.name, className: l.getClassName(), ebops: e });
    total += e;
  }
  return { ebops: total, perLayer };
}

/** Runs `data` (a tensor or typed array batch-major with the model's input shape) through the model in calibration mode. */
export function calibrate(model: tf.LayersModel, data: tf.Tensor | tf.Tensor[], opts: CalibrateOptions = {}): CalibrateResult {
  const layers = hgqLayers(model).filter((l): l is QLayer => l instanceof QLayer);
  if (opts.reset) for (const l of layers) l.resetCalibration();
  const xs = Array.isArray(data) ? data : [data];
  const n = xs[0]!.shape[0]!;
  const bs = opts.batchSize ?? 4096;
  setCalibrating(true);
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      tf.tidy(() => {
        const batch = xs.map((x) => tf.slice(x, [s, ...x.shape.slice(1).map(() => 0)], [m, ...x.shape.slice(1)]));
        model.predict(batch.length === 1 ? batch[0]! : batch, { batchSize: m });
      });
    }
  } finally {
    setCalibrating(false);
  }
  return exactEbops(model);
}
