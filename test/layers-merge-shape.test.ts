import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QAdd, QSubtract, QMultiply, QMaximum, QMinimum } from '../src/layers/merge.ts';
import { QFlatten, QReshape, QConcatenate } from '../src/layers/shape.ts';
import { QBatchNormalization } from '../src/layers/batchnorm.ts';
import { QDense } from '../src/layers/dense.ts';
import { quantize } from '../src/fixed/quantize.ts';
import type { QLayer, QuantizerExport } from '../src/layers/base.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng } from './util/rng.ts';
import { kifAt, setVar } from './util/tf.ts';

await initBackend();

const qref = (e: QuantizerExport, xs: ArrayLike<number>, per: number) =>
  Float64Array.from(xs as number[], (v, j) => quantize(v, kifAt(e, j % per), e.round, e.overflow));

test('merge layers: inference equals the fixed-point reference; EBOPs follow HGQ2 formulas by hand', () => {
  const rng = makeRng(4);
  const n = 50,
    d = 6;
  const ref: Record<string, (a: number, b: number) => number> = {
    QAdd: (a, b) => a + b,
    QSubtract: (a, b) => a - b,
    QMultiply: (a, b) => a * b,
    QMaximum: Math.max,
    QMinimum: Math.min,
  };
  for (const Cls of [QAdd, QSubtract, QMultiply, QMaximum, QMinimum]) {
    const a = tf.input({ shape: [d] }),
      b = tf.input({ shape: [d] });
    const l = new Cls({});
    const m = tf.model({ inputs: [a, b], outputs: l.apply([a, b]) as tf.SymbolicTensor });
    setVar(l, 'iq0_f', () => rng.int(0, 3));
    setVar(l, 'iq0_i', () => rng.int(-1, 2));
    setVar(l, 'iq0_k', () => rng.int(0, 1));
    setVar(l, 'iq1_f', () => rng.int(0, 3));
    setVar(l, 'iq1_i', () => rng.int(-1, 2));
    setVar(l, 'iq1_k', () => rng.int(0, 1));
    const xa = Float32Array.from({ length: n * d }, () => (rng.next() - 0.5) * 9);
    const xb = Float32Array.from({ length: n * d }, () => (rng.next() - 0.5) * 9);
    const y = (m.predict([tf.tensor2d(xa, [n, d]), tf.tensor2d(xb, [n, d])]) as tf.Tensor).dataSync();
    const [qa, qb] = l.exportQuantized().inputQuantizers as QuantizerExport[];
    const ra = qref(qa!, xa, d),
      rb = qref(qb!, xb, d);
    for (let j = 0; j < n * d; j++) assert.equal(y[j], ref[Cls.className]!(ra[j]!, rb[j]!), `${Cls.className} ${j}`);
    const ba = Array.from({ length: d }, (_, j) => Math.max(qa!.i[j]! + qa!.f[j]!, 0));
    const bb = Array.from({ length: d }, (_, j) => Math.max(qb!.i[j]! + qb!.f[j]!, 0));
    const sum = (f: (x: number, y: number) => number) => ba.reduce((s, x, j) => s + f(x, bb[j]!), 0);
    const want = {
      QAdd: 0.65 * sum((x, y) => x + y - Math.min(x, y)),
      QSubtract: sum(Math.max),
      QMultiply: sum((x, y) => x * y),
      QMaximum: sum((x, y) => Math.max(x, y)),
      QMinimum: sum((x, y) => Math.max(x, y)),
    }[Cls.className]!;
    assert.ok(Math.abs(l.hgqEbops() - want) < 1e-4, `${Cls.className} ebops ${l.hgqEbops()} vs ${want}`);
  }
  assert.throws(() => {
    const a = tf.input({ shape: [3] }),
      b = tf.input({ shape: [4] });
    new QAdd({ name: 'add9' }).apply([a, b]);
  }, /QAdd 'add9': all inputs must have the same per-sample shape/);
});

test('flatten / reshape / concatenate pass values through exactly and cost no EBOPs', () => {
  const a = tf.input({ shape: [2, 3] }),
    b = tf.input({ shape: [4] });
  const fl = new QFlatten({});
  const cat = new QConcatenate({});
  const rs = new QReshape({ targetShape: [5, -1] });
  const out = rs.apply(cat.apply([fl.apply(a) as tf.SymbolicTensor, b]) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const m = tf.model({ inputs: [a, b], outputs: out });
  const xa = tf.tensor3d([
      [
        [1.5, -2, 3],
        [4, 5, 6.25],
      ],
    ]),
    xb = tf.tensor2d([[7, 8, 9, 10]]);
  const y = m.predict([xa, xb]) as tf.Tensor;
  assert.deepEqual(y.shape, [1, 5, 2]);
  assert.deepEqual(Array.from(y.dataSync()), [1.5, -2, 3, 4, 5, 6.25, 7, 8, 9, 10]);
  for (const l of [fl, cat, rs]) assert.equal((l as QLayer).hgqEbops(), 0);
  assert.throws(() => new QReshape({ targetShape: [-1, -1], name: 'r1' }), /QReshape 'r1': targetShape/);
});

test('QBatchNormalization: inference = x·q(scale) + q(offset) exactly; trains; save/load identical', async () => {
  const rng = makeRng(12);
  const m = tf.sequential();
  const bn = new QBatchNormalization({ inputShape: [5], momentum: 0.5 });
  m.add(bn);
  m.add(new QDense({ units: 2 }));
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
  const x = tf.tensor2d(
    Float32Array.from({ length: 40 * 5 }, () => rng.next() * 6 + 1),
    [40, 5],
  );
  await m.fit(x, tf.zeros([40, 2]), { epochs: 2, batchSize: 20, verbose: 0 });
  const mm = Array.from(bn.movingMean.read().dataSync());
  assert.ok(
    mm.every((v) => v > 1),
    `moving mean follows the data: ${mm}`,
  );
  const probe = tf.sequential();
  probe.add(bn);
  const xs = x.dataSync();
  const y = (probe.predict(x) as tf.Tensor).dataSync();
  const ex = bn.exportQuantized();
  const S = (ex['scale'] as { values: Float64Array }).values,
    O = (ex['offset'] as { values: Float64Array }).values;
  const xq = qref(ex.inputQuantizers[0]!, xs, 5);
  for (let j = 0; j < 40 * 5; j++) assert.equal(y[j], xq[j]! * S[j % 5]! + O[j % 5]!, `element ${j}`);
  const dir = join(mkdtempSync(join(tmpdir(), 'bn-')), 'm');
  await saveModel(m, dir);
  const m2 = await loadModel(dir);
  assert.deepEqual((m2.predict(x) as tf.Tensor).dataSync(), (m.predict(x) as tf.Tensor).dataSync());
});
