// QConvT1D / QConvT2D (HGQ-LUT convolutions) on the engine's graph path: the table node on im2col rows (one block
// of the batch per output position, weights shared by the positions, quantizers per position and edge). One engine
// step equals the tfjs step (loss, EBOPs, every gradient) and several steps leave the same state, with strides,
// 'same' padding and batch norm, followed by a flatten and a QDense. tfjs cannot differentiate QConvT2D (its
// rank-5 broadcast has no gradient in tfjs), so there the engine's training-mode loss and EBOPs are compared with
// the tfjs forward pass, and the engine's steps must lower the loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QDense } from '../src/layers/dense.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { QConvT1D, QConvT2D } from '../src/layers/table-dense.ts';
import { EngineBinding, engineUnsupported } from '../src/engine/from-tfjs.ts';
import type { QLayer } from '../src/layers/base.ts';
import { batch, checkOneStep, checkSteps, seedWeights } from './util/engine-compare.ts';

const LR = 3e-3;
let serial = 0;

interface ConvCase {
  what: string;
  inShape: number[];
  layer: (name: string) => tf.layers.Layer;
  /** Adam ε (batch norm: see engine-table.test.ts) */
  eps: number;
}

const CASES: ConvCase[] = [
  {
    what: 'QConvT1D 2, valid, tanh, relu output',
    inShape: [6, 3],
    layer: (name) => new QConvT1D({ filters: 3, kernelSize: 2, subnnActivation: 'tanh', activation: 'relu', beta0: 1e-4, name }),
    eps: 1e-7,
  },
  {
    what: "QConvT1D 3, stride 2, 'same', batch norm, relu",
    inShape: [7, 2],
    layer: (name) =>
      new QConvT1D({
        filters: 2,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        subnnActivation: 'relu',
        batchNorm: true,
        beta0: 1e-4,
        name,
      }),
    eps: 1e-4,
  },
];

function build(c: ConvCase): tf.LayersModel {
  const t = `lutc${serial++}`;
  const m = tf.sequential({
    layers: [
      tf.layers.inputLayer({ inputShape: c.inShape }),
      c.layer(`${t}_c`),
      new QFlatten({ name: `${t}_f` }),
      new QDense({ units: 5, beta0: 1e-4, name: `${t}_d` }),
    ],
  });
  m.compile({
    optimizer: tf.train.adam(LR, 0.9, 0.999, c.eps),
    loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p),
  });
  return m;
}

for (const c of CASES) {
  test(`${c.what}: one engine step equals the tfjs step`, async () => {
    await tf.setBackend('cpu');
    const model = build(c);
    const { x, y, xt, yt } = batch(41, 50, c.inShape, 5);
    model.predict(xt);
    seedWeights(model, 5);
    assert.equal(engineUnsupported(model), null);
    try {
      const names = await checkOneStep(model, 'softmax_cross_entropy', x, y, xt, yt);
      assert.ok(names.includes('layers[0].hidden0.kernel') && names.includes('layers[0].toq.b'), names.join(', '));
    } finally {
      tf.dispose([xt, yt]);
      model.dispose();
    }
  });

  test(`${c.what}: several engine steps equal trainOnBatch`, async () => {
    await tf.setBackend('cpu');
    const a = build(c),
      b = build(c);
    const batches = [1, 2, 3].map((s) => batch(200 + s, 48, c.inShape, 5));
    a.predict(batches[0]!.xt);
    b.predict(batches[0]!.xt);
    seedWeights(a, 9);
    try {
      await checkSteps(a, b, 'softmax_cross_entropy', batches, LR);
    } finally {
      a.dispose();
      b.dispose();
      for (const bt of batches) tf.dispose([bt.xt, bt.yt]);
    }
  });
}

test('QConvT2D 2×2 with stride 2 and same padding (tfjs has no gradient for it): the engine step computes the tfjs training-mode loss and EBOPs, and training lowers the loss', async () => {
  await tf.setBackend('cpu');
  const c: ConvCase = {
    what: 'QConvT2D',
    inShape: [5, 4, 2],
    layer: (name) =>
      new QConvT2D({ filters: 3, kernelSize: 2, strides: [2, 1], padding: 'same', subnnActivation: 'tanh', beta0: 1e-4, name }),
    eps: 1e-7,
  };
  const model = build(c);
  const { x, y, xt, yt } = batch(43, 64, c.inShape, 5);
  model.predict(xt);
  seedWeights(model, 3);
  assert.equal(engineUnsupported(model), null);
  const bind = await EngineBinding.create(model, 'softmax_cross_entropy', { threads: 2 });
  try {
    const want = tf.tidy(() => {
      const out = model.apply(xt, { training: true }) as tf.Tensor;
      let l = tf.losses.softmaxCrossEntropy(yt, out);
      for (const layer of model.layers) if ((layer as QLayer).regularization) l = tf.add(l, (layer as QLayer).regularization());
      return l.dataSync()[0]!;
    });
    const ebopsWant = model.layers.reduce((a, l) => a + ((l as QLayer).hgqEbops?.() ?? 0), 0);
    const first = bind.engine.step(x, y);
    assert.ok(Math.abs(first.loss - want) <= 2e-5 * Math.abs(want), `loss: engine ${first.loss} vs tfjs ${want}`);
    assert.ok(Math.abs(first.ebops - ebopsWant) <= 1e-5 * ebopsWant, `EBOPs: engine ${first.ebops} vs tfjs ${ebopsWant}`);
    let last = first;
    for (let s = 0; s < 30; s++) last = bind.engine.step(x, y);
    assert.ok(last.taskLoss < 0.9 * first.taskLoss, `task loss ${first.taskLoss} → ${last.taskLoss}`);
  } finally {
    bind.dispose();
    tf.dispose([xt, yt]);
    model.dispose();
  }
});
