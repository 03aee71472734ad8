// QAdd and residual (DAG) models on the engine's graph path: a node's gradient sums what each consumer sends
// back; QAdd's EBOPs 0.65·(Σ bits − Σ min) with tf.minimum's tie rule. One step equals the tfjs step (loss,
// EBOPs, every gradient), several Adam steps leave the same state; a layer applied twice is named as unsupported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QBatchNormDense, QDense } from '../src/layers/dense.ts';
import { QConv1D, QConv2D } from '../src/layers/conv.ts';
import { QUnaryFunctionLUT } from '../src/layers/table.ts';
import { QAdd, QMaximum, QMinimum, QMultiply, QSubtract } from '../src/layers/merge.ts';
import { QConcatenate, QFlatten } from '../src/layers/shape.ts';
import { QMaxPooling2D } from '../src/layers/pooling.ts';
import { engineUnsupported } from '../src/engine/from-tfjs.ts';
import { batch, checkOneStep, checkSteps } from './util/engine-compare.ts';

const LR = 3e-3;
const C = 5;
let serial = 0;

interface Case {
  name: string;
  inShape: number[];
  build: (t: string) => tf.LayersModel;
  params: number;
}

const CASES: Case[] = [
  {
    name: 'dense residual block: add(h1, dense(h1)) → dense',
    inShape: [12],
    build: (t) => {
      const x = tf.input({ shape: [12] });
      const h1 = new QDense({ units: 8, activation: 'relu', beta0: 1e-5, name: `${t}_a` }).apply(x) as tf.SymbolicTensor;
      const h2 = new QDense({ units: 8, activation: 'relu', beta0: 1e-5, name: `${t}_b` }).apply(h1) as tf.SymbolicTensor;
      const s = new QAdd({ beta0: 1e-4, name: `${t}_add` }).apply([h1, h2]) as tf.SymbolicTensor;
      const y = new QDense({ units: C, beta0: 1e-5, name: `${t}_o` }).apply(s) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: y });
    },
    params: 3 * 7 + 2,
  },
  {
    name: 'three-input add of the model input, a dense and a batch-norm dense branch → dense',
    inShape: [8],
    build: (t) => {
      const x = tf.input({ shape: [8] });
      const a = new QDense({ units: 8, beta0: 1e-5, name: `${t}_a` }).apply(x) as tf.SymbolicTensor;
      const b = new QBatchNormDense({ units: 8, activation: 'relu', beta0: 1e-5, name: `${t}_b` }).apply(x) as tf.SymbolicTensor;
      const s = new QAdd({ beta0: 1e-4, name: `${t}_add` }).apply([x, a, b]) as tf.SymbolicTensor;
      const y = new QDense({ units: C, beta0: 1e-5, name: `${t}_o` }).apply(s) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: y });
    },
    params: 3 * 7 + 1 + 3,
  },
  {
    name: 'conv residual: add(x, conv_same(x)) → flatten → dense',
    inShape: [5, 4, 2],
    build: (t) => {
      const x = tf.input({ shape: [5, 4, 2] });
      const c = new QConv2D({
        filters: 2,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        beta0: 1e-5,
        name: `${t}_c`,
      }).apply(x) as tf.SymbolicTensor;
      const s = new QAdd({ beta0: 1e-4, name: `${t}_add` }).apply([x, c]) as tf.SymbolicTensor;
      const f = new QFlatten({ name: `${t}_f` }).apply(s) as tf.SymbolicTensor;
      const y = new QDense({ units: C, beta0: 1e-5, name: `${t}_o` }).apply(f) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: y });
    },
    params: 2 * 7 + 2,
  },
  {
    // SAT / SAT_SYM input quantizers (clipping, ∂/∂i, +k in the EBOPs) on conv, pooling, add and a batch-norm dense
    name: 'SAT and SAT_SYM activation quantizers: conv → max pool, add with a skip, batch-norm dense',
    inShape: [6, 4, 2],
    build: (t) => {
      const sat = { overflowMode: 'SAT' as const, i0: 0, f0: 4 },
        sym = { overflowMode: 'SAT_SYM' as const, i0: 1, f0: 3 };
      const x = tf.input({ shape: [6, 4, 2] });
      const c = new QConv2D({
        filters: 2,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        iqConf: sat,
        beta0: 1e-5,
        name: `${t}_c`,
      }).apply(x) as tf.SymbolicTensor;
      const s = new QAdd({ iqConf: [sym, sat], beta0: 1e-4, name: `${t}_add` }).apply([x, c]) as tf.SymbolicTensor;
      const p = new QMaxPooling2D({ poolSize: 2, iqConf: sym, beta0: 1e-5, name: `${t}_p` }).apply(s) as tf.SymbolicTensor;
      const f = new QFlatten({ name: `${t}_f` }).apply(p) as tf.SymbolicTensor;
      const b = new QBatchNormDense({ units: 6, activation: 'relu', iqConf: sat, beta0: 1e-5, name: `${t}_bn` }).apply(
        f,
      ) as tf.SymbolicTensor;
      const y = new QDense({ units: C, iqConf: sym, beta0: 1e-5, name: `${t}_o` }).apply(b) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: y });
    },
    // conv, bn-dense (+γ), dense: 7 + 8 + 7, with iq.i trained under SAT (+1 each); add: 2 × (i, f); pool: i, f
    params: 3 * 8 + 1 + 4 + 2,
  },
];

function build(c: Case): tf.LayersModel {
  const m = c.build(`rs${serial++}`);
  m.compile({ optimizer: tf.train.adam(LR), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  return m;
}

for (const [ci, c] of CASES.entries()) {
  test(`${c.name}: one engine step equals the tfjs step; several steps leave the same state`, async () => {
    await tf.setBackend('cpu');
    const model = build(c);
    const one = batch(300 + ci, 50, c.inShape, C);
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
    const batches = [1, 2, 3].map((s) => batch(400 + 10 * ci + s, 48, c.inShape, C));
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

test('QSubtract, QMultiply, QMaximum, QMinimum (two and three inputs, ties in the bits): one step and several steps equal tfjs', async () => {
  await tf.setBackend('cpu');
  const merges = { QSubtract, QMultiply, QMaximum, QMinimum };
  for (const [name, M] of Object.entries(merges)) {
    const c: Case = {
      name,
      inShape: [8],
      params: 3 * 7 + 1 + (name === 'QSubtract' ? 2 : 3) + 1,
      build: (t) => {
        const x = tf.input({ shape: [8] });
        const a = new QDense({ units: 6, activation: 'relu', beta0: 1e-5, name: `${t}_a` }).apply(x) as tf.SymbolicTensor;
        const b = new QDense({ units: 6, beta0: 1e-5, name: `${t}_b` }).apply(x) as tf.SymbolicTensor;
        const ins =
          name === 'QSubtract'
            ? [a, b]
            : [a, b, new QDense({ units: 6, beta0: 1e-5, name: `${t}_c`, useBias: false }).apply(x) as tf.SymbolicTensor];
        // one input quantizer narrower than the others: EBOPs min/max and products see unequal bits, others tie
        const iqConf = ins.map((_, j) => (j === 1 ? { f0: 4 } : {}));
        const s = new M({ beta0: 1e-4, iqConf, name: `${t}_m` }).apply(ins) as tf.SymbolicTensor;
        const y = new QDense({ units: C, beta0: 1e-5, name: `${t}_o` }).apply(s) as tf.SymbolicTensor;
        return tf.model({ inputs: x, outputs: y });
      },
    };
    // three dense layers with bias (7), one without (4) when three inputs; merge: iq.f per input
    c.params = name === 'QSubtract' ? 3 * 7 + 2 : 3 * 7 + 4 + 3;
    const model = build(c);
    const one = batch(500, 44, c.inShape, C);
    model.predict(one.xt);
    assert.equal(engineUnsupported(model), null, name);
    try {
      const names = await checkOneStep(model, 'softmax_cross_entropy', one.x, one.y, one.xt, one.yt);
      assert.equal(names.length, c.params, `${name}: ${names.join(', ')}`);
    } finally {
      tf.dispose([one.xt, one.yt]);
      model.dispose();
    }
    const a = build(c),
      b = build(c);
    const batches = [1, 2].map((s) => batch(510 + s, 40, c.inShape, C));
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

test('QConcatenate (last axis of flat vectors, middle axis of sequences; with and without input quantizers): one step and several steps equal tfjs', async () => {
  await tf.setBackend('cpu');
  const cases: Case[] = [
    {
      name: 'concat flat',
      inShape: [8],
      params: 3 * 7,
      build: (t) => {
        const x = tf.input({ shape: [8] });
        const a = new QDense({ units: 5, activation: 'relu', beta0: 1e-5, name: `${t}_a` }).apply(x) as tf.SymbolicTensor;
        const b = new QDense({ units: 3, beta0: 1e-5, name: `${t}_b` }).apply(x) as tf.SymbolicTensor;
        const c = new QConcatenate({ name: `${t}_cat` }).apply([a, b]) as tf.SymbolicTensor;
        return tf.model({
          inputs: x,
          outputs: new QDense({ units: C, beta0: 1e-5, name: `${t}_o` }).apply(c) as tf.SymbolicTensor,
        });
      },
    },
    {
      name: 'concat of sequences on axis 1 with input quantizers',
      inShape: [4, 3],
      params: 2 * 7 + 2 + 7,
      build: (t) => {
        const x = tf.input({ shape: [4, 3] });
        const a = new QConv1D({
          filters: 2,
          kernelSize: 2,
          padding: 'same',
          activation: 'relu',
          beta0: 1e-5,
          name: `${t}_a`,
        }).apply(x) as tf.SymbolicTensor;
        const b = new QConv1D({ filters: 2, kernelSize: 3, padding: 'same', beta0: 1e-5, name: `${t}_b` }).apply(
          x,
        ) as tf.SymbolicTensor;
        const c = new QConcatenate({ axis: 1, enableIq: true, name: `${t}_cat` }).apply([a, b]) as tf.SymbolicTensor;
        const f = new QFlatten({ name: `${t}_f` }).apply(c) as tf.SymbolicTensor;
        return tf.model({
          inputs: x,
          outputs: new QDense({ units: C, beta0: 1e-5, name: `${t}_o` }).apply(f) as tf.SymbolicTensor,
        });
      },
    },
  ];
  for (const c of cases) {
    const model = build(c);
    const one = batch(600, 44, c.inShape, C);
    model.predict(one.xt);
    assert.equal(engineUnsupported(model), null, c.name);
    try {
      const names = await checkOneStep(model, 'softmax_cross_entropy', one.x, one.y, one.xt, one.yt);
      assert.equal(names.length, c.params, `${c.name}: ${names.join(', ')}`);
    } finally {
      tf.dispose([one.xt, one.yt]);
      model.dispose();
    }
    const a = build(c),
      b = build(c);
    const batches = [1, 2].map((s) => batch(610 + s, 40, c.inShape, C));
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

test('unsupported graphs are named: a shared layer, a table activation', () => {
  const x = tf.input({ shape: [4] });
  const d = new QDense({ units: 4, name: 'shared_d' });
  const y = new QDense({ units: 2 }).apply(
    new QAdd().apply([
      d.apply(x) as tf.SymbolicTensor,
      d.apply(d.apply(x) as tf.SymbolicTensor) as tf.SymbolicTensor,
    ]) as tf.SymbolicTensor,
  ) as tf.SymbolicTensor;
  const m = tf.model({ inputs: x, outputs: y });
  assert.match(engineUnsupported(m)!, /layer 'shared_d' \(QDense\) is used 3 times/);
  const x2 = tf.input({ shape: [4] });
  const lut = new QUnaryFunctionLUT({ activation: 'tanh', name: 'qlut' }).apply(
    new QDense({ units: 4 }).apply(x2) as tf.SymbolicTensor,
  ) as tf.SymbolicTensor;
  const m2 = tf.model({ inputs: x2, outputs: new QDense({ units: 2 }).apply(lut) as tf.SymbolicTensor });
  assert.match(engineUnsupported(m2)!, /layer 'qlut' \(QUnaryFunctionLUT\) is not supported by the wasm engine yet/);
  m.dispose();
  m2.dispose();
});
