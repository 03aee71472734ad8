import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QConv1D, QConv2D } from '../src/layers/conv.ts';
import {
  QMaxPooling2D,
  QAveragePooling1D,
  QAveragePooling2D,
  QGlobalAveragePooling2D,
  QGlobalMaxPooling1D,
  QMaxPooling1D,
} from '../src/layers/pooling.ts';
import { quantize } from '../src/fixed/quantize.ts';
import type { QLayer } from '../src/layers/base.ts';
import { makeRng, type Rng } from './util/rng.ts';
import { kifAt, setVar } from './util/tf.ts';

await initBackend();

/** The input quantized per element with src/fixed, from the layer's exported types. */
function refQuantInput(l: QLayer, x: Float32Array, perSample: number): Float64Array {
  const q = l.exportQuantized().inputQuantizers[0]!;
  return Float64Array.from(x, (v, j) => quantize(v, kifAt(q, j % perSample), q.round, q.overflow));
}
function randomizeInputQ(rng: Rng, l: tf.layers.Layer) {
  setVar(l, 'iq_f', () => rng.int(0, 3));
  setVar(l, 'iq_i', () => rng.int(-1, 2));
  setVar(l, 'iq_k', () => rng.int(0, 1));
}

test('QConv2D (same/valid, strides) inference equals a direct fixed-point convolution bit for bit', () => {
  const rng = makeRng(21);
  for (const [H, W, kh, kw, sh, sw, pad] of [
    [6, 5, 3, 3, 1, 1, 'same'],
    [7, 6, 3, 2, 2, 2, 'valid'],
    [5, 5, 2, 2, 2, 1, 'same'],
  ] as const) {
    const C = 2,
      F = 3,
      N = 3;
    const m = tf.sequential();
    const l = new QConv2D({
      filters: F,
      kernelSize: [kh, kw],
      strides: [sh, sw],
      padding: pad,
      activation: 'relu',
      inputShape: [H, W, C],
    });
    m.add(l);
    setVar(l, 'kernel', () => (rng.next() - 0.5) * 2);
    setVar(l, 'bias', () => rng.next() - 0.5);
    setVar(l, 'kq_b', () => rng.int(0, 4));
    randomizeInputQ(rng, l);
    const xs = Float32Array.from({ length: N * H * W * C }, () => (rng.next() - 0.5) * 10);
    const y = m.predict(tf.tensor4d(xs, [N, H, W, C])) as tf.Tensor;
    const yd = y.dataSync();
    const ex = l.exportQuantized();
    const K = (ex['kernel'] as { values: Float64Array }).values,
      Bv = (ex['bias'] as { values: Float64Array }).values;
    const pads = ex['pads'] as number[][];
    const xq = refQuantInput(l, xs, H * W * C);
    const [OH, OW] = [y.shape[1]!, y.shape[2]!];
    for (let n = 0; n < N; n++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++)
          for (let f = 0; f < F; f++) {
            let acc = Bv[f]!;
            for (let a = 0; a < kh; a++)
              for (let b = 0; b < kw; b++)
                for (let c = 0; c < C; c++) {
                  const r = oh * sh + a - pads[0]![0]!,
                    s = ow * sw + b - pads[1]![0]!;
                  if (r < 0 || r >= H || s < 0 || s >= W) continue;
                  acc += xq[((n * H + r) * W + s) * C + c]! * K[((a * kw + b) * C + c) * F + f]!;
                }
            assert.equal(yd[((n * OH + oh) * OW + ow) * F + f], Math.max(acc, 0));
          }
  }
});

test('QConv1D EBOPs equal a hand computation (positions × Σ bits products + bias)', () => {
  const m = tf.sequential();
  const l = new QConv1D({ filters: 1, kernelSize: 2, inputShape: [3, 1] });
  m.add(l);
  // input bits per step [2, 3, 1] (KIF: i+f), kernel bits [4, 5], bias bits [6]
  setVar(l, 'iq_i', (j) => [0, 1, 0][j]!);
  setVar(l, 'iq_f', (j) => [2, 2, 1][j]!);
  setVar(l, 'kq_b', (j) => [4, 5][j]!);
  setVar(l, 'bq_b', () => 6);
  // valid: 2 outputs; out0 = 2·4 + 3·5 = 23, out1 = 3·4 + 1·5 = 17; bias 6 · 2 positions
  assert.equal(l.hgqEbops(), 23 + 17 + 12);
});

test('QConv2D trains on wasm (no Conv2DBackpropFilter needed) and the loss falls', async () => {
  const rng = makeRng(3);
  const m = tf.sequential();
  m.add(new QConv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', inputShape: [6, 6, 1] }));
  m.add(new QMaxPooling2D({ poolSize: 2 }));
  m.add(new QGlobalAveragePooling2D({}));
  m.compile({ optimizer: tf.train.adam(0.03), loss: 'meanSquaredError' });
  const x = tf.tensor4d(
    Float32Array.from({ length: 32 * 36 }, () => rng.next()),
    [32, 6, 6, 1],
  );
  const y = tf.tidy(() => tf.tile(tf.mean(x, [1, 2]), [1, 4]));
  const h = await m.fit(x, y, { epochs: 12, batchSize: 32, verbose: 0 });
  const loss = h.history['loss'] as number[];
  assert.ok(loss[loss.length - 1]! < loss[0]! * 0.7, `loss ${loss[0]} → ${loss[loss.length - 1]}`);
});

test('pooling inference equals reference: max (negative windows too), average with power-of-two divisor', () => {
  const rng = makeRng(8);
  const H = 4,
    W = 6,
    C = 2,
    N = 2;
  const xs = Float32Array.from({ length: N * H * W * C }, () => (rng.next() - 0.8) * 6); // mostly negative
  for (const Cls of [QMaxPooling2D, QAveragePooling2D]) {
    const m = tf.sequential();
    const l = new Cls({ poolSize: 2, inputShape: [H, W, C] });
    m.add(l);
    randomizeInputQ(rng, l);
    const y = (m.predict(tf.tensor4d(xs, [N, H, W, C])) as tf.Tensor).dataSync();
    const xq = refQuantInput(l, xs, H * W * C);
    for (let n = 0; n < N; n++)
      for (let r = 0; r < H / 2; r++)
        for (let s = 0; s < W / 2; s++)
          for (let c = 0; c < C; c++) {
            const vals = [0, 1].flatMap((a) => [0, 1].map((b) => xq[((n * H + 2 * r + a) * W + 2 * s + b) * C + c]!));
            const want = Cls === QMaxPooling2D ? Math.max(...vals) : vals.reduce((p, q) => p + q, 0) / 4;
            assert.equal(y[((((n * H) / 2 + r) * W) / 2 + s) * C + c], want);
          }
    assert.equal(l.exportQuantized()['exactDivisor'], true);
    // EBOPs: Σ input bits (every input element is read once)
    const q = l.exportQuantized().inputQuantizers[0]!;
    let bits = 0;
    for (let j = 0; j < q.k.length; j++) bits += Math.max(q.i[j]! + q.f[j]!, 0);
    assert.equal(l.hgqEbops(), bits);
  }
});

test('pooling gradient is right where every window max is negative (wasm MaxPool grad is not)', () => {
  const l = new QMaxPooling1D({ poolSize: 2, inputShape: [4, 1], enableIq: false });
  const m = tf.sequential();
  m.add(l);
  const x = tf.tensor3d([[[-3], [-1], [-2], [-5]]]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(m.apply(t) as tf.Tensor))(x);
  assert.deepEqual(Array.from(g.dataSync()), [0, 1, 1, 0]);
});

test('average pooling with partial windows divides by the real count and says it is not exact', () => {
  const m = tf.sequential();
  const l = new QAveragePooling1D({ poolSize: 3, strides: 2, padding: 'same', inputShape: [5, 1], enableIq: false });
  m.add(l);
  const y = (m.predict(tf.tensor3d([[[1], [2], [3], [4], [5]]])) as tf.Tensor).dataSync();
  // TF 'same': out 3, pad 1 before 1 after → windows {1,2}, {2,3,4}, {4,5}
  assert.deepEqual(Array.from(y), [1.5, 3, 4.5]);
  assert.equal(l.exportQuantized()['exactDivisor'], false);
  const g = new QGlobalMaxPooling1D({ inputShape: [5, 1] });
  assert.throws(
    () => new QConv2D({ filters: 2, kernelSize: [3], name: 'c9' }),
    /QConv2D 'c9': kernelSize must be a positive integer or 2/,
  );
  assert.throws(() => {
    const s = tf.sequential();
    s.add(new QConv2D({ filters: 2, kernelSize: 5, inputShape: [3, 3, 1], name: 'c10' }));
  }, /QConv2D 'c10': window 5 is larger than the input/);
  void g;
});
