// QConv1D/QConv2D (valid/same padding, strides) and pooling (max/average, 1D/2D, global) on the engine's graph
// path: im2col + the dense kernels, weight sharing summed over positions, EBOPs as src/layers/conv.ts and
// pooling.ts. Each model: one step equals the tfjs step (loss, EBOPs, every gradient), and several Adam steps
// leave the same state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QDense } from '../src/layers/dense.ts';
import { QConv1D, QConv2D } from '../src/layers/conv.ts';
import {
  QAveragePooling1D,
  QAveragePooling2D,
  QGlobalAveragePooling1D,
  QGlobalAveragePooling2D,
  QGlobalMaxPooling2D,
  QMaxPooling1D,
  QMaxPooling2D,
} from '../src/layers/pooling.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { engineUnsupported } from '../src/engine/from-tfjs.ts';
import { batch, checkOneStep, checkSteps } from './util/engine-compare.ts';

const LR = 3e-3;
const C = 5;

interface Case {
  name: string;
  inShape: number[];
  layers: (tag: string) => tf.layers.Layer[];
  params: number;
}

const CASES: Case[] = [
  {
    // conv 'same' stride 1 + relu, 2×2 max pooling (ties: quantized inputs), conv 'valid' stride 2, dense head
    name: 'conv2d same → maxpool2d → conv2d valid/stride 2 → dense',
    inShape: [7, 6, 2],
    layers: (t) => [
      new QConv2D({
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        beta0: 1e-5,
        inputShape: [7, 6, 2],
        name: `${t}_c0`,
      }),
      new QMaxPooling2D({ poolSize: 2, padding: 'same', beta0: 1e-5, name: `${t}_p0` }),
      new QConv2D({ filters: 3, kernelSize: [2, 1], strides: 2, beta0: 1e-5, name: `${t}_c1` }),
      new QFlatten({ name: `${t}_f` }),
      new QDense({ units: C, beta0: 1e-5, name: `${t}_d` }),
    ],
    params: 3 * 7 + 1, // conv, conv, dense: 7 each; pooling: iq.f (WRAP iq.i is not trained)
  },
  {
    name: 'conv1d same/stride 2 → avgpool1d same (non-power-of-two counts) → dense',
    inShape: [11, 3],
    layers: (t) => [
      new QConv1D({
        filters: 4,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        beta0: 1e-5,
        inputShape: [11, 3],
        name: `${t}_c0`,
      }),
      new QAveragePooling1D({ poolSize: 3, strides: 2, padding: 'same', beta0: 1e-5, name: `${t}_p0` }),
      new QFlatten({ name: `${t}_f` }),
      new QDense({ units: C, beta0: 1e-5, name: `${t}_d` }),
    ],
    params: 2 * 7 + 1,
  },
  {
    name: 'conv2d valid without bias → avgpool2d valid without input quantizer → global max pooling 2d → dense',
    inShape: [8, 8, 1],
    layers: (t) => [
      new QConv2D({
        filters: 3,
        kernelSize: 3,
        activation: 'relu',
        useBias: false,
        beta0: 1e-5,
        inputShape: [8, 8, 1],
        name: `${t}_c0`,
      }),
      new QAveragePooling2D({ poolSize: 2, enableIq: false, name: `${t}_p0` }),
      new QGlobalMaxPooling2D({ beta0: 1e-5, name: `${t}_g` }),
      new QDense({ units: C, beta0: 1e-5, name: `${t}_d` }),
    ],
    params: 4 + 1 + 7,
  },
  {
    name: 'conv1d valid → global average pooling 1d → dense; maxpool1d → global average 2d variants',
    inShape: [9, 2],
    layers: (t) => [
      new QConv1D({ filters: 6, kernelSize: 2, activation: 'relu', beta0: 1e-5, inputShape: [9, 2], name: `${t}_c0` }),
      new QMaxPooling1D({ poolSize: 2, strides: 1, beta0: 1e-5, name: `${t}_p0` }),
      new QGlobalAveragePooling1D({ beta0: 1e-5, name: `${t}_g` }),
      new QDense({ units: C, beta0: 1e-5, name: `${t}_d` }),
    ],
    params: 2 * 7 + 2,
  },
  {
    name: 'conv2d → global average pooling 2d (7·5 positions) → dense',
    inShape: [7, 5, 2],
    layers: (t) => [
      new QConv2D({ filters: 4, kernelSize: 2, padding: 'same', beta0: 1e-5, inputShape: [7, 5, 2], name: `${t}_c0` }),
      new QGlobalAveragePooling2D({ beta0: 1e-5, name: `${t}_g` }),
      new QDense({ units: C, beta0: 1e-5, name: `${t}_d` }),
    ],
    params: 2 * 7 + 1,
  },
  {
    name: 'QDense per position on (batch, steps, features) → flatten → dense',
    inShape: [6, 4],
    layers: (t) => [
      new QDense({ units: 5, activation: 'relu', beta0: 1e-5, inputShape: [6, 4], name: `${t}_pd` }),
      new QFlatten({ name: `${t}_f` }),
      new QDense({ units: C, beta0: 1e-5, name: `${t}_d` }),
    ],
    params: 2 * 7,
  },
  {
    name: 'output quantizers (WRAP on a conv, SAT on a dense, on the last layer too) → the loss sees quantized logits',
    inShape: [6, 5, 1],
    layers: (t) => [
      new QConv2D({
        filters: 3,
        kernelSize: 2,
        activation: 'relu',
        enableOq: true,
        beta0: 1e-5,
        inputShape: [6, 5, 1],
        name: `${t}_c0`,
      }),
      new QMaxPooling2D({ poolSize: 2, beta0: 1e-5, name: `${t}_p0` }),
      new QFlatten({ name: `${t}_f` }),
      new QDense({
        units: 6,
        activation: 'relu',
        enableOq: true,
        oqConf: { overflowMode: 'SAT', i0: 1, f0: 3 },
        beta0: 1e-5,
        name: `${t}_d0`,
      }),
      new QDense({ units: C, enableOq: true, beta0: 1e-5, name: `${t}_d1` }),
    ],
    // conv, dense, dense: 7 each; pool iq.f; oq: f (WRAP) + i, f (SAT) + f (WRAP)
    params: 3 * 7 + 1 + 4,
  },
];

let serial = 0;
function build(c: Case): tf.Sequential {
  const m = tf.sequential();
  for (const l of c.layers(`cv${serial++}`)) m.add(l);
  m.compile({ optimizer: tf.train.adam(LR), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  return m;
}

for (const [ci, c] of CASES.entries()) {
  test(`${c.name}: one engine step equals the tfjs step; several steps leave the same state`, async () => {
    await tf.setBackend('cpu');
    const model = build(c);
    const one = batch(100 + ci, 45, c.inShape, C);
    model.predict(one.xt);
    assert.equal(engineUnsupported(model), null);
    try {
      const names = await checkOneStep(model, 'softmax_cross_entropy', one.x, one.y, one.xt, one.yt);
      assert.equal(names.length, c.params, names.join(', '));
    } finally {
      tf.dispose([one.xt, one.yt]);
      model.dispose();
    }
    const a = build(c),
      b = build(c);
    const batches = [1, 2, 3].map((s) => batch(200 + 10 * ci + s, 40, c.inShape, C));
    a.predict(batches[0]!.xt);
    b.predict(batches[0]!.xt);
    try {
      await checkSteps(a, b, 'softmax_cross_entropy', batches, LR);
    } finally {
      a.dispose();
      b.dispose();
      for (const bt of batches) tf.dispose([bt.xt, bt.yt]);
    }
  });
}
