// QBatchNormDense on the engine's graph path: batch statistics over the whole batch, the fold into the quantized
// kernel and bias, gradients through the statistics, and the moving statistics, all as the tfjs layer computes
// them (one step: loss, EBOPs, every gradient; several Adam steps: the whole state incl. moving statistics).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QBatchNormDense, QDense } from '../src/layers/dense.ts';
import { engineUnsupported } from '../src/engine/from-tfjs.ts';
import { batch, checkOneStep, checkSteps } from './util/engine-compare.ts';

const LR = 3e-3;

function build(tag: string, opts: { scale?: boolean; mse?: boolean } = {}): tf.Sequential {
  const m = tf.sequential();
  m.add(
    new QBatchNormDense({
      units: 12,
      activation: 'relu',
      inputShape: [16],
      beta0: 1e-4,
      scale: opts.scale ?? true,
      name: `${tag}_bn0`,
    }),
  );
  m.add(new QDense({ units: 8, activation: 'relu', beta0: 1e-4, name: `${tag}_d1` }));
  m.add(new QBatchNormDense({ units: 5, beta0: 1e-4, momentum: 0.9, name: `${tag}_bn2` }));
  m.compile({
    optimizer: tf.train.adam(LR),
    loss: opts.mse ? 'meanSquaredError' : (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p),
  });
  return m;
}

test('QBatchNormDense: one engine step equals the tfjs step (loss, EBOPs, gradients of W, b, γ and every bit parameter)', async () => {
  await tf.setBackend('cpu');
  for (const [tag, scale, B] of [
    ['bna', true, 200],
    ['bnb', false, 37],
  ] as const) {
    const model = build(tag, { scale });
    const { x, y, xt, yt } = batch(5, B, [16], 5);
    model.predict(xt);
    assert.equal(engineUnsupported(model), null);
    try {
      const names = await checkOneStep(model, 'softmax_cross_entropy', x, y, xt, yt);
      // kernel, bias, iq.f, kq.b, kq.i, bq.b, bq.i per layer (+ γ on the two batch-norm layers when scaled)
      assert.equal(names.length, 3 * 7 + (scale ? 2 : 1), names.join(', '));
      if (scale) assert.ok(names.includes('layers[0].gamma') && names.includes('layers[2].gamma'));
    } finally {
      tf.dispose([xt, yt]);
      model.dispose();
    }
  }
});

test('QBatchNormDense: several engine steps equal trainOnBatch (weights, bit parameters, moving statistics), MSE too', async () => {
  await tf.setBackend('cpu');
  for (const mse of [false, true]) {
    const a = build(mse ? 'bnm' : 'bnc', { mse }),
      b = build(mse ? 'bnn' : 'bnd', { mse });
    const batches = [11, 12, 13, 14].map((s) => batch(s, 96, [16], 5));
    a.predict(batches[0]!.xt);
    b.predict(batches[0]!.xt);
    try {
      await checkSteps(a, b, mse ? 'mse' : 'softmax_cross_entropy', batches, LR);
      // the moving statistics moved away from their initial (0, 1) and were synced back
      const bn = b.layers[0] as QBatchNormDense;
      assert.ok(
        bn.movingMean
          .read()
          .dataSync()
          .some((v) => v !== 0),
        'moving mean updated',
      );
    } finally {
      a.dispose();
      b.dispose();
      for (const bt of batches) tf.dispose([bt.xt, bt.yt]);
    }
  }
});

test('QBatchNormalization (per channel over batch and positions; frozen statistics too) after a conv and a dense: one step and several steps equal tfjs', async () => {
  await tf.setBackend('cpu');
  const { QConv2D } = await import('../src/layers/conv.ts');
  const { QBatchNormalization } = await import('../src/layers/batchnorm.ts');
  const { QFlatten } = await import('../src/layers/shape.ts');
  let serial = 0;
  for (const freeze of [false, true]) {
    const buildCnn = () => {
      const t = `qbn${serial++}`;
      const m = tf.sequential({
        layers: [
          new QConv2D({ filters: 3, kernelSize: 2, activation: 'relu', inputShape: [5, 4, 2], beta0: 1e-5, name: `${t}_c` }),
          new QBatchNormalization({ beta0: 1e-5, momentum: 0.9, freezeStatistics: freeze, name: `${t}_bn` }),
          new QFlatten({ name: `${t}_f` }),
          new QDense({ units: 6, activation: 'relu', beta0: 1e-5, name: `${t}_d` }),
          new QBatchNormalization({ beta0: 1e-5, scale: false, name: `${t}_bn2` }),
          new QDense({ units: 5, beta0: 1e-5, name: `${t}_o` }),
        ],
      });
      m.compile({ optimizer: tf.train.adam(LR), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
      return m;
    };
    const model = buildCnn();
    const one = batch(77, 45, [5, 4, 2], 5);
    model.predict(one.xt);
    assert.equal(engineUnsupported(model), null);
    try {
      const names = await checkOneStep(model, 'softmax_cross_entropy', one.x, one.y, one.xt, one.yt);
      // conv, dense, dense: 7 each; batch norms: iq.f, kq.b, kq.i, bq.b, bq.i, offset (+ γ on the first)
      assert.equal(names.length, 3 * 7 + 6 + 1 + 6, names.join(', '));
    } finally {
      tf.dispose([one.xt, one.yt]);
      model.dispose();
    }
    const a = buildCnn(),
      b = buildCnn();
    const batches = [1, 2, 3].map((s) => batch(80 + s, 40, [5, 4, 2], 5));
    a.predict(batches[0]!.xt);
    b.predict(batches[0]!.xt);
    try {
      await checkSteps(a, b, 'softmax_cross_entropy', batches, LR);
    } finally {
      a.dispose();
      b.dispose();
      for (const bt of batches) tf.dispose([bt.xt, bt.yt]);
    }
  }
});
