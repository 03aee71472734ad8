/**
 * Is the model calibrated? The ranges of WRAP activation quantizers follow the data only after
 * `calibrate()` (src/train/calibrate.ts) has run data through the model; calibration itself leaves no flag,
 * so the state tells:
 *  - *reset*: every integer bit at its lower bound and k = 0 (what `resetCalibration()` leaves; the quantizer
 *    outputs 0 for everything) → that layer is uncalibrated;
 *  - *untouched*: every trainable WRAP activation quantizer of the whole model still holds exactly its initial
 *    i0/k0 (neither training, which tracks ranges and decays i, nor calibration ever moved it) → uncalibrated.
 * A trained model whose last ranges came from training rather than calibration cannot be told apart.
 */
import type * as tf from '@tensorflow/tfjs';
import { QLayer } from '../layers/base.ts';
import type { Quantizer } from '../quantizer/index.ts';
import { TraceError } from './tracer.ts';

function values(q: Quantizer, name: 'i' | 'k'): Float32Array | null {
  const w = q.weights.find((v) => v.name === name);
  return w ? (w.variable.read().dataSync() as Float32Array) : null;
}

function layersOf(model: tf.LayersModel): QLayer[] {
  const out: QLayer[] = [];
  const visit = (l: tf.layers.Layer): void => {
    if (l instanceof QLayer) out.push(l);
    const sub = (l as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(sub)) sub.forEach(visit);
  };
  model.layers.forEach(visit);
  return out;
}

export function checkCalibrated(model: tf.LayersModel): void {
  const hint =
    'run calibrate(model, data) (src/train/calibrate.ts) on representative data before tracing — `hgq` checkpoints saved by training are calibrated';
  let any = 0;
  let untouched = 0;
  let firstUntouched = '';
  for (const l of layersOf(model)) {
    if (!l.built) continue;
    const qs = [...l.iqs, l.oq].filter((q): q is Quantizer => q?.isWrap === true && q.config.trainable && !q.config.isWeight);
    for (const q of qs) {
      const i = values(q, 'i');
      const k = values(q, 'k');
      if (!i || !k) continue;
      any++;
      const lo = q.config.iBounds[0];
      if (i.every((v) => v === lo) && k.every((v) => v === 0)) {
        throw new TraceError(
          `${l.getClassName()} '${l.name}': quantizer ${q.name} is in its reset state (WRAP range never calibrated, every output would be 0); ${hint}`,
        );
      }
      if (i.every((v) => v === q.config.i0) && k.every((v) => v === q.config.k0)) {
        untouched++;
        firstUntouched ||= `${l.getClassName()} '${l.name}'`;
      }
    }
  }
  if (any > 0 && untouched === any) {
    throw new TraceError(
      `${firstUntouched}: the model is not calibrated (its WRAP quantizers still hold their initial ranges, so values outside them would wrap around); ${hint}`,
    );
  }
}
