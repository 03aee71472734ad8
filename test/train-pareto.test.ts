import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { offer, weaklyDominates, type FrontPoint } from '../src/train/pareto.ts';
import { ParetoCheckpoint, EarlyStopOnEbops } from '../src/train/callbacks.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng } from './util/rng.ts';

await tf.setBackend('cpu');

/** Brute force: the points (first occurrence among equals) that no other point weakly dominates. */
function bruteFront(ps: FrontPoint[]): FrontPoint[] {
  return ps.filter(
    (p, j) =>
      !ps.some((q, k) => (k < j && weaklyDominates(q, p)) || (k !== j && weaklyDominates(q, p) && !weaklyDominates(p, q))),
  );
}

test('offer() keeps exactly the non-dominated set over random streams with ties', () => {
  const rng = makeRng(11);
  for (let trial = 0; trial < 200; trial++) {
    const pts: FrontPoint[] = Array.from({ length: rng.int(1, 30) }, () => ({
      accuracy: rng.int(0, 8) / 8,
      ebops: rng.int(0, 8) * 100,
    }));
    let front: FrontPoint[] = [];
    for (const p of pts) {
      const { accepted, evicted } = offer(front, p);
      front = front.filter((q) => !evicted.includes(q));
      if (accepted) front.push(p);
    }
    const want = bruteFront(pts);
    assert.deepEqual(new Set(front), new Set(want), `trial ${trial}`);
  }
  assert.equal(offer([], { accuracy: NaN, ebops: 1 }).accepted, false);
});

function tinyModel() {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 3, inputShape: [4], activation: 'relu' }));
  m.add(tf.layers.dense({ units: 2 }));
  return m;
}

test('ParetoCheckpoint saves exactly the front on disk, deletes dominated checkpoints, writes front.json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pareto-'));
  const cb = new ParetoCheckpoint({ dir });
  cb.setModel(tinyModel());
  const seq: Array<[number, number]> = [
    [0.5, 1000],
    [0.6, 900],
    [0.55, 500],
    [0.7, 2000],
    [0.6, 900],
    [0.4, 400],
    [0.9, 300],
  ];
  for (let e = 0; e < seq.length; e++) await cb.onEpochEnd(e, { val_acc: seq[e]![0], ebops: seq[e]![1] });
  // (0.9, 300) dominates everything except nothing: it alone survives
  assert.deepEqual(
    cb.front.map((f) => f.epoch),
    [6],
  );
  const dirs = readdirSync(dir).filter((d) => d.startsWith('epoch-'));
  assert.deepEqual(dirs, ['epoch-0006']);
  assert.deepEqual(
    ParetoCheckpoint.readFront(dir).map((f) => [f.accuracy, f.ebops]),
    [[0.9, 300]],
  );
  assert.ok(!readdirSync(dir).some((d) => d.includes('.tmp')), 'no temp files left');

  const dir2 = mkdtempSync(join(tmpdir(), 'pareto-'));
  const cb2 = new ParetoCheckpoint({ dir: dir2 });
  cb2.setModel(tinyModel());
  for (let e = 0; e < 6; e++) await cb2.onEpochEnd(e, { val_acc: seq[e]![0], ebops: seq[e]![1] });
  assert.deepEqual(
    cb2.front.map((f) => f.epoch),
    [5, 2, 1, 3],
  ); // sorted by EBOPs
  for (const f of cb2.front) assert.ok(existsSync(join(f.path, 'model.json')));
  await assert.rejects(cb2.onEpochEnd(9, { acc: 1 }), /none of val_acc, val_accuracy, val_categoricalAccuracy/);
});

test('EarlyStopOnEbops stops once EBOPs is below the threshold for `patience` epochs', async () => {
  const m = tinyModel();
  m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
  const cb = new EarlyStopOnEbops(100, 2);
  cb.setModel(m);
  await cb.onEpochEnd(0, { ebops: 90 });
  assert.ok(!m.stopTraining);
  await cb.onEpochEnd(1, { ebops: 120 });
  await cb.onEpochEnd(2, { ebops: 99 });
  assert.ok(!m.stopTraining);
  await cb.onEpochEnd(3, { ebops: 50 });
  assert.equal(m.stopTraining, true);
  assert.equal(cb.stoppedEpoch, 3);
});

test('fs IOHandler: save + load gives identical predictions; missing model is a clear error', async () => {
  const m = tinyModel();
  const dir = join(mkdtempSync(join(tmpdir(), 'io-')), 'model');
  await saveModel(m, dir);
  await saveModel(m, dir); // overwrite in place works
  const m2 = await loadModel(dir);
  const x = tf.randomNormal([5, 4], 0, 1, 'float32', 3);
  assert.deepEqual(await (m2.predict(x) as tf.Tensor).data(), await (m.predict(x) as tf.Tensor).data());
  await assert.rejects(loadModel(join(dir, 'nope')), /model not found/);
});
