// A model trained on the wasm engine is still bit-exact through the export path: calibrate → trace →
// compileProgram equals model.predict on random inputs, rounding ties and far out-of-range values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { trace } from '../src/trace/index.ts';
import { fitWithEngine } from '../src/engine/fit.ts';
import { makeRng } from './util/rng.ts';
import { compareModel, randomInputs } from './util/trace-models.ts';

await initBackend();

function kernelBits(m: tf.LayersModel): Float32Array {
  const w = (m.layers[0] as QDense).kq.weights.find((v) => v.name === 'b')!;
  return Float32Array.from((w.variable as unknown as tf.LayerVariable).read().dataSync() as Float32Array);
}

test('engine-trained MLP: calibrate → trace → emulator == model.predict bit for bit', async () => {
  const rng = makeRng(808);
  const m = tf.sequential();
  m.add(new QDense({ units: 24, activation: 'relu', inputShape: [12], beta0: 2e-5, name: 'et_a' }));
  m.add(new QDense({ units: 16, activation: 'relu', beta0: 2e-5, name: 'et_b' }));
  m.add(new QDense({ units: 4, beta0: 2e-5, name: 'et_c' }));
  m.compile({ optimizer: tf.train.adam(1e-2), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  const N = 1024;
  const xa = Float32Array.from({ length: N * 12 }, () => (rng.next() * 2 - 1) * 2);
  const ya = new Float32Array(N * 4);
  for (let j = 0; j < N; j++) ya[j * 4 + ((xa[j * 12]! > 0 ? 1 : 0) + (xa[j * 12 + 1]! + xa[j * 12 + 2]! > 0 ? 2 : 0))] = 1;
  const x = tf.tensor2d(xa, [N, 12]),
    y = tf.tensor2d(ya, [N, 4]);
  const w0 = kernelBits(m);
  try {
    const h = await fitWithEngine(m, x, y, { epochs: 6, batchSize: 64, loss: 'softmax_cross_entropy', engine: { threads: 2 } });
    const loss = h.history['loss']!;
    assert.ok(loss[loss.length - 1]! < loss[0]!, `training makes progress: ${loss.join(', ')}`);
    // the bit widths moved (the engine's state reached the tfjs model)
    const w1 = kernelBits(m);
    assert.ok(
      w1.some((v, j) => v !== w0[j]),
      'kernel bit widths trained',
    );

    calibrate(m, x, { reset: true });
    const p = trace(m);
    for (const [scale, n] of [
      [2, 4000],
      [8, 4000],
    ] as const) {
      const xs = randomInputs(m, rng, n, scale);
      const r = compareModel(m, p, xs, n);
      assert.equal(r.mismatches, 0, `scale ${scale}: ${r.mismatches} of ${r.values} values differ; first: ${r.first}`);
      assert.ok(r.distinct >= 8, `only ${r.distinct} distinct outputs; degenerate model`);
    }
  } finally {
    m.dispose();
    tf.dispose([x, y]);
  }
});
