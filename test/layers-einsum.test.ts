import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, useBackend } from '../src/backend.ts';
import { type EinsumMatmulView, QEinsumDense, QEinsumDenseBatchnorm, parseEinsumEquation } from '../src/layers/einsum.ts';
import type { ConstExport } from '../src/layers/base.ts';
import { quantize } from '../src/fixed/quantize.ts';
import { einsum, parseEinsum, broadcastTo } from '../src/import/nd.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng, type Rng } from './util/rng.ts';
import { getVar, kifAt, setVar } from './util/tf.ts';

await initBackend();

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Small random bit widths (so float32 sums are exact) and random weights. */
function randomize(l: QEinsumDense, rng: Rng) {
  setVar(l, 'kernel', () => (rng.next() - 0.5) * 3);
  setVar(l, 'kq_b', () => rng.int(0, 4) + (rng.next() - 0.5) * 0.8);
  setVar(l, 'kq_i', () => rng.int(-1, 1));
  if (l.bias) {
    setVar(l, 'bias', () => (rng.next() - 0.5) * 2);
    setVar(l, 'bq_b', () => rng.int(0, 5));
    setVar(l, 'bq_i', () => rng.int(-1, 1));
  }
  setVar(l, 'iq_f', () => rng.int(-1, 3));
  setVar(l, 'iq_i', () => rng.int(-1, 2));
  setVar(l, 'iq_k', () => rng.int(0, 1));
}

function model1(l: tf.layers.Layer, inShape: number[]) {
  const x = tf.input({ shape: inShape });
  return tf.model({ inputs: x, outputs: l.apply(x) as tf.SymbolicTensor });
}

/** Reference inference from the export: src/fixed on the input, float64 einsum, bias broadcast, activation. */
function reference(l: QEinsumDense, xs: Float64Array, n: number): Float64Array {
  const ex = l.exportQuantized();
  const iq = ex.inputQuantizers[0]!;
  const per = prod(iq.shape);
  const xq = xs.map((v, j) => quantize(v, kifAt(iq, j % per), iq.round, iq.overflow));
  const K = ex['kernel'] as ConstExport;
  const plan = parseEinsumEquation(l.equation);
  const y = einsum(parseEinsum(`${plan.inSpec},${plan.kerSpec}->${plan.outSpec}`), xq, [n, ...iq.shape], K.values, K.shape);
  const B = ex['bias'] as ConstExport | null;
  if (B) {
    const b = broadcastTo(B.values, B.shape, y.shape);
    for (let j = 0; j < y.data.length; j++) y.data[j] += b[j]!;
  }
  return ex['activation'] === 'relu' ? y.data.map((v) => (v > 0 ? v : 0)) : y.data;
}

const CASES: {
  equation: string;
  inShape: number[];
  outputShape: number[];
  biasAxes: string | null;
  activation: 'relu' | 'linear';
}[] = [
  { equation: 'bc,cC->bC', inShape: [7], outputShape: [5], biasAxes: 'C', activation: 'relu' },
  { equation: 'bnc,cC->bnC', inShape: [3, 4], outputShape: [3, 5], biasAxes: 'C', activation: 'linear' },
  { equation: 'bnc,ncD->bnD', inShape: [3, 4], outputShape: [3, 2], biasAxes: 'nD', activation: 'relu' }, // grouped: a kernel per n
  { equation: 'bnc,cD->bDn', inShape: [3, 4], outputShape: [2, 3], biasAxes: null, activation: 'linear' }, // transposed output
  { equation: 'bnc,ncD->bD', inShape: [3, 4], outputShape: [6], biasAxes: 'D', activation: 'linear' }, // two contracted axes
];

test('QEinsumDense inference equals the fixed-point reference bit for bit (several equations, wrap-around, zero widths)', () => {
  const rng = makeRng(11);
  for (const c of CASES) {
    const l = new QEinsumDense({
      equation: c.equation,
      outputShape: c.outputShape,
      biasAxes: c.biasAxes,
      activation: c.activation,
    });
    const m = model1(l, c.inShape);
    randomize(l, rng);
    const n = 200;
    const xs = Float64Array.from({ length: n * prod(c.inShape) }, () => Math.fround((rng.next() - 0.5) * 20));
    xs[0] = 0;
    xs[1] = 0.5;
    xs[2] = -0.25;
    const y = m.predict(tf.tensor(Float32Array.from(xs), [n, ...c.inShape])) as tf.Tensor;
    assert.deepEqual(y.shape, [n, ...c.outputShape], c.equation);
    const got = y.dataSync();
    const want = reference(l, xs, n);
    for (let j = 0; j < want.length; j++)
      if (got[j] !== want[j]) assert.fail(`${c.equation}: element ${j}: ${got[j]} vs reference ${want[j]}`);
    // the exported kernel is the raw kernel quantized by src/fixed with the exported types
    const ex = l.exportQuantized();
    const K = ex['kernel'] as ConstExport;
    const raw = l.kernel.read().dataSync();
    for (let j = 0; j < raw.length; j++)
      assert.equal(K.values[j], quantize(raw[j]!, kifAt(K.quant, j), K.quant.round, K.quant.overflow));
    // the dense view exported for the tracer reproduces the forward pass (equations without grouped letters)
    const mv = ex['matmul'] as EinsumMatmulView | null;
    if (parseEinsumEquation(c.equation).G.length) assert.equal(mv, null);
    else {
      const iq = ex.inputQuantizers[0]!;
      const per = prod(c.inShape),
        outPer = prod(c.outputShape);
      for (let s = 0; s < 5; s++) {
        const xq = Array.from({ length: per }, (_, e) => quantize(xs[s * per + e]!, kifAt(iq, e), iq.round, iq.overflow));
        const out = new Float64Array(outPer);
        for (let p = 0; p < mv!.positions; p++) {
          for (let u = 0; u < mv!.units; u++) {
            const o = mv!.outputIndex[p * mv!.units + u]!;
            let acc = mv!.bias ? mv!.bias.values[o]! : 0;
            for (let k = 0; k < mv!.nIn; k++)
              acc += xq[mv!.inputIndex[p * mv!.nIn + k]!]! * mv!.kernel.values[k * mv!.units + u]!;
            out[o] = c.activation === 'relu' ? Math.max(acc, 0) : acc;
          }
        }
        for (let o = 0; o < outPer; o++)
          assert.equal(out[o], got[s * outPer + o], `${c.equation}: matmul view, sample ${s}, element ${o}`);
      }
    }
  }
});

test('QEinsumDense EBOPs equal a hand computation (HGQ2: einsum of bit maps + mean(bias bits)·output size)', () => {
  const rng = makeRng(12);
  for (const c of CASES) {
    const l = new QEinsumDense({ equation: c.equation, outputShape: c.outputShape, biasAxes: c.biasAxes });
    model1(l, c.inShape);
    randomize(l, rng);
    const plan = parseEinsumEquation(c.equation);
    // bits without the sign (WRAP input, SAT_SYM weights): KIF relu(i+f), KBI round(b)
    const iI = getVar(l, 'iq_i'),
      iF = getVar(l, 'iq_f');
    const bitsIn = Array.from(iI, (v, j) => Math.max(0, Math.round(v) + Math.round(iF[j]!)));
    const bitsK = Array.from(getVar(l, 'kq_b'), (v) => Math.max(0, Math.round(v)));
    let hand = einsum(parseEinsum(`${plan.inSpec},${plan.kerSpec}->`), bitsIn, [1, ...c.inShape], bitsK, l.kernelShape).data[0]!;
    if (c.biasAxes) {
      const bb = Array.from(getVar(l, 'bq_b'), (v) => Math.round(v));
      hand += (bb.reduce((a, b) => a + b, 0) / bb.length) * prod(c.outputShape);
    }
    assert.equal(l.hgqEbops(), hand, c.equation);
    assert.ok(hand > 0);
  }
});

test('QEinsumDenseBatchnorm folds moving statistics exactly as HGQ2 (ε = 1e-7, float32, before kq/bq) in inference', () => {
  const rng = makeRng(13);
  for (const c of CASES.filter((x) => x.biasAxes)) {
    const l = new QEinsumDenseBatchnorm({
      equation: c.equation,
      outputShape: c.outputShape,
      biasAxes: c.biasAxes,
      activation: c.activation,
    });
    const m = model1(l, c.inShape);
    randomize(l, rng);
    setVar(l, 'bn_gamma', () => (rng.next() + 0.2) * (rng.chance(0.3) ? -1 : 1));
    setVar(l, 'moving_mean', () => (rng.next() - 0.5) * 4);
    setVar(l, 'moving_variance', () => rng.next() * 3 + (rng.chance(0.2) ? 0 : 0.01));
    // the fold in float32, op by op (HGQ2 get_fused_qkernel_and_qbias; ε = keras.backend.epsilon() = 1e-7), over the normalized axes
    const f32 = Math.fround;
    const gamma = getVar(l, 'bn_gamma'),
      mean = getVar(l, 'moving_mean'),
      vari = getVar(l, 'moving_variance');
    const scaler = Array.from(gamma, (g, j) => f32(g / f32(Math.sqrt(f32(vari[j]! + f32(1e-7))))));
    const plan = parseEinsumEquation(c.equation);
    const norm = [...plan.outSpec].filter((ch) => l.normalizeAxes.includes(ch)).join('');
    const kShape = l.kernelShape;
    const scK = broadcastTo(
      scaler,
      [...plan.kerSpec].map((ch) => (norm.includes(ch) ? l.dims[ch]! : 1)),
      kShape,
    );
    const kernel = l.kernel.read().dataSync();
    const fusedK = Array.from(kernel, (v, j) => f32(v * scK[j]!));
    const bShape = l.biasShape!;
    const offShape = [...plan.outSpec.slice(plan.outSpec.length - bShape.length)].map((ch) =>
      norm.includes(ch) ? l.dims[ch]! : 1,
    );
    const off = broadcastTo(
      Array.from(mean, (mu, j) => f32(-mu * scaler[j]!)),
      offShape,
      bShape,
    );
    const fusedB = Array.from(l.bias!.read().dataSync(), (b, j) => f32(b + off[j]!));
    const ex = l.exportQuantized();
    const K = ex['kernel'] as ConstExport,
      B = ex['bias'] as ConstExport;
    for (let j = 0; j < fusedK.length; j++)
      assert.equal(
        K.values[j],
        quantize(fusedK[j]!, kifAt(K.quant, j), K.quant.round, K.quant.overflow),
        `${c.equation} kernel ${j}`,
      );
    for (let j = 0; j < fusedB.length; j++)
      assert.equal(
        B.values[j],
        quantize(fusedB[j]!, kifAt(B.quant, j), B.quant.round, B.quant.overflow),
        `${c.equation} bias ${j}`,
      );
    // and inference uses exactly those folded, quantized weights
    const n = 100;
    const xs = Float64Array.from({ length: n * prod(c.inShape) }, () => Math.fround((rng.next() - 0.5) * 12));
    const got = (m.predict(tf.tensor(Float32Array.from(xs), [n, ...c.inShape])) as tf.Tensor).dataSync();
    const want = reference(l, xs, n);
    for (let j = 0; j < want.length; j++)
      if (got[j] !== want[j]) assert.fail(`${c.equation}: element ${j}: ${got[j]} vs reference ${want[j]}`);
  }
});

test('QEinsumDenseBatchnorm in training: batch moments of einsum(iq(x), kernel), moving statistics by momentum 0.99; gradients flow on wasm', async () => {
  assert.equal(await useBackend('wasm'), 'wasm');
  const rng = makeRng(14);
  const l = new QEinsumDenseBatchnorm({ equation: 'bnc,cC->bnC', outputShape: [4, 3], biasAxes: 'C', activation: 'relu' });
  const m = model1(l, [4, 5]);
  setVar(l, 'moving_mean', () => 0.5);
  setVar(l, 'moving_variance', () => 2);
  const n = 16;
  const x = tf.tensor(
    Array.from({ length: n * 20 }, () => (rng.next() - 0.5) * 3),
    [n, 4, 5],
  );
  // expected batch moments from the quantized input and the unquantized kernel (axes b, n reduced)
  const xq = tf.tidy(() => l.iqs[0]!.call(x, true));
  const pre = tf.reshape(tf.matMul(tf.reshape(xq, [-1, 5]), l.kernel.read()), [n, 4, 3]); // wasm has no Einsum kernel
  const { mean, variance } = tf.moments(pre, [0, 1]);
  const mu = mean.dataSync(),
    va = variance.dataSync();
  const wts = l.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () =>
      tf.tidy(() => {
        const y = l.apply(x, { training: true }) as tf.Tensor;
        return tf.add(tf.mean(tf.square(tf.sub(y, 1))), l.regularization()) as tf.Scalar;
      }),
    wts,
  );
  assert.ok(Number.isFinite(value.dataSync()[0]!));
  const mm = getVar(l, 'moving_mean'),
    mv = getVar(l, 'moving_variance');
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(mm[c]! - (0.99 * 0.5 + 0.01 * mu[c]!)) < 1e-6, `moving mean ${c}`);
    assert.ok(Math.abs(mv[c]! - (0.99 * 2 + 0.01 * va[c]!)) < 1e-6, `moving variance ${c}`);
  }
  const norm = (name: string) => {
    const g = grads[name];
    assert.ok(g, `no gradient for ${name}`);
    const d = Array.from(g!.dataSync() as Float32Array);
    assert.ok(d.every(Number.isFinite), `${name}: non-finite gradient`);
    return d.reduce((a: number, v: number) => a + Math.abs(v), 0);
  };
  for (const w of ['kernel', 'bias', 'bn_gamma', 'kq_b', 'iq_f'])
    assert.ok(norm(`${l.name}/${w}`) > 0, `gradient of ${w} is zero`);
  // and plain model.fit trains it (loss falls)
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
  const target = tf.onesLike(m.predict(x) as tf.Tensor);
  const h = await m.fit(x, target, { epochs: 15, batchSize: n, verbose: 0 });
  const losses = h.history['loss'] as number[];
  assert.ok(losses.at(-1)! < losses[0]!, `loss did not fall: ${losses[0]} → ${losses.at(-1)}`);
  tf.dispose([x, xq, pre, mean, variance, target, value, ...Object.values(grads)]);
});

test('a grouped equation (batched matmul, a kernel slice per n) trains on wasm', async () => {
  assert.equal(await useBackend('wasm'), 'wasm');
  const rng = makeRng(16);
  const l = new QEinsumDenseBatchnorm({ equation: 'bnc,ncD->bnD', outputShape: [3, 2], biasAxes: 'nD' });
  const m = model1(l, [3, 4]);
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
  const xs = tf.tensor(
    Array.from({ length: 32 * 12 }, () => rng.next() * 2 - 1),
    [32, 3, 4],
  );
  const h = await m.fit(xs, tf.onesLike(m.predict(xs) as tf.Tensor), { epochs: 8, batchSize: 32, verbose: 0 });
  const losses = h.history['loss'] as number[];
  assert.ok(losses.every(Number.isFinite) && losses.at(-1)! < losses[0]!, `loss did not fall: ${losses}`);
});

test('QEinsumDense(Batchnorm) save and load: same config (equation letters kept) and identical predictions', async () => {
  const rng = makeRng(15);
  const dir = mkdtempSync(join(tmpdir(), 'hgq-einsum-'));
  const x = tf.input({ shape: [3, 4] });
  const a = new QEinsumDenseBatchnorm({
    equation: 'bnc,ncD->bnD',
    outputShape: [3, 2],
    biasAxes: 'nD',
    normalizeAxes: 'D',
    activation: 'relu',
    name: 'ebn',
  });
  const b = new QEinsumDense({ equation: 'bnD,nDE->bE', outputShape: [2], biasAxes: 'E', name: 'ed', ebopsScaler: 0.5 });
  const m = tf.model({ inputs: x, outputs: b.apply(a.apply(x)) as tf.SymbolicTensor });
  randomize(a, rng);
  randomize(b, rng);
  setVar(a, 'moving_mean', () => rng.next() - 0.5);
  setVar(a, 'moving_variance', () => rng.next() + 0.5);
  await saveModel(m, dir);
  const m2 = await loadModel(dir);
  const a2 = m2.getLayer('ebn') as QEinsumDenseBatchnorm;
  const b2 = m2.getLayer('ed') as QEinsumDense;
  assert.equal(a2.equation, 'bnc,ncD->bnD');
  assert.equal(a2.biasAxes, 'nD');
  assert.equal(a2.normalizeAxes, 'D');
  assert.equal(b2.equation, 'bnD,nDE->bE');
  assert.equal(b2.ebopsScaler, 0.5);
  const xs = tf.tensor(
    Array.from({ length: 50 * 12 }, () => (rng.next() - 0.5) * 8),
    [50, 3, 4],
  );
  assert.deepEqual([...(m2.predict(xs) as tf.Tensor).dataSync()], [...(m.predict(xs) as tf.Tensor).dataSync()]);
  assert.equal(a2.hgqEbops() + b2.hgqEbops(), a.hgqEbops() + b.hgqEbops());
});

test('unsupported einsum equations and options give errors naming them', () => {
  const bad: [string, RegExp][] = [
    ['...c,cC->...C', /ellipsis/],
    ['bc,cc->b', /repeats a letter/],
    ['bc,cC->Cb', /batch axis/],
    ['bc,bC->bC', /batch letter 'b' cannot appear in the kernel/],
    ['bcd,cC->bC', /summed within the input alone/],
    ['bc,cC,CD->bD', /exactly two operands/],
    ['bc,C->bcC', /no axis is contracted/],
  ];
  for (const [eq, re] of bad) {
    assert.throws(
      () => new QEinsumDense({ equation: eq, outputShape: [4] }),
      (e: Error) => e.message.includes(`'${eq}'`) && re.test(e.message),
      eq,
    );
  }
  assert.throws(
    () => new QEinsumDense({ equation: 'bc,cC->bC', outputShape: [4, 2] }),
    /outputShape \[4,2\] must have 1 entries/,
  );
  assert.throws(() => new QEinsumDense({ equation: 'bc,cC->bC', outputShape: [4], biasAxes: 'x' }), /bias axis 'x'/);
  assert.throws(
    () => new QEinsumDense({ equation: 'bc,cC->bC', outputShape: [4], activation: 'tanh' as 'relu' }),
    /unknown activation 'tanh'/,
  );
  assert.throws(() => new QEinsumDenseBatchnorm({ equation: 'bc,cC->bC', outputShape: [4] }), /biasAxes is required/);
  assert.throws(
    () => new QEinsumDenseBatchnorm({ equation: 'bnc,cC->bnC', outputShape: [3, 4], biasAxes: 'C', normalizeAxes: 'n' }),
    /normalize axis 'n' is not a kernel axis/,
  );
  const l = new QEinsumDense({ equation: 'bnc,cC->bnC', outputShape: [5, 4] });
  assert.throws(() => model1(l, [3, 2]), /outputShape says axis 'n' has size 5, but the input has 3/);
});
