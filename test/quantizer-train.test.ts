/**
 * Training behaviour: L1 bit pressure alone drives bits down; with a task loss (regress y = x0 from [x0, x1],
 * x1 pure noise) the informative input keeps its fractional bits while the noise input loses them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { Quantizer } from '../src/quantizer/index.ts';

function sumBits(q: Quantizer): number {
  return tf.tidy(() => tf.sum(q.bits()).dataSync()[0]!);
}

test('L1 pressure alone lowers the bits of weight (KBI) and activation (KIF) quantizers', async () => {
  await initBackend();
  const before = tf.memory().numTensors;
  for (const opts of [
    { place: 'weight' as const, l1: 1 },
    { place: 'datalane' as const, l1: 1 },
  ]) {
    const q = new Quantizer(opts);
    q.build(opts.place === 'weight' ? [4, 4] : [null, 4]);
    const x = tf.randomNormal([4, 4], 0, 0.5, 'float32', 3);
    const opt = tf.train.sgd(0.1);
    const vars = q.weights.filter((w) => w.trainable).map((w) => w.variable.read() as tf.Variable);
    const bits0 = sumBits(q);
    for (let step = 0; step < 30; step++) {
      tf.tidy(() => {
        // the quantizer runs in training mode (tracking, clamping) but only the L1 term is in the loss
        opt.minimize(() => tf.add(tf.mul(tf.sum(q.call(x, true)), 0), q.l1Loss()) as tf.Scalar, false, vars);
      });
    }
    const bits1 = sumBits(q);
    // 30 SGD steps of 0.1 on a constant gradient of 1: each raw b (or f) falls by 3
    const n = q.paramShape.reduce((a, b) => a * b, 1);
    assert.ok(bits1 <= bits0 - 3 * n + 1e-3, `${opts.place}: bits ${bits0} -> ${bits1}`);
    opt.dispose();
    x.dispose();
    q.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});

test('with a task loss the informative input keeps its bits and the noise input loses them', async () => {
  await initBackend();
  const q = new Quantizer({ place: 'datalane', l1: 1e-5 }); // per-feature KIF, WRAP: f trainable, i tracked
  q.build([null, 2]);
  const w = tf.variable(tf.tensor2d([[1], [0.5]]));
  const fVar = q.weights.find((v) => v.name === 'f')!.variable.read() as tf.Variable;
  const opt = tf.train.adam(0.05);
  const bits0 = tf.tidy(() => q.bits().dataSync());
  for (let step = 0; step < 200; step++) {
    tf.tidy(() => {
      const x = tf.randomUniform([256, 2], -1, 1, 'float32', step + 1);
      const y = tf.slice(x, [0, 0], [256, 1]);
      opt.minimize(() => tf.add(tf.losses.meanSquaredError(y, tf.matMul(q.call(x, true), w)), q.l1Loss()) as tf.Scalar, false, [
        w,
        fVar,
      ]);
    });
  }
  const bitsT = q.bits();
  const bits1 = Array.from(bitsT.dataSync());
  bitsT.dispose();
  const kifs = q.kifs();
  const wv = w.dataSync();
  assert.ok(Math.abs(wv[0]! - 1) < 0.05 && Math.abs(wv[1]!) < 0.05, `weights learned: ${Array.from(wv)}`);
  assert.ok(kifs[0]!.f >= 5, `informative input keeps fractional bits: ${JSON.stringify(kifs)}`);
  assert.ok(bits1[1]! <= bits0[1]! - 3, `noise input loses bits: ${bits0[1]} -> ${bits1[1]}`);
  assert.ok(bits1[0]! >= bits1[1]! + 3, `informative input has clearly more bits: ${bits1}`);
  opt.dispose();
  w.dispose();
  q.dispose();
});
