// Flatten/Reshape (tfjs and HGQ pass-throughs) are free on the engine's row-major rows: a model with reshapes
// around its QDense layers trains on the engine exactly like the tfjs step (loss, gradients of weights and
// every bit parameter, state after several steps), and fitWithEngine takes the model's multi-axis input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QBatchNormDense, QDense } from '../src/layers/dense.ts';
import { QFlatten, QReshape } from '../src/layers/shape.ts';
import { EngineBinding, describeModel, engineUnsupported } from '../src/engine/from-tfjs.ts';
import { fitWithEngine } from '../src/engine/fit.ts';
import { makeRng } from './util/rng.ts';
import { close } from './util/engine-compare.ts';

const IN = [2, 3, 4];
const K = 24,
  C = 5;

function buildModel(tag: string): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.flatten({ inputShape: IN, name: `${tag}_flat0` }));
  m.add(new QDense({ units: 12, activation: 'relu', beta0: 1e-4, name: `${tag}_d0` }));
  m.add(new QReshape({ targetShape: [3, 4], name: `${tag}_rs` }));
  m.add(new QFlatten({ name: `${tag}_flat1` }));
  m.add(new QDense({ units: C, beta0: 1e-4, name: `${tag}_d1` }));
  m.compile({ optimizer: tf.train.adam(3e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  return m;
}

function batch(seed: number, B: number) {
  const rng = makeRng(seed);
  const x = Float32Array.from({ length: B * K }, () => (rng.next() * 2 - 1) * 2);
  const y = new Float32Array(B * C);
  for (let b = 0; b < B; b++) y[b * C + (((x[b * K]! > 0 ? 1 : 0) + (x[b * K + 5]! > 0.5 ? 2 : 0)) % C)] = 1;
  return { x, y, xt: tf.tensor(x, [B, ...IN]), yt: tf.tensor2d(y, [B, C]) };
}

test('reshapes are free: one engine step equals the tfjs step (loss, gradients of weights and all bit parameters)', async () => {
  await tf.setBackend('cpu');
  const model = buildModel('s1');
  const { x, y, xt, yt } = batch(3, 160);
  model.predict(xt);
  assert.equal(engineUnsupported(model), null);
  const bind = await EngineBinding.create(model, 'softmax_cross_entropy', { threads: 2, chunk: 64 });
  try {
    const tvars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const out = model.apply(xt, { training: true }) as tf.Tensor;
      let l = tf.losses.softmaxCrossEntropy(yt, out);
      for (const layer of model.layers) if (layer instanceof QDense) l = tf.add(l, layer.regularization());
      return l as tf.Scalar;
    }, tvars);
    const r = bind.engine.step(x, y);
    assert.ok(
      Math.abs(r.loss - value.dataSync()[0]!) <= 2e-5 * Math.abs(r.loss),
      `loss: engine ${r.loss} vs tfjs ${value.dataSync()[0]}`,
    );
    assert.ok(r.ebops > 0);
    const eg = bind.engine.debugGradients();
    const { binding } = describeModel(model, 'softmax_cross_entropy');
    let checked = 0;
    for (const [name, lv] of binding.vars) {
      const g = grads[(lv.read() as tf.Variable).name];
      if (!g) continue; // WRAP integer bits: not trainable
      close(name, eg[name]!, g.dataSync(), 1e-3);
      checked++;
    }
    assert.equal(checked, 2 * 7, 'kernel, bias, iq.f, kq.b, kq.i, bq.b, bq.i of both QDense layers');
    tf.dispose([value, ...Object.values(grads)]);
  } finally {
    bind.dispose();
    tf.dispose([xt, yt]);
    model.dispose();
  }
});

test('reshapes are free: several engine steps equal trainOnBatch; fitWithEngine takes the multi-axis input', async () => {
  await tf.setBackend('cpu');
  const a = buildModel('s2'),
    b = buildModel('s3');
  const batches = [21, 22, 23, 24].map((s) => batch(s, 128));
  a.predict(batches[0]!.xt);
  b.predict(batches[0]!.xt);
  b.setWeights(a.getWeights());
  const bind = await EngineBinding.create(b, 'softmax_cross_entropy', { threads: 1 });
  try {
    for (const bt of batches) {
      const lt = (await a.trainOnBatch(bt.xt, bt.yt)) as number;
      const le = bind.engine.step(bt.x, bt.y).loss;
      assert.ok(Math.abs(lt - le) <= 1e-4 * Math.abs(lt), `loss ${le} vs tfjs ${lt}`);
    }
    bind.push();
    const wa = a.getWeights(),
      wb = b.getWeights();
    let total = 0,
      near = 0;
    wa.forEach((t, j) => {
      const va = t.dataSync(),
        vb = wb[j]!.dataSync();
      for (let e = 0; e < va.length; e++) {
        total++;
        assert.ok(
          Math.abs(va[e]! - vb[e]!) <= 4 * 3e-3 * 1.01 + 1e-6,
          `${a.weights[j]!.name}[${e}]: tfjs ${va[e]} vs engine ${vb[e]}`,
        );
        if (Math.abs(va[e]! - vb[e]!) <= 1e-5 * Math.max(1, Math.abs(va[e]!))) near++;
      }
    });
    assert.ok(near >= 0.98 * total, `only ${near}/${total} parameters agree closely`);
  } finally {
    bind.dispose();
  }
  // fitWithEngine with x shaped like the model input (validation through model.predict on the same shape)
  const all = batch(31, 400);
  const h = await fitWithEngine(b, all.xt, all.yt, {
    epochs: 3,
    batchSize: 50,
    loss: 'softmax_cross_entropy',
    validationData: [all.xt, all.yt],
    engine: { threads: 1 },
  });
  assert.ok(h.history['loss']![2]! < h.history['loss']![0]!, `loss decreases: ${h.history['loss']}`);
  assert.ok(Number.isFinite(h.history['val_acc']![2]!));
  const bad = tf.zeros([4, 25]);
  await assert.rejects(
    fitWithEngine(b, bad, tf.zeros([4, C]), { epochs: 1, batchSize: 2, loss: 'softmax_cross_entropy' }),
    /25 values per sample, the model's input \[2,3,4\] takes 24/,
  );
  a.dispose();
  b.dispose();
  for (const bt of [...batches, all]) tf.dispose([bt.xt, bt.yt]);
  bad.dispose();
});

test('unsupported shapes are named: QBatchNormDense on a rank-3 input, a quantizing reshape, a reshaped output', () => {
  const m1 = tf.sequential();
  m1.add(new QBatchNormDense({ units: 4, inputShape: [3, 2], name: 'dense_r3' }));
  m1.add(tf.layers.flatten());
  m1.add(new QDense({ units: 2 }));
  assert.match(engineUnsupported(m1)!, /layer 'dense_r3' \(QBatchNormDense\) takes inputs of rank 3/);
  const m2 = tf.sequential();
  m2.add(new QFlatten({ inputShape: [3, 2], enableIq: true, name: 'qflat_iq' }));
  m2.add(new QDense({ units: 2 }));
  assert.match(engineUnsupported(m2)!, /layer 'qflat_iq' \(QFlatten\) quantizes/);
  const m3 = tf.sequential();
  m3.add(new QDense({ units: 4, inputShape: [3] }));
  m3.add(new QReshape({ targetShape: [2, 2] }));
  assert.match(engineUnsupported(m3)!, /output has rank 3/);
  for (const m of [m1, m2, m3]) m.dispose();
});
