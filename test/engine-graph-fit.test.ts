// fitWithEngine on the graph path trains like model.fit: the same epoch losses without shuffling while a β
// schedule changes every layer's β each epoch (engine nodes skip the pass-through layers, so node and layer
// indices differ), and leaves the trained state — weights, bits, moving statistics — in the tfjs model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QBatchNormDense, QDense } from '../src/layers/dense.ts';
import { QConv1D } from '../src/layers/conv.ts';
import { QMaxPooling1D } from '../src/layers/pooling.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { BetaScheduler, EbopsLogger } from '../src/train/callbacks.ts';
import { modelBeta } from '../src/layers/model.ts';
import { fitWithEngine } from '../src/engine/fit.ts';
import { describeAny } from '../src/engine/from-tfjs.ts';
import { makeRng } from './util/rng.ts';

function buildModel(name: string): tf.Sequential {
  const m = tf.sequential({
    layers: [
      new QConv1D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [10, 2], name: `${name}_c` }),
      new QMaxPooling1D({ poolSize: 2, name: `${name}_p` }),
      new QFlatten({ name: `${name}_f` }),
      new QBatchNormDense({ units: 8, activation: 'relu', name: `${name}_bn` }),
      new QDense({ units: 3, name: `${name}_d` }),
    ],
  });
  m.compile({
    optimizer: tf.train.adam(1e-2),
    loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p),
    metrics: ['acc'],
  });
  return m;
}

function dataset(n: number) {
  const rng = makeRng(44);
  const x = Float32Array.from({ length: n * 20 }, () => rng.next() * 2 - 1);
  const y = new Float32Array(n * 3);
  for (let j = 0; j < n; j++) y[j * 3 + (x[j * 20]! + x[j * 20 + 5]! > 0.3 ? 0 : x[j * 20 + 11]! > 0 ? 1 : 2)] = 1;
  return { x: tf.tensor(x, [n, 10, 2]), y: tf.tensor2d(y, [n, 3]) };
}

test('fitWithEngine on a conv / pool / batch-norm model matches model.fit epoch by epoch under a β schedule', async () => {
  await tf.setBackend('cpu');
  const { x, y } = dataset(400);
  const a = buildModel('gfa'),
    b = buildModel('gfb');
  a.predict(x.slice(0, 1));
  b.predict(x.slice(0, 1));
  b.setWeights(a.getWeights());
  assert.ok(describeAny(b, 'softmax_cross_entropy').graph);
  const sched = (e: number) => 2e-5 * (e + 1);
  try {
    const ha = await a.fit(x, y, {
      epochs: 3,
      batchSize: 100,
      shuffle: false,
      callbacks: [new BetaScheduler(sched)],
      verbose: 0,
    });
    const hb = await fitWithEngine(b, x, y, {
      epochs: 3,
      batchSize: 100,
      shuffle: false,
      loss: 'softmax_cross_entropy',
      callbacks: [new BetaScheduler(sched), new EbopsLogger()],
      engine: { threads: 2 },
    });
    for (let e = 0; e < 3; e++) {
      const la = ha.history['loss']![e] as number,
        lb = hb.history['loss']![e]!;
      // the loss includes β·EBOPs (~20% of it here): a β applied to the wrong layer would show
      assert.ok(Math.abs(la - lb) <= 2e-3 * Math.abs(la), `epoch ${e} loss: tfjs ${la} vs engine ${lb}`);
    }
    assert.ok(hb.history['ebops']![2]! > 0, 'EbopsLogger ran on the synced model');
    assert.equal(modelBeta(b), Math.fround(sched(2)), 'β schedule applied to the model');
    // state synced back: every weight (incl. moving statistics and bit parameters) close to the tfjs-trained twin
    const wa = a.getWeights(),
      wb = b.getWeights();
    let total = 0,
      near = 0;
    wa.forEach((t, j) => {
      const va = t.dataSync(),
        vb = wb[j]!.dataSync();
      for (let i = 0; i < va.length; i++) {
        total++;
        if (Math.abs(va[i]! - vb[i]!) <= 1e-3 * Math.max(1, Math.abs(va[i]!))) near++;
      }
    });
    assert.ok(near >= 0.97 * total, `only ${near}/${total} weights agree`);
  } finally {
    a.dispose();
    b.dispose();
    tf.dispose([x, y]);
  }
});
