// The wasm engine trains a tfjs-layers HGQ model (QDense MLP, default quantizers, EBOPs and L1 in the loss)
// exactly like model.fit's step: same loss, same gradients for weights and every bit parameter, same state
// after several Adam steps; state copies back into the tfjs model (weights and Adam moments).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QDense } from '../src/layers/dense.ts';
import { EngineBinding, describeModel, engineUnsupported } from '../src/engine/from-tfjs.ts';
import { makeRng } from './util/rng.ts';
import { close } from './util/engine-compare.ts';

function buildModel(sizes: number[], beta: number, seed: number): tf.Sequential {
  const m = tf.sequential();
  for (let l = 1; l < sizes.length; l++) {
    m.add(
      new QDense({
        units: sizes[l]!,
        activation: l + 1 < sizes.length ? 'relu' : 'linear',
        beta0: beta,
        ...(l === 1 ? { inputShape: [sizes[0]!] } : {}),
        name: `d${seed}_${l}`,
      }),
    );
  }
  m.compile({ optimizer: tf.train.adam(3e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  return m;
}

function batch(seed: number, B: number, K: number, C: number) {
  const rng = makeRng(seed);
  const x = Float32Array.from({ length: B * K }, () => (rng.next() * 2 - 1) * 2);
  const y = new Float32Array(B * C);
  for (let b = 0; b < B; b++) y[b * C + (((x[b * K]! > 0 ? 1 : 0) + (x[b * K + 1]! > 0.5 ? 2 : 0)) % C)] = 1;
  return { x, y, xt: tf.tensor2d(x, [B, K]), yt: tf.tensor2d(y, [B, C]) };
}

test('one engine step equals the tfjs training step: loss, EBOPs, gradients of weights and all bit parameters', async () => {
  await tf.setBackend('cpu');
  const sizes = [16, 12, 8, 5];
  const model = buildModel(sizes, 1e-4, 1);
  const { x, y, xt, yt } = batch(5, 200, 16, 5);
  model.predict(xt); // build
  const bind = await EngineBinding.create(model, 'softmax_cross_entropy', { threads: 2, chunk: 64 });
  try {
    // tfjs: gradients of the total loss (task + β·EBOPs + L1) at the current state, as model.fit computes them
    const tvars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const out = model.apply(xt, { training: true }) as tf.Tensor;
      let l = tf.losses.softmaxCrossEntropy(yt, out);
      for (const layer of model.layers) l = tf.add(l, (layer as QDense).regularization());
      return l as tf.Scalar;
    }, tvars);
    const r = bind.engine.step(x, y);
    assert.ok(
      Math.abs(r.loss - value.dataSync()[0]!) <= 2e-5 * Math.abs(r.loss),
      `loss: engine ${r.loss} vs tfjs ${value.dataSync()[0]}`,
    );
    const eg = bind.engine.debugGradients();
    const { binding } = describeModel(model, 'softmax_cross_entropy');
    let checked = 0;
    for (const [name, lv] of binding.vars) {
      const g = grads[(lv.read() as tf.Variable).name];
      if (!g) continue; // not trainable (WRAP integer bits)
      close(name, eg[name]!, g.dataSync(), 1e-3);
      checked++;
    }
    assert.equal(checked, 3 * 7, 'kernel, bias, iq.f, kq.b, kq.i, bq.b, bq.i of three layers');
    tf.dispose([value, ...Object.values(grads)]);
  } finally {
    bind.dispose();
    tf.dispose([xt, yt]);
    model.dispose();
  }
});

test('several engine steps equal model.trainOnBatch steps, and push() copies weights and Adam state back', async () => {
  await tf.setBackend('cpu');
  const sizes = [16, 12, 8, 5];
  const a = buildModel(sizes, 1e-5, 2),
    b = buildModel(sizes, 1e-5, 3);
  const batches = [11, 12, 13, 14, 15].map((s) => batch(s, 256, 16, 5));
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
        // Adam normalizes: a gradient that is ~0 up to rounding may move a parameter by up to lr per step
        assert.ok(
          Math.abs(va[e]! - vb[e]!) <= 5 * 3e-3 * 1.01 + 1e-6,
          `${a.weights[j]!.name}[${e}]: tfjs ${va[e]} vs engine ${vb[e]}`,
        );
        if (Math.abs(va[e]! - vb[e]!) <= 1e-5 * Math.max(1, Math.abs(va[e]!))) near++;
      }
    });
    assert.ok(near >= 0.98 * total, `only ${near}/${total} parameters agree closely`);
    // Adam moments were pushed: one more tfjs step from either model stays together
    const bt = batch(16, 256, 16, 5);
    const la = (await a.trainOnBatch(bt.xt, bt.yt)) as number,
      lb = (await b.trainOnBatch(bt.xt, bt.yt)) as number;
    assert.ok(Math.abs(la - lb) <= 1e-4 * Math.abs(la), `after push: ${la} vs ${lb}`);
    const ia = (a.optimizer as unknown as { iterations: number }).iterations,
      ib = (b.optimizer as unknown as { iterations: number }).iterations;
    assert.equal(ib, ia);
  } finally {
    bind.dispose();
    a.dispose();
    b.dispose();
    for (const bt of batches) tf.dispose([bt.xt, bt.yt]);
  }
});

test('unsupported models are named clearly', async () => {
  const m = tf.sequential();
  m.add(new QDense({ units: 4, inputShape: [3] }));
  m.add(tf.layers.dense({ units: 2, name: 'plain_dense' }));
  assert.match(engineUnsupported(m)!, /layer 'plain_dense' \(Dense\) is not supported by the wasm engine/);
  const ok = tf.sequential();
  ok.add(new QDense({ units: 4, inputShape: [3], activation: 'relu' }));
  ok.add(new QDense({ units: 2 }));
  assert.equal(engineUnsupported(ok), null);
  m.dispose();
  ok.dispose();
});
