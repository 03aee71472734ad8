import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense, QBatchNormDense } from '../src/layers/dense.ts';
import { quantize } from '../src/fixed/quantize.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng, type Rng } from './util/rng.ts';
import { matMul2d } from '../src/layers/matmul.ts';
import { kifAt, setVar } from './util/tf.ts';
import { qiFromKif, qiIsZero } from '../src/fixed/interval.ts';

await initBackend();

/** A QDense with small random bit widths (so float32 accumulation is exact) and random weights. */
function randomDense(rng: Rng, nIn: number, units: number, activation: 'relu' | 'linear') {
  const m = tf.sequential();
  const l = new QDense({ units, activation, inputShape: [nIn] });
  m.add(l);
  setVar(l, 'kernel', () => (rng.next() - 0.5) * 3);
  setVar(l, 'bias', () => (rng.next() - 0.5) * 2);
  setVar(l, 'kq_b', () => rng.int(0, 5) + (rng.next() - 0.5) * 0.8);
  setVar(l, 'kq_i', () => rng.int(-1, 2));
  setVar(l, 'bq_b', () => rng.int(0, 6));
  setVar(l, 'bq_i', () => rng.int(-1, 2));
  setVar(l, 'iq_f', () => rng.int(-1, 4));
  setVar(l, 'iq_i', () => rng.int(-1, 3));
  setVar(l, 'iq_k', () => rng.int(0, 1));
  return { m, l };
}

test('QDense inference equals the fixed-point reference bit for bit (random types, wrap-around, zero widths)', async () => {
  const rng = makeRng(5);
  let zeroWidthInputs = 0;
  let zeroWidthWeights = 0;
  for (const act of ['relu', 'linear'] as const) {
    const { m, l } = randomDense(rng, 7, 5, act);
    const n = 300;
    const xs = Array.from({ length: n * 7 }, () => (rng.next() - 0.5) * 20); // far outside ranges: WRAP exercised
    xs[0] = 0;
    xs[1] = 0.5;
    xs[2] = -0.25;
    const y = (m.predict(tf.tensor2d(xs, [n, 7])) as tf.Tensor).dataSync();
    const ex = l.exportQuantized();
    const iq = ex.inputQuantizers[0]!;
    const K = ex['kernel'] as { values: Float64Array; quant: { k: Uint8Array; i: Int32Array; f: Int32Array } };
    const B = ex['bias'] as { values: Float64Array; quant: { k: Uint8Array; i: Int32Array; f: Int32Array } };
    const kRaw = l.kernel.read().dataSync();
    const bRaw = l.bias!.read().dataSync();
    // the exported constants are the raw weights quantized by src/fixed with the exported types
    for (let j = 0; j < kRaw.length; j++) assert.equal(K.values[j], quantize(kRaw[j]!, kifAt(K.quant, j), 'RND', 'SAT_SYM'));
    for (let j = 0; j < bRaw.length; j++) assert.equal(B.values[j], quantize(bRaw[j]!, kifAt(B.quant, j), 'RND', 'SAT_SYM'));
    for (let j = 0; j < 7; j++) if (iq.k[j]! + iq.i[j]! + iq.f[j]! <= 0) zeroWidthInputs++;
    // a pruned weight: its type holds only 0 (b = 0 leaves the SAT_SYM sign bit alone, which excludes −1)
    for (let j = 0; j < kRaw.length; j++) if (qiIsZero(qiFromKif(kifAt(K.quant, j), 'SAT_SYM'))) zeroWidthWeights++;
    for (let s = 0; s < n; s++) {
      for (let o = 0; o < 5; o++) {
        let acc = B.values[o]!;
        for (let j = 0; j < 7; j++)
          acc += quantize(Math.fround(xs[s * 7 + j]!), kifAt(iq, j), iq.round, iq.overflow) * K.values[j * 5 + o]!;
        const want = act === 'relu' ? Math.max(acc, 0) : acc;
        assert.equal(y[s * 5 + o], want, `sample ${s} out ${o}`);
      }
    }
  }
  // the random state really prunes: some inputs have zero width and some weights only the value 0
  assert.ok(zeroWidthInputs > 0, 'no zero-width input among 14');
  assert.ok(zeroWidthWeights > 0, 'no pruned weight among 70');
});

test('QDense EBOPs equal a hand computation; gradients w.r.t. bit parameters are the bit products', () => {
  const m = tf.sequential();
  const l = new QDense({ units: 2, inputShape: [3] });
  m.add(l);
  // input bits (KIF, WRAP: i+f, no sign): [3, 0 (dead: i+f=-1), 5]
  setVar(l, 'iq_i', [1, -2, 2]);
  setVar(l, 'iq_f', [2, 1, 3]);
  // kernel bits (KBI: round(b)), rows = inputs
  setVar(l, 'kq_b', [1, 2, 4, 3, 0, 6]);
  setVar(l, 'bq_b', [2, 5]);
  // Σ_j,o bin[j]·bk[j,o] = 3·(1+2) + 0·(4+3) + 5·(0+6) = 39; bias Σ = 7
  assert.equal(l.hgqEbops(), 46);
  const vars = Object.fromEntries(l.trainableWeights.map((w) => [w.originalName.split('/').pop()!, w.read() as tf.Variable]));
  const { grads } = tf.variableGrads(() => l.ebopsTensor(), [vars['kq_b']!, vars['iq_f']!, vars['bq_b']!] as tf.Variable[]);
  const g = (k: string) => Array.from(grads[(vars[k] as tf.Variable).name]!.dataSync());
  assert.deepEqual(g('kq_b'), [3, 3, 0, 0, 5, 5]); // ∂/∂b[j,o] = bits_in[j]
  assert.deepEqual(g('iq_f'), [3, 0, 6]); // ∂/∂f[j] = Σ_o bits_k[j,o] where i+f > 0 (relu), else 0
  assert.deepEqual(g('bq_b'), [1, 1]);
  // β·EBOPs enters the loss through the layer's losses
  l.setBeta(0.5);
  m.predict(tf.zeros([1, 3])); // builds the Sequential's inner model, whose losses fit uses
  const reg = tf.tidy(() => m.calculateLosses().reduce((a, b) => a + b.dataSync()[0]!, 0));
  assert.ok(Math.abs(reg - (23 + 1e-8 * (1 + 2 + 4 + 3 + 0 + 6 + 2 + 5 + 1 - 2 + 2 + 2 + 1 + 3))) < 1e-5, `reg ${reg}`);
});

test('calibration widens WRAP input ranges to the data and sets k from signs; reset starts over', () => {
  const m = tf.sequential();
  const l = new QDense({ units: 2, inputShape: [3] });
  m.add(l);
  const x = tf.tensor2d([
    [5, 0.3, -0.2],
    [-1, 0.1, 0.7],
  ]);
  calibrate(m, x, { reset: true });
  const ex = l.exportQuantized().inputQuantizers[0]!;
  // absmax 5 → i = ceil(log2(5 + 2^-6)) = 3; 0.3 → i = -1; 0.7 → 0; k = any negative
  assert.deepEqual(Array.from(ex.i), [3, -1, 0]);
  assert.deepEqual(Array.from(ex.k), [1, 0, 1]);
  const again = calibrate(m, tf.tensor2d([[0.1, 3, 0.1]]));
  assert.deepEqual(Array.from(l.exportQuantized().inputQuantizers[0]!.i), [3, 2, 0]); // union with earlier ranges
  assert.ok(Number.isInteger(again.ebops));
  calibrate(m, tf.tensor2d([[0.1, 0.1, 0.1]]), { reset: true });
  assert.deepEqual(Array.from(l.exportQuantized().inputQuantizers[0]!.k), [0, 0, 0]);
});

test('save + load keeps quantizer state and predicts identically (QDense + QBatchNormDense, trained)', async () => {
  const rng = makeRng(9);
  const m = tf.sequential();
  m.add(new QDense({ units: 6, activation: 'relu', inputShape: [4], beta0: 1e-6 }));
  m.add(new QBatchNormDense({ units: 3 }));
  m.compile({ optimizer: tf.train.adam(0.02), loss: 'meanSquaredError' });
  const x = tf.tensor2d(
    Array.from({ length: 64 * 4 }, () => rng.next() * 4 - 2),
    [64, 4],
  );
  const y = tf.tensor2d(
    Array.from({ length: 64 * 3 }, () => rng.next()),
    [64, 3],
  );
  await m.fit(x, y, { epochs: 2, batchSize: 16, verbose: 0 });
  calibrate(m, x);
  const dir = join(mkdtempSync(join(tmpdir(), 'qdense-')), 'm');
  await saveModel(m, dir);
  const m2 = await loadModel(dir);
  assert.deepEqual((m2.predict(x) as tf.Tensor).dataSync(), (m.predict(x) as tf.Tensor).dataSync());
  assert.equal(m2.layers[0]!.getClassName(), 'QDense');
  assert.deepEqual(
    (m2.layers[0] as QDense).exportQuantized().inputQuantizers,
    (m.layers[0] as QDense).exportQuantized().inputQuantizers,
  );
  assert.equal((m2.layers[0] as QDense).getBeta(), (m.layers[0] as QDense).getBeta());
});

test('bad input: unknown activation/option, wrong input shape, NaN — errors name the layer', () => {
  assert.throws(
    () => new QDense({ units: 3, activation: 'tanh' as 'relu', name: 'd1' }),
    /QDense 'd1': unknown activation 'tanh'/,
  );
  assert.throws(() => new QDense({ units: 3, name: 'd2', foo: 1 } as never), /QDense 'd2': unknown option 'foo'/);
  assert.throws(() => new QDense({ units: 0, name: 'd3' }), /QDense 'd3': units must be a positive integer/);
  assert.throws(
    () => new QDense({ units: 2, name: 'd4', kqConf: { roundMode: 'UP' as 'RND' } }).apply(tf.zeros([1, 3])),
    /QDense 'd4': kq: .*unknown roundMode 'UP'/,
  );
  const m = tf.sequential();
  m.add(new QDense({ units: 2, inputShape: [3], name: 'd5' }));
  assert.throws(() => m.predict(tf.zeros([2, 4])), /expected d5_input to have shape \[null,3\]/);
  assert.throws(() => m.predict(tf.tensor2d([[1, NaN, 0]])), /QDense 'd5': input contains NaN or Inf/);
  assert.throws(() => m.predict(tf.tensor2d([[1, Infinity, 0]])), /QDense 'd5': input contains NaN or Inf/);
});

test('QBatchNormDense: moving statistics follow the data in training; inference equals the exported folded kernel/bias', async () => {
  const rng = makeRng(17);
  const m = tf.sequential();
  const l = new QBatchNormDense({ units: 3, inputShape: [4], momentum: 0.5, activation: 'relu' });
  m.add(l);
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
  const xs = Float32Array.from({ length: 64 * 4 }, () => rng.next() * 2 + 3); // mean ≈ 4
  const x = tf.tensor2d(xs, [64, 4]);
  await m.fit(x, tf.zeros([64, 3]), { epochs: 3, batchSize: 16, verbose: 0 });
  const mm = Array.from(l.movingMean.read().dataSync());
  assert.ok(
    mm.every((v) => v > 3 && v < 5),
    `moving mean ${mm}`,
  );
  calibrate(m, x);
  const y = (m.predict(x) as tf.Tensor).dataSync();
  const ex = l.exportQuantized();
  const iq = ex.inputQuantizers[0]!;
  const K = (ex['kernel'] as { values: Float64Array }).values,
    B = (ex['bias'] as { values: Float64Array }).values;
  for (let s = 0; s < 64; s++)
    for (let o = 0; o < 3; o++) {
      let acc = B[o]!;
      for (let j = 0; j < 4; j++) acc += quantize(xs[s * 4 + j]!, kifAt(iq, j), iq.round, iq.overflow) * K[j * 3 + o]!;
      assert.equal(y[s * 3 + o], Math.max(acc, 0), `sample ${s} out ${o}`);
    }
});

test('matMul2d (explicit-transpose gradients, ones-row bias gradient) equals the stock gradients', () => {
  const x = tf.randomNormal([7, 5], 0, 1, 'float32', 1),
    w = tf.randomNormal([5, 3], 0, 1, 'float32', 2),
    b = tf.randomNormal([3], 0, 1, 'float32', 3);
  const c = tf.randomNormal([7, 3], 0, 1, 'float32', 4);
  const ours = tf.grads((a: tf.Tensor, v: tf.Tensor, u: tf.Tensor) => tf.sum(tf.mul(matMul2d(a, v, u), c)))([x, w, b]);
  const stock = tf.grads((a: tf.Tensor, v: tf.Tensor, u: tf.Tensor) =>
    tf.sum(tf.mul(tf.add(tf.matMul(a as tf.Tensor2D, v as tf.Tensor2D), u), c)),
  )([x, w, b]);
  for (let j = 0; j < 3; j++) {
    const d = tf.max(tf.abs(tf.sub(ours[j]!, stock[j]!))).dataSync()[0]!;
    assert.ok(d < 1e-5, `gradient ${j} differs by ${d}`);
  }
});
