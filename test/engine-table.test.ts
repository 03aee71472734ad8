// QDenseT (HGQ-LUT) on the engine's graph path: one engine step equals the tfjs step (loss, EBOPs, the gradient of
// every sub-network weight, batch-norm γ/β and bit parameter), and several Adam steps leave the same state
// (weights, bit parameters, moving statistics), for tanh, relu and sigmoid sub-networks, 0, 1 and 2 hidden layers,
// with and without batch norm and biases, WRAP and SAT_SYM input quantizers, per-edge and shared output quantizers,
// alone and between QDense layers; after push() the
// tfjs model's inference equals the trained tfjs model's. A QDenseT over positions is refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QDense } from '../src/layers/dense.ts';
import { QDenseT, type QDenseTArgs } from '../src/layers/table-dense.ts';
import { engineUnsupported } from '../src/engine/from-tfjs.ts';
import { batch, checkOneStep, checkSteps, close, seedWeights } from './util/engine-compare.ts';

const LR = 3e-3;
let serial = 0;

interface Variant {
  what: string;
  table: Omit<QDenseTArgs, 'nOut'>;
  hybrid?: boolean;
  /** the input quantizer saturates (its integer bits are trained) */
  satIq?: boolean;
}

/**
 * Adam's ε for the multi-step comparisons. With batch norm some bias gradients are ~0 up to rounding (1e-7 against
 * 1e-1): with ε = 1e-7 Adam turns that rounding noise into steps of up to lr, and the batch norm's small variances
 * amplify the resulting 1e-5 weight differences into flipped table-output roundings. ε = 1e-4 keeps such
 * gradients from being normalized, so the comparison sees the engine's arithmetic rather than that amplification.
 */
const adamEpsilon = (v: Variant) => (v.table.batchNorm ? 1e-4 : 1e-7);

const VARIANTS: Variant[] = [
  { what: 'tanh, 1 hidden layer, one shared toq', table: { subnnActivation: 'tanh', nHl: 1 } },
  {
    what: 'relu, 2 hidden layers of 4, per-edge toq, batch norm',
    table: {
      subnnActivation: 'relu',
      nHl: 2,
      dHl: 4,
      batchNorm: true,
      bnMomentum: 0.9,
      toqConf: { homogeneousAxes: [0], b0: 6, i0: 1 },
    },
  },
  {
    what: 'tanh, 2 hidden layers, batch norm without γ, relu output',
    table: {
      subnnActivation: 'tanh',
      nHl: 2,
      batchNorm: true,
      bnScale: false,
      activation: 'relu',
      toqConf: { homogeneousAxes: [0] },
    },
  },
  {
    what: 'relu, 1 hidden layer, between QDense layers',
    table: { subnnActivation: 'relu', nHl: 1, activation: 'relu' },
    hybrid: true,
  },
  { what: 'sigmoid, no biases', table: { subnnActivation: 'sigmoid', nHl: 1, useBias: false } },
  {
    what: 'no hidden layer, SAT_SYM input quantizer (trained integer bits)',
    table: { nHl: 0, iqConf: { overflowMode: 'SAT_SYM', i0: 1, f0: 3 }, toqConf: { homogeneousAxes: [0], overflowMode: 'SAT' } },
    satIq: true,
  },
];

function build(v: Variant, inputs: number, classes: number): tf.LayersModel {
  const t = `lut${serial++}`;
  const layers: tf.layers.Layer[] = v.hybrid
    ? [
        new QDense({ units: 10, activation: 'relu', inputShape: [inputs], beta0: 1e-4, name: `${t}_d0` }),
        new QDenseT({ nOut: 6, beta0: 1e-4, name: `${t}_t`, ...v.table }),
        new QDense({ units: classes, beta0: 1e-4, name: `${t}_d1` }),
      ]
    : [new QDenseT({ nOut: classes, inputShape: [inputs], beta0: 1e-4, name: `${t}_t`, ...v.table })];
  const m = tf.sequential({ layers });
  m.compile({
    optimizer: tf.train.adam(LR, 0.9, 0.999, adamEpsilon(v)),
    loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p),
  });
  return m;
}

for (const v of VARIANTS) {
  test(`QDenseT (${v.what}): one engine step equals the tfjs step`, async () => {
    await tf.setBackend('cpu');
    const model = build(v, 12, 5);
    const { x, y, xt, yt } = batch(31, 70, [12], 5);
    model.predict(xt);
    seedWeights(model, 17);
    assert.equal(engineUnsupported(model), null);
    try {
      const names = await checkOneStep(model, 'softmax_cross_entropy', x, y, xt, yt);
      const nHl = v.table.nHl ?? 1;
      // hidden kernels and biases, output kernel and bias, iq.f (and iq.i unless WRAP: then i follows the data), toq.b and toq.i
      const biases = v.table.useBias === false ? 0 : nHl + 1;
      const iqVars = v.satIq ? 2 : 1;
      const tableVars = nHl + 1 + biases + iqVars + 2 + (v.table.batchNorm ? (v.table.bnScale === false ? 1 : 2) : 0);
      assert.equal(names.length, tableVars + (v.hybrid ? 2 * 7 : 0), names.join(', '));
    } finally {
      tf.dispose([xt, yt]);
      model.dispose();
    }
  });

  test(`QDenseT (${v.what}): several engine steps equal trainOnBatch, and the pushed model infers as the tfjs-trained one`, async () => {
    await tf.setBackend('cpu');
    const a = build(v, 12, 5),
      b = build(v, 12, 5);
    const batches = [1, 2, 3].map((s) => batch(100 + s, 64, [12], 5));
    a.predict(batches[0]!.xt);
    b.predict(batches[0]!.xt);
    seedWeights(a, 23);
    try {
      await checkSteps(a, b, 'softmax_cross_entropy', batches, LR);
      const probe = batch(7, 50, [12], 5);
      const pa = (a.predict(probe.xt) as tf.Tensor).dataSync(),
        pb = (b.predict(probe.xt) as tf.Tensor).dataSync();
      close('inference after push', pb, pa, 2e-2);
      tf.dispose([probe.xt, probe.yt]);
    } finally {
      a.dispose();
      b.dispose();
      for (const bt of batches) tf.dispose([bt.xt, bt.yt]);
    }
  });
}

test('the engine refuses a QDenseT on (batch, positions, features) by name (the tfjs path trains it)', () => {
  const m = tf.sequential({
    layers: [new QDenseT({ nOut: 2, inputShape: [3, 4], name: 'dense_t_seq' }), tf.layers.flatten()],
  });
  const why = engineUnsupported(m);
  assert.ok(why && /dense_t_seq.*QDenseT.*rank 3/.test(why), String(why));
  m.dispose();
});
