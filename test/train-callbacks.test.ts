import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import { BetaScheduler, BetaPidCallback, EbopsLogger, ProgressBar } from '../src/train/callbacks.ts';
import { piecewiseSchedule } from '../src/train/schedule.ts';
import { modelBeta, modelEbops, setModelBeta } from '../src/layers/model.ts';
import { main } from '../src/cli/main.ts';
import { makeRng } from './util/rng.ts';

await initBackend();

function data(n: number, seed: number) {
  const rng = makeRng(seed);
  const x = tf.tensor2d(
    Float32Array.from({ length: n * 6 }, () => rng.next() * 2 - 1),
    [n, 6],
  );
  const y = tf.tidy(() => tf.oneHot(tf.argMax(tf.slice(x, [0, 0], [n, 3]), 1), 3).toFloat());
  return { x, y };
}
function model() {
  const m = tf.sequential();
  m.add(new QDense({ units: 8, activation: 'relu', inputShape: [6] }));
  m.add(new QDense({ units: 3 }));
  m.compile({ optimizer: tf.train.adam(0.05), loss: 'meanSquaredError', metrics: ['acc'] });
  return m;
}

test('fit with β schedule: ebops and beta land in the epoch logs, β follows the schedule, EBOPs falls under pressure', async () => {
  const { x, y } = data(128, 1);
  const m = model();
  const e0 = modelEbops(m);
  const sched = piecewiseSchedule([
    { epoch: 0, beta: 1e-4, interp: 'log' },
    { epoch: 3, beta: 1e-2, interp: 'constant' },
  ]);
  const h = await m.fit(x, y, { epochs: 4, batchSize: 32, verbose: 0, callbacks: [new BetaScheduler(sched), new EbopsLogger()] });
  const beta = h.history['beta'] as number[];
  const ebops = h.history['ebops'] as number[];
  assert.equal(beta.length, 4);
  beta.forEach((b, e) =>
    assert.ok(
      Math.abs(b - sched(e)) < 1e-9 * Math.max(1, sched(e)) || Math.abs(b - sched(e)) / sched(e) < 1e-6,
      `epoch ${e}: ${b} vs ${sched(e)}`,
    ),
  );
  assert.ok(Math.abs(modelBeta(m) - 1e-2) < 1e-9);
  assert.ok(ebops[3]! < e0, `EBOPs ${e0} → ${ebops[3]}`);
});

test('β PID raises β while EBOPs is above target', async () => {
  const { x, y } = data(64, 2);
  const m = model();
  const pid = new BetaPidCallback({ targetEbops: 10, initBeta: 1e-6, warmup: 1, p: 1, i: 0.5 });
  const h = await m.fit(x, y, { epochs: 4, batchSize: 32, verbose: 0, callbacks: [pid] });
  const beta = h.history['beta'] as number[];
  assert.ok(beta[3]! > beta[1]! && beta[1]! >= 1e-6 * 0.999, `β ${beta}`);
});

test('training and inference leak no tensors; progress bar prints loss/acc/EBOPs/β', async () => {
  const { x, y } = data(64, 3);
  const m = model();
  setModelBeta(m, 1e-5);
  await m.fit(x, y, { epochs: 1, batchSize: 32, verbose: 0 }); // first fit creates optimizer state
  (m.predict(x) as tf.Tensor).dispose();
  const before = tf.memory().numTensors;
  let out = '';
  const sink = new Writable({
    write(c, _e, cb) {
      out += c.toString();
      cb();
    },
  });
  await m.fit(x, y, { epochs: 2, batchSize: 32, verbose: 0, callbacks: [new EbopsLogger(), new ProgressBar(sink)] });
  (m.predict(x) as tf.Tensor).dispose();
  m.layers.forEach((l) => (l as QDense).hgqEbops());
  assert.equal(tf.memory().numTensors, before);
  assert.match(out, /epoch 2\/2 .*loss [\d.]+ acc .*ebops [\d.e+]+ β [\d.e-]+/);
});

test('hgq demo rejects bad options with exit code 2', async () => {
  const err = process.stderr.write;
  let msg = '';
  process.stderr.write = ((s: string) => {
    msg += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.equal(await main(['demo', '--epochs', '0']), 2);
    assert.equal(await main(['demo', '--hidden', '64,x']), 2);
    assert.equal(await main(['demo', '--beta', '0:1e-6:cubic']), 2);
  } finally {
    process.stderr.write = err;
  }
  assert.match(msg, /--epochs must be a positive integer/);
  assert.match(msg, /--hidden must be comma-separated/);
  assert.match(msg, /unknown interpolation 'cubic'/);
});
