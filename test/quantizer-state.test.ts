/**
 * Properties of the quantizer's state: WRAP integer-bit tracking during training
 * (i ← clamp(max(i − decay, ceil(log2(absmax(x_q) + 2^-f))))), calibration (i ← max(i, needed), k ← k OR any(x_q < 0),
 * a union over repeated calls until reset), bounds clamping, and no tensor leaks in any mode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { Quantizer } from '../src/quantizer/index.ts';
import { quantize, roundToStep } from '../src/fixed/quantize.ts';

const fr = Math.fround;

function param(q: Quantizer, name: string): number[] {
  return Array.from(
    q.weights
      .find((w) => w.name === name)!
      .variable.read()
      .dataSync(),
  );
}
function setParam(q: Quantizer, name: string, vals: number[]) {
  const t = tf.tensor(vals, q.paramShape);
  q.weights.find((w) => w.name === name)!.variable.write(t);
  t.dispose();
}
function run(q: Quantizer, x: tf.Tensor, mode: boolean | 'calibrate'): Float32Array {
  const y = q.call(x, mode);
  const d = y.dataSync() as Float32Array;
  y.dispose();
  return d;
}

test('KIF WRAP training: integer bits follow the data and decay by i_decay_speed per step', async () => {
  await initBackend();
  const q = new Quantizer({ place: 'datalane' }); // KIF, i0 = 2, f0 = 6, RND, WRAP, decay 0.01, per activation
  q.build([null, 3]);
  assert.deepEqual(q.paramShape, [1, 3]);
  // column absmax after rounding to 2^-6: 0.296875, 5, 0
  const x = tf.tensor2d([
    [0.3, -5, 0],
    [-0.1, 4.5, 0],
  ]);
  const needed = [0.296875, 5, 0].map((a) => Math.ceil(Math.log2(a + 2 ** -6))); // −1, 3, −6
  assert.deepEqual(needed, [-1, 3, -6]);
  let raw = [2, 2, 2];
  for (let step = 1; step <= 120; step++) {
    const y = run(q, x, true);
    // training output is rounding only (no wrap): 5 stays 5 even while i = 2 could not hold it
    if (step === 1) assert.deepEqual(Array.from(y), [0.296875, -5, 0, -0.09375, 4.5, 0]);
    raw = raw.map((r, c) => Math.min(24, Math.max(fr(r - fr(0.01)), needed[c]!)));
    assert.deepEqual(param(q, 'i'), raw, `raw i after step ${step}`);
  }
  // 120 steps of 0.01: columns 0 and 2 fell from 2 to 0.8 (rounds to 1); column 1 is held at 3 by the data
  assert.deepEqual(
    q.kifs().map((t) => t.i),
    [1, 3, 1],
  );
  assert.deepEqual(param(q, 'f'), [6, 6, 6], 'tracking leaves f alone');
  tf.dispose(x);
  q.dispose();
});

test('KBI WRAP training: i from ceil(log2((absmax + eps)/(1 − 2^-b + eps))), then f = b − i', async () => {
  await initBackend();
  const q = new Quantizer({ place: 'datalane', qType: 'kbi', iDecaySpeed: 0.5, granularity: 'element' });
  q.build([4]);
  setParam(q, 'b', [8, 8, 4, 0]);
  setParam(q, 'i', [0, 0, 0, 0]);
  const x = tf.tensor1d([3.3, -100, 0.2, 1]);
  const y = run(q, x, true);
  const want = [3.3, -100, 0.2, 1].map((a, j) => {
    const b = [8, 8, 4, 0][j]!;
    return b > 0 ? Math.ceil(Math.log2((Math.abs(a) + 1e-7) / (1 - 2 ** -b + 1e-7))) : 24;
  });
  assert.deepEqual(want, [2, 7, -2, 24]);
  // i ← max(i − decay, estimate): element 2's decayed −0.5 beats its estimate −2 and rounds (half to even) to 0;
  // b = 0 has no estimate and goes to the upper i bound
  assert.deepEqual(param(q, 'i'), [2, 7, -0.5, 24]);
  assert.deepEqual(
    q.kifs().map((t) => t.i),
    [2, 7, 0, 24],
  );
  const kifs = q.kifs();
  const xs = [3.3, -100, 0.2, 1].map(fr);
  assert.deepEqual(
    Array.from(y),
    xs.map((v, j) => roundToStep(v, kifs[j]!.f, 'RND')),
    'rounded with f = b − new i',
  );
  tf.dispose(x);
  q.dispose();
});

test('calibration widens i and sets k from data, unions over calls until reset, and inference then never wraps', async () => {
  await initBackend();
  const q = new Quantizer({ place: 'datalane' });
  q.build([null, 3]);
  q.reset();
  assert.deepEqual(param(q, 'i'), [-24, -24, -24]);
  assert.deepEqual(param(q, 'k'), [0, 0, 0]);
  const a = tf.tensor2d([
    [0.3, 5, 0],
    [0.1, 2, 0],
  ]);
  const ya = run(q, a, 'calibrate');
  assert.deepEqual(q.kifs(), [
    { k: 0, i: -1, f: 6 },
    { k: 0, i: 3, f: 6 },
    { k: 0, i: -6, f: 6 },
  ]);
  assert.deepEqual(Array.from(ya), Array.from(run(q, a, false)), 'calibrate returns the inference output');
  const b = tf.tensor2d([
    [-3.2, 1, 0],
    [0.2, -0.5, 0],
  ]);
  run(q, b, 'calibrate');
  // union: column 0 now needs i = 2 and a sign; column 1 keeps i = 3 and gains a sign; column 2 is unchanged
  assert.deepEqual(q.kifs(), [
    { k: 1, i: 2, f: 6 },
    { k: 1, i: 3, f: 6 },
    { k: 0, i: -6, f: 6 },
  ]);
  for (const x of [a, b]) {
    const xs = Array.from(x.dataSync());
    const y = run(q, x, false);
    const kifs = q.kifsFor(x.shape);
    assert.deepEqual(
      Array.from(y),
      xs.map((v) => roundToStep(v, 6, 'RND')),
      'calibrated ranges hold every value: no wrap',
    );
    assert.deepEqual(
      Array.from(y),
      xs.map((v, j) => quantize(v, kifs[j]!, 'RND', 'WRAP')),
      'and agree with src/fixed',
    );
  }
  // calibrating the smaller data again changes nothing (union, not replacement)
  run(q, a, 'calibrate');
  assert.deepEqual(q.kifs()[0], { k: 1, i: 2, f: 6 });
  q.reset();
  run(q, a, 'calibrate');
  assert.deepEqual(q.kifs()[0], { k: 0, i: -1, f: 6 }, 'reset forgets');
  tf.dispose([a, b]);
  q.dispose();
});

test('KBI WRAP calibration: k only where b > 0; SAT quantizers ignore calibration', async () => {
  await initBackend();
  const q = new Quantizer({ place: 'datalane', qType: 'kbi', granularity: 'element' });
  q.build([3]);
  setParam(q, 'b', [6, 0, 6]);
  q.reset();
  const x = tf.tensor1d([-1.5, -2, 0.75]);
  const y = run(q, x, 'calibrate');
  const kifs = q.kifs();
  assert.deepEqual(
    kifs.map((t) => t.k),
    [1, 0, 0],
  );
  assert.deepEqual(Array.from(y), [-1.5, 0, 0.75]);
  tf.dispose(x);
  q.dispose();

  const s = new Quantizer({ place: 'weight' });
  s.build([2]);
  const before = s.kifs();
  const xs = tf.tensor1d([100, -100]);
  const ys = run(s, xs, 'calibrate');
  assert.deepEqual(s.kifs(), before);
  assert.deepEqual(Array.from(ys), [3.984375, -3.984375], 'SAT_SYM clips at ±(2^2 − 2^-6)');
  tf.dispose(xs);
  s.dispose();
});

test('parameters are clamped to their bounds before each training step and in every forward pass', async () => {
  await initBackend();
  const q = new Quantizer({ place: 'weight', bBounds: [0, 6], iBounds: [-2, 3] });
  q.build([2]);
  setParam(q, 'b', [-5, 40]);
  setParam(q, 'i', [10, -10]);
  assert.deepEqual(
    q.kifs(),
    [
      { k: 1, i: 3, f: -3 },
      { k: 1, i: -2, f: 8 },
    ],
    'inference uses clamped values',
  );
  assert.deepEqual(param(q, 'b'), [-5, 40], 'inference does not write');
  const x = tf.tensor1d([1, 1]);
  run(q, x, true);
  assert.deepEqual(param(q, 'b'), [0, 6]);
  assert.deepEqual(param(q, 'i'), [3, -2]);
  tf.dispose(x);
  q.dispose();
});

test('no tensor leaks in inference, training, gradients, calibration, reset, bits, l1Loss, kifs', async () => {
  await initBackend();
  for (const opts of [
    { place: 'datalane' as const },
    { place: 'datalane' as const, qType: 'kbi' as const },
    { place: 'weight' as const },
    { place: 'weight' as const, qType: 'kif' as const, overflowMode: 'SAT' as const, granularity: 'channel' as const },
  ]) {
    const x = tf.randomNormal([16, 5]);
    const q = new Quantizer(opts);
    q.build([16, 5]);
    const before = tf.memory().numTensors;
    for (const mode of [false, true, 'calibrate'] as const) tf.dispose(q.call(x, mode));
    const vars = q.weights.filter((w) => w.trainable).map((w) => w.variable.read() as tf.Variable);
    const g = tf.variableGrads(() => tf.add(tf.sum(q.call(x, true)), tf.add(tf.sum(q.bits()), q.l1Loss())) as tf.Scalar, vars);
    tf.dispose([g.value, ...Object.values(g.grads)]);
    q.reset();
    q.constrain();
    tf.dispose([q.bits(), q.bitsFor([3, 16, 5].slice(1)), q.l1Loss()]);
    const t = q.kifTensors();
    tf.dispose([t.k, t.i, t.f]);
    q.kifs();
    assert.equal(tf.memory().numTensors, before, `leak with ${JSON.stringify(opts)}`);
    q.dispose();
    x.dispose();
  }
});

test("HGQ2's WRAP weight exception: a trainable WRAP quantizer with isWeight only rounds in inference", async () => {
  await initBackend();
  const x = tf.tensor1d([0.15234375, -3.3, 100.7]);
  for (const [qType, isWeight, roundMode, roundsOnly] of [
    ['kbi', true, 'RND', true],
    ['kbi', true, 'TRN', false],
    ['kif', true, 'TRN', true],
    ['kbi', false, 'RND', false],
  ] as const) {
    const q = new Quantizer({ place: 'bias', qType, overflowMode: 'WRAP', roundMode, isWeight, granularity: 'element' });
    q.build([3]);
    setParam(q, 'k', [1, 1, 1]);
    setParam(q, 'i', [-6, 0, 2]);
    if (qType === 'kbi') setParam(q, 'b', [2, 8, 8]);
    else setParam(q, 'f', [8, 8, 6]);
    const kifs = q.kifs();
    const xs = Array.from(x.dataSync());
    const want = roundsOnly
      ? xs.map((v, j) => roundToStep(v, kifs[j]!.f, roundMode))
      : xs.map((v, j) => quantize(v, kifs[j]!, roundMode, 'WRAP'));
    assert.deepEqual(Array.from(run(q, x, false)), want, `${qType} isWeight=${isWeight} ${roundMode}`);
    q.dispose();
  }
  tf.dispose(x);
});

test('reset and calibration leave non-trainable WRAP quantizers alone (HGQ2 trace_minmax)', async () => {
  await initBackend();
  const q = new Quantizer({ place: 'datalane', trainable: false, k0: 0, i0: 1, f0: 0 });
  q.build([null, 2]);
  q.reset();
  const x = tf.tensor2d([[5, -7]]);
  run(q, x, 'calibrate');
  run(q, x, true);
  assert.deepEqual(q.kifs(), [
    { k: 0, i: 1, f: 0 },
    { k: 0, i: 1, f: 0 },
  ]);
  tf.dispose(x);
  q.dispose();
});
