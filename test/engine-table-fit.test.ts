// The library's fit() trains a model with a QDenseT on the wasm engine (engine 'auto' picks it; the table layer's
// weights move and the loss falls), and a model with a table layer the engine does not run (a QDenseT over
// positions) falls back to tfjs with the reason naming the layer (engine 'wasm' refuses it with the same reason).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QDense } from '../src/layers/dense.ts';
import { QDenseT } from '../src/layers/table-dense.ts';
import { fit } from '../src/train/fit.ts';
import { batch } from './util/engine-compare.ts';

test('fit() trains QDense → QDenseT → QDense on the wasm engine; the table weights move and the loss falls', async () => {
  await tf.setBackend('cpu');
  const m = tf.sequential({
    layers: [
      new QDense({ units: 8, activation: 'relu', inputShape: [10], name: 'tf_d0' }),
      new QDenseT({ nOut: 6, activation: 'relu', name: 'tf_t' }),
      new QDense({ units: 3, name: 'tf_d1' }),
    ],
  });
  const { xt, yt } = batch(5, 256, [10], 3);
  const table = m.layers[1] as QDenseT;
  m.predict(xt);
  const before = table.outKernel.read().dataSync().slice();
  try {
    const r = await fit(m, xt, yt, {
      loss: 'softmax_cross_entropy',
      epochs: 4,
      batchSize: 32,
      learningRate: 1e-2,
      engineOptions: { threads: 1 },
    });
    assert.equal(r.engine, 'wasm');
    assert.equal(r.fallbackReason, undefined);
    const loss = r.history['loss']!;
    assert.ok(loss.at(-1)! < loss[0]!, `loss ${loss.join(' → ')}`);
    const after = table.outKernel.read().dataSync();
    assert.ok(
      after.some((v, j) => v !== before[j]),
      'the table sub-network weights were trained and copied back',
    );
  } finally {
    tf.dispose([xt, yt]);
    m.dispose();
  }
});

test('fit() falls back to tfjs for a QDenseT over positions, naming it; engine wasm refuses it', async () => {
  await tf.setBackend('cpu');
  const build = () => {
    const m = tf.sequential({
      layers: [new QDenseT({ nOut: 2, inputShape: [6, 2], name: 'seq_t_fit' }), tf.layers.flatten(), new QDense({ units: 3 })],
    });
    return m;
  };
  const { xt, yt } = batch(6, 32, [6, 2], 3);
  const m = build();
  try {
    const r = await fit(m, xt, yt, { loss: 'softmax_cross_entropy', epochs: 1, batchSize: 16 });
    assert.equal(r.engine, 'tfjs');
    assert.match(r.fallbackReason ?? '', /seq_t_fit.*QDenseT/);
    await assert.rejects(
      fit(m, xt, yt, { loss: 'softmax_cross_entropy', epochs: 1, batchSize: 16, engine: 'wasm' }),
      /seq_t_fit.*QDenseT/,
    );
  } finally {
    tf.dispose([xt, yt]);
    m.dispose();
  }
});
