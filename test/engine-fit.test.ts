// fitWithEngine trains a tfjs-layers HGQ model like model.fit (same epoch losses without shuffling), runs the
// tfjs callbacks (β schedule, EBOPs logging) and leaves the trained state in the tfjs model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { QDense } from '../src/layers/dense.ts';
import { BetaScheduler, EbopsLogger } from '../src/train/callbacks.ts';
import { modelBeta } from '../src/layers/model.ts';
import { fitWithEngine } from '../src/engine/fit.ts';
import { makeRng } from './util/rng.ts';

function buildModel(name: string): tf.Sequential {
  const m = tf.sequential();
  m.add(new QDense({ units: 16, activation: 'relu', inputShape: [8], name: `${name}_a` }));
  m.add(new QDense({ units: 3, name: `${name}_b` }));
  m.compile({
    optimizer: tf.train.adam(1e-2),
    loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p),
    metrics: ['acc'],
  });
  return m;
}

function dataset(n: number) {
  const rng = makeRng(21);
  const x = Float32Array.from({ length: n * 8 }, () => rng.next() * 2 - 1);
  const y = new Float32Array(n * 3);
  for (let j = 0; j < n; j++) y[j * 3 + (x[j * 8]! + x[j * 8 + 1]! > 0.3 ? 0 : x[j * 8 + 2]! > 0 ? 1 : 2)] = 1;
  return { x: tf.tensor2d(x, [n, 8]), y: tf.tensor2d(y, [n, 3]) };
}

test('fitWithEngine matches model.fit epoch by epoch and drives tfjs callbacks', async () => {
  await tf.setBackend('cpu');
  const { x, y } = dataset(650); // 6 full batches of 100 and a last one of 50
  const val = dataset(200);
  const a = buildModel('fa'),
    b = buildModel('fb');
  a.predict(x.slice(0, 1));
  b.predict(x.slice(0, 1));
  b.setWeights(a.getWeights());
  const sched = (e: number) => 1e-5 * (e + 1);
  try {
    const ha = await a.fit(x, y, {
      epochs: 4,
      batchSize: 100,
      shuffle: false,
      callbacks: [new BetaScheduler(sched)],
      verbose: 0,
    });
    const hb = await fitWithEngine(b, x, y, {
      epochs: 4,
      batchSize: 100,
      shuffle: false,
      loss: 'softmax_cross_entropy',
      validationData: [val.x, val.y],
      callbacks: [new BetaScheduler(sched), new EbopsLogger()],
      engine: { threads: 2 },
    });
    assert.deepEqual(hb.epoch, [0, 1, 2, 3]);
    for (let e = 0; e < 4; e++) {
      const la = ha.history['loss']![e] as number,
        lb = hb.history['loss']![e]!;
      assert.ok(Math.abs(la - lb) <= 2e-3 * Math.abs(la), `epoch ${e} loss: tfjs ${la} vs engine ${lb}`);
      assert.ok(Math.abs((ha.history['acc']![e] as number) - hb.history['acc']![e]!) <= 0.02, `epoch ${e} acc`);
    }
    // the total loss includes β·EBOPs with β rising 4x over the run, so only the first epochs must improve it
    assert.ok(hb.history['loss']![1]! < hb.history['loss']![0]!, `loss decreases while β is small: ${hb.history['loss']}`);
    assert.ok(hb.history['val_acc']![3]! > 0.6, `val_acc ${hb.history['val_acc']![3]}`);
    assert.ok(hb.history['ebops']![3]! > 0, 'EbopsLogger ran on the synced model');
    assert.equal(modelBeta(b), Math.fround(sched(3)), 'β schedule applied to the model');
    // the trained state lives in the tfjs model: its predictions match the tfjs-trained twin
    const pa = a.predict(val.x) as tf.Tensor,
      pb = b.predict(val.x) as tf.Tensor;
    const agree = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(pa, -1), tf.argMax(pb, -1)), 'float32')).dataSync()[0]!);
    assert.ok(agree >= 0.97, `predictions agree on ${agree}`);
    tf.dispose([pa, pb]);
  } finally {
    a.dispose();
    b.dispose();
    tf.dispose([x, y, val.x, val.y]);
  }
});

test('fitWithEngine refuses unsupported models with the layer named', async () => {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 2, inputShape: [3], name: 'plain' }));
  m.compile({ optimizer: tf.train.adam(), loss: 'meanSquaredError' });
  const x = tf.zeros([4, 3]),
    y = tf.zeros([4, 2]);
  await assert.rejects(
    fitWithEngine(m, x, y, { epochs: 1, batchSize: 2, loss: 'mse' }),
    /layer 'plain' \(Dense\) is not supported by the wasm engine/,
  );
  m.dispose();
  tf.dispose([x, y]);
});

test('hgq demo --engine/--threads reject bad values with exit code 2 and say what is allowed', async () => {
  const { main } = await import('../src/cli/main.ts');
  const err = process.stderr.write;
  let msg = '';
  process.stderr.write = ((s: string) => {
    msg += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.equal(await main(['demo', '--engine', 'gpu']), 2);
    assert.equal(await main(['demo', '--threads', '0']), 2);
  } finally {
    process.stderr.write = err;
  }
  assert.match(msg, /--engine must be wasm or tfjs, got "gpu"/);
  assert.match(msg, /--threads must be a positive integer/);
});

test('fitWithEngine names a NaN or Inf in x or y before training', async () => {
  await tf.setBackend('cpu');
  const m = buildModel('fnan');
  const { x, y } = dataset(8);
  const xv = Float32Array.from(x.dataSync()),
    yv = Float32Array.from(y.dataSync());
  xv[3 * 8 + 5] = NaN;
  yv[6 * 3 + 1] = Infinity;
  const xb = tf.tensor2d(xv, [8, 8]),
    ybad = tf.tensor2d(yv, [8, 3]);
  try {
    await assert.rejects(
      fitWithEngine(m, xb, y, { epochs: 1, batchSize: 4, loss: 'softmax_cross_entropy' }),
      /x has NaN at sample 3, value 5/,
    );
    await assert.rejects(
      fitWithEngine(m, x, ybad, { epochs: 1, batchSize: 4, loss: 'softmax_cross_entropy' }),
      /y has Infinity at sample 6, value 1/,
    );
  } finally {
    m.dispose();
    tf.dispose([x, y, xb, ybad]);
  }
});

test('a learning rate set by a callback at an epoch start takes effect in that epoch: one call with a schedule equals one call per epoch', async () => {
  await tf.setBackend('cpu');
  const { x, y } = dataset(300);
  const lrAt = (e: number) => 1e-2 * 0.5 ** e; // a different rate every epoch
  const setLr = (m: tf.LayersModel, lr: number) => {
    (m.optimizer as unknown as { learningRate: number }).learningRate = lr;
  };
  const a = buildModel('la'),
    b = buildModel('lb'),
    c = buildModel('lc');
  for (const m of [a, b, c]) m.predict(x.slice(0, 1));
  b.setWeights(a.getWeights());
  c.setWeights(a.getWeights());
  const opts = { batchSize: 64, shuffle: true, seed: 5, loss: 'softmax_cross_entropy' as const };
  try {
    // one call; the rate is changed in onEpochBegin
    const schedule = new (class extends tf.Callback {
      override async onEpochBegin(e: number): Promise<void> {
        setLr(a, lrAt(e));
      }
    })();
    await fitWithEngine(a, x, y, { ...opts, epochs: 3, callbacks: [schedule] });
    // one call per epoch, the rate set before each
    for (let e = 0; e < 3; e++) {
      setLr(b, lrAt(e));
      await fitWithEngine(b, x, y, { ...opts, epochs: 1, initialEpoch: e });
    }
    const same = (p: tf.LayersModel, q: tf.LayersModel) =>
      p.getWeights().every((w, j) => tf.tidy(() => tf.equal(w, q.getWeights()[j]!).all().dataSync()[0] === 1));
    assert.ok(same(a, b), 'bit-identical weights');
    // and the rate matters: the same run at the first rate throughout ends elsewhere
    setLr(c, lrAt(0));
    await fitWithEngine(c, x, y, { ...opts, epochs: 3 });
    assert.ok(!same(a, c), 'a constant rate gives other weights');
  } finally {
    for (const m of [a, b, c]) m.dispose();
    tf.dispose([x, y]);
  }
});
