import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, useBackend } from '../src/backend.ts';
import { QSum } from '../src/layers/sum.ts';
import { GetItem } from '../src/layers/getitem.ts';
import { QDense } from '../src/layers/dense.ts';
import { quantize } from '../src/fixed/quantize.ts';
import type { Kif } from '../src/fixed/types.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng } from './util/rng.ts';
import { getVar, setVar } from './util/tf.ts';

await initBackend();

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function model1(l: tf.layers.Layer, inShape: number[]) {
  const x = tf.input({ shape: inShape });
  return tf.model({ inputs: x, outputs: l.apply(x) as tf.SymbolicTensor });
}

/** Row-major multi-index helpers. */
function unravel(j: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a] = j % shape[a]!;
    j = Math.floor(j / shape[a]!);
  }
  return idx;
}
const ravel = (idx: number[], shape: number[]) => idx.reduce((o, v, a) => o * shape[a]! + v, 0);

test('QSum: sum(iq(x), axes)·scale equals the fixed-point reference bit for bit (keepdims on/off, several axes)', () => {
  const rng = makeRng(21);
  const cases = [
    { inShape: [6, 4], axes: [1], scale: 0.125, keepdims: true },
    { inShape: [6, 4], axes: -1, scale: 1, keepdims: false },
    { inShape: [3, 4, 5], axes: [1, -1], scale: 4, keepdims: false },
  ];
  for (const c of cases) {
    const l = new QSum({ axes: c.axes, scale: c.scale, keepdims: c.keepdims });
    const m = model1(l, c.inShape);
    setVar(l, 'iq_f', () => rng.int(-1, 4));
    setVar(l, 'iq_i', () => rng.int(-2, 3));
    setVar(l, 'iq_k', () => rng.int(0, 1));
    const n = 100;
    const per = prod(c.inShape);
    const xs = Array.from({ length: n * per }, () => Math.fround((rng.next() - 0.5) * 30)); // wraps too
    const got = m.predict(tf.tensor(xs, [n, ...c.inShape])) as tf.Tensor;
    const ex = l.exportQuantized();
    const iq = ex.inputQuantizers[0]!;
    const axes = ex['axes'] as number[];
    assert.deepEqual(got.shape.slice(1), ex.outputShape);
    const full = c.inShape.map((d, a) => (axes.includes(a) ? 1 : d)); // keepdims layout
    const want = new Float64Array(n * prod(full));
    for (let j = 0; j < n * per; j++) {
      const e = j % per;
      const t: Kif = { k: iq.k[e] as 0 | 1, i: iq.i[e]!, f: iq.f[e]! };
      const idx = unravel(e, c.inShape).map((v, a) => (axes.includes(a) ? 0 : v));
      want[Math.floor(j / per) * prod(full) + ravel(idx, full)] += quantize(xs[j]!, t, iq.round, iq.overflow);
    }
    const g = got.dataSync();
    for (let j = 0; j < want.length; j++) assert.equal(g[j], want[j]! * c.scale, `axes ${JSON.stringify(c.axes)} element ${j}`);
  }
});

test('QSum EBOPs equal 0.65·(Σ bits − Σ min over the summed axes)', () => {
  const rng = makeRng(22);
  const l = new QSum({ axes: [1], iqConf: { homogeneousAxes: [0] } });
  model1(l, [5, 3]);
  setVar(l, 'iq_f', () => rng.int(-1, 5));
  setVar(l, 'iq_i', () => rng.int(-1, 4));
  const i = getVar(l, 'iq_i'),
    f = getVar(l, 'iq_f');
  const bits = Array.from(i, (v, j) => Math.max(0, v + f[j]!)); // [5, 3] row-major
  let tot = 0,
    mins = 0;
  for (let c = 0; c < 3; c++) {
    let mn = Infinity;
    for (let p = 0; p < 5; p++) {
      tot += bits[p * 3 + c]!;
      mn = Math.min(mn, bits[p * 3 + c]!);
    }
    mins += mn;
  }
  assert.ok(Math.abs(l.hgqEbops() - 0.65 * (tot - mins)) < 1e-3, `${l.hgqEbops()} vs ${0.65 * (tot - mins)}`);
  assert.ok(tot - mins > 0);
});

test('GetItem slices exactly like Python/Keras indexing (start/stop/step, negative bounds, integer index)', () => {
  const rng = makeRng(23);
  const inShape = [7, 5];
  const keys: { key: unknown[]; pick: (r: number, c: number) => boolean; shape: number[] }[] = [
    { key: [null, { start: null, stop: 3, step: null }], pick: (r) => r < 3, shape: [3, 5] },
    {
      key: [null, { class_name: '__slice__', config: { start: 4, stop: null, step: null } }],
      pick: (r) => r >= 4,
      shape: [3, 5],
    },
    {
      key: [null, { start: 1, stop: -1, step: 2 }, { start: -3 }],
      pick: (r, c) => r >= 1 && r < 6 && (r - 1) % 2 === 0 && c >= 2,
      shape: [3, 3],
    },
    { key: [null, { step: 3 }, 2], pick: (r, c) => r % 3 === 0 && c === 2, shape: [3] },
    { key: [null, -1], pick: (r) => r === 6, shape: [5] },
  ];
  for (const k of keys) {
    const l = new GetItem({ key: k.key as never });
    const m = model1(l, inShape);
    const n = 4;
    const xs = Array.from({ length: n * 35 }, () => rng.next());
    const got = m.predict(tf.tensor(xs, [n, ...inShape])) as tf.Tensor;
    assert.deepEqual(got.shape.slice(1), k.shape, JSON.stringify(k.key));
    const want: number[] = [];
    for (let s = 0; s < n; s++)
      for (let r = 0; r < 7; r++) for (let c = 0; c < 5; c++) if (k.pick(r, c)) want.push(xs[s * 35 + r * 5 + c]!);
    assert.deepEqual([...got.dataSync()], want.map(Math.fround), JSON.stringify(k.key));
    // the exported index map (for the tracer) is the same selection
    const idx = l.exportQuantized()['indices'] as Int32Array;
    assert.deepEqual(
      [...idx].map((j) => Math.fround(xs[j]!)),
      want.slice(0, idx.length).map(Math.fround),
    );
    assert.equal(l.hgqEbops(), 0);
  }
});

test('QSum and GetItem pass gradients on wasm and train inside a model', async () => {
  assert.equal(await useBackend('wasm'), 'wasm');
  const rng = makeRng(24);
  const x = tf.input({ shape: [8, 3] });
  const d = new QDense({ units: 4 });
  const g = new GetItem({ key: [null, { start: 1, step: 2 }] });
  const s = new QSum({ axes: [1], scale: 0.25 });
  const m = tf.model({ inputs: x, outputs: s.apply(g.apply(d.apply(x))) as tf.SymbolicTensor });
  const xs = tf.tensor(
    Array.from({ length: 32 * 24 }, () => rng.next() - 0.5),
    [32, 8, 3],
  );
  const ys = tf.tensor(
    Array.from({ length: 32 * 4 }, () => rng.next()),
    [32, 4],
  );
  const wts = [d.kernel.read() as tf.Variable, ...s.trainableWeights.map((w) => w.read() as tf.Variable)];
  const { grads } = tf.variableGrads(
    () => tf.tidy(() => tf.mean(tf.square(tf.sub(m.apply(xs, { training: true }) as tf.Tensor, ys))) as tf.Scalar),
    wts,
  );
  const k = grads[d.kernel.originalName]!.dataSync();
  assert.ok(k.some((v) => v !== 0) && k.every(Number.isFinite), 'kernel gradient through GetItem and QSum');
  const f = grads[`${s.name}/iq_f`]!.dataSync();
  assert.ok(
    f.some((v) => v !== 0),
    "QSum's input quantizer f gets a gradient",
  );
  m.compile({ optimizer: tf.train.adam(0.02), loss: 'meanSquaredError' });
  const h = await m.fit(xs, ys, { epochs: 10, batchSize: 32, verbose: 0 });
  const losses = h.history['loss'] as number[];
  assert.ok(losses.at(-1)! < losses[0]!, `loss did not fall: ${losses[0]} → ${losses.at(-1)}`);
});

test('QSum and GetItem save and load with identical predictions', async () => {
  const rng = makeRng(25);
  const dir = mkdtempSync(join(tmpdir(), 'hgq-sum-getitem-'));
  const x = tf.input({ shape: [6, 4] });
  const g = new GetItem({ key: [null, { start: -5, stop: null, step: 2 }, { stop: 3 }], name: 'gi' });
  const s = new QSum({ axes: -2, scale: 0.5, keepdims: true, name: 'qs' });
  const m = tf.model({ inputs: x, outputs: s.apply(g.apply(x)) as tf.SymbolicTensor });
  setVar(s, 'iq_f', () => rng.int(0, 4));
  await saveModel(m, dir);
  const m2 = await loadModel(dir);
  assert.deepEqual((m2.getLayer('gi') as GetItem).key, g.key);
  assert.deepEqual((m2.getLayer('qs') as QSum).axes, [-2]);
  const xs = tf.tensor(
    Array.from({ length: 20 * 24 }, () => (rng.next() - 0.5) * 10),
    [20, 6, 4],
  );
  assert.deepEqual([...(m2.predict(xs) as tf.Tensor).dataSync()], [...(m.predict(xs) as tf.Tensor).dataSync()]);
});

test('QSum and GetItem reject bad options with clear errors', () => {
  assert.throws(() => new QSum({ scale: 0.3 }), /scale must be a power of two/);
  assert.throws(() => model1(new QSum({ axes: 0 }), [3]), /cannot sum over the batch axis/);
  assert.throws(() => model1(new QSum({ axes: 3 }), [3]), /axis 3 is out of range/);
  assert.throws(() => new GetItem({ key: [{ start: 1 }] }), /batch axis must be taken whole/);
  assert.throws(() => new GetItem({ key: [null, { step: -1 }] }), /step -1 is not supported/);
  assert.throws(
    () => new GetItem({ key: [null, { class_name: '__ellipsis__', config: {} } as never] }),
    /__ellipsis__ is not supported/,
  );
  assert.throws(() => model1(new GetItem({ key: [null, 9] }), [4]), /index 9 is out of range for axis 1 of size 4/);
  assert.throws(() => model1(new GetItem({ key: [null, null, 0] }), [4]), /3 entries for an input of rank 2/);
  assert.throws(() => model1(new GetItem({ key: [null, { start: 3, stop: 1 }] }), [4]), /selects no elements/);
});
