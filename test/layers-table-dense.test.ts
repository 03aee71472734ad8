/**
 * QDenseT / QConvT1D / QConvT2D (HGQ-LUT): inference equals the sum of the exported per-edge tables looked up
 * on the quantized inputs, bit for bit (dense, batch norm, conv with strides and 'same' padding, inputs far
 * outside the WRAP range); EBOPs follow HGQ2's formula by hand; the layers train (task loss and EBOPs fall),
 * survive save/load, and bad options name the layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDenseT, QConvT1D, QConvT2D, type TableLayerExport } from '../src/layers/table-dense.ts';
import type { TableExport } from '../src/layers/table.ts';
import type { QuantizerExport } from '../src/layers/base.ts';
import { quantize } from '../src/fixed/quantize.ts';
import type { Kif } from '../src/fixed/types.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng } from './util/rng.ts';

await initBackend();

const kifAt = (e: QuantizerExport, j: number): Kif => ({
  k: e.k[j] as 0 | 1,
  i: e.i[j]!,
  f: e.f[j]!,
});
function lookup(t: TableExport, x: number): number {
  const idx = (x - t.min) / t.step;
  assert.ok(Number.isInteger(idx) && idx >= 0 && idx < t.values.length, `index ${idx} for ${x}`);
  return t.values[idx]!;
}

/** The layer as hardware computes it from its export: Σ_i table_(p,i,o)(quantize(x[inputIndex])), then the activation. */
function tableForward(
  ex: TableLayerExport & { inputQuantizers: (QuantizerExport | null)[] },
  x: Float32Array,
  perSample: number,
): Float64Array {
  const P = ex.positions.reduce((a, d) => a * d, 1);
  const { nIn, nOut } = ex;
  const iq = ex.inputQuantizers[0]!;
  const n = x.length / perSample;
  const out = new Float64Array(n * P * nOut);
  for (let s = 0; s < n; s++) {
    for (let p = 0; p < P; p++) {
      for (let o = 0; o < nOut; o++) {
        let acc = 0;
        for (let i = 0; i < nIn; i++) {
          const e = (p * nIn + i) * nOut + o;
          const src = ex.inputIndex[p * nIn + i]!;
          const raw = src < 0 ? 0 : x[s * perSample + src]!;
          const t = ex.edgeTable[e]!;
          if (t >= 0) acc += lookup(ex.tables[t]!, quantize(raw, kifAt(iq, e), iq.round, iq.overflow));
        }
        out[(s * P + p) * nOut + o] = ex.activation === 'relu' ? Math.max(acc, 0) : acc;
      }
    }
  }
  return out;
}

function randomInputs(n: number, per: number, seed: number, scale: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n * per }, () => {
    let v = (rng.next() - 0.5) * 2 * scale;
    if (rng.chance(0.1)) v *= 4; // beyond the calibrated range: WRAP
    return v;
  });
}

function checkTables(layer: QDenseT, inShape: number[], seed: number): void {
  const m = tf.sequential({ layers: [layer] });
  const per = inShape.reduce((a, d) => a * d, 1);
  const n = 300;
  const cal = randomInputs(n, per, seed, 2);
  calibrate(m, tf.tensor(cal, [n, ...inShape]), { reset: true });
  // perturb weights and batch norm so tables are not trivial
  const rng = makeRng(seed + 1);
  for (const w of layer.trainableWeights) {
    if (!/kernel|bias|bn_/.test(w.name)) continue;
    const v = w.read();
    w.write(tf.add(v, tf.mul(tf.randomUniform(v.shape, -0.5, 0.5, 'float32', rng.int(0, 1 << 30)), 2)));
  }
  const xs = randomInputs(n, per, seed + 2, 2);
  const y = (m.predict(tf.tensor(xs, [n, ...inShape])) as tf.Tensor).dataSync();
  const ex = layer.exportQuantized() as unknown as TableLayerExport & {
    inputQuantizers: (QuantizerExport | null)[];
  };
  assert.equal(ex.op, 'table_sum');
  const want = tableForward(ex, xs, per);
  assert.equal(y.length, want.length);
  let bad = 0;
  for (let j = 0; j < y.length; j++) if (y[j] !== want[j]) bad++;
  assert.equal(bad, 0, `${layer.name}: ${bad} of ${y.length} outputs differ from the table sum`);
  assert.ok(
    ex.tables.length > 0 &&
      ex.tables.every((t) => t.values.length === 2 ** Math.max(0, t.input.k + t.input.i + t.input.f) || t.values.length === 1),
  );
}

test('QDenseT inference equals the exported per-edge tables summed (tanh, 2 hidden layers relu, batch norm + relu)', () => {
  checkTables(
    new QDenseT({
      nOut: 3,
      inputShape: [5],
      iqConf: { i0: 2, f0: 3 },
      toqConf: { homogeneousAxes: [0], b0: 6, i0: 1 },
    }),
    [5],
    1,
  );
  checkTables(
    new QDenseT({
      nOut: 4,
      nHl: 2,
      dHl: 3,
      subnnActivation: 'relu',
      inputShape: [3],
      iqConf: { i0: 2, f0: 2 },
      toqConf: { b0: 5, i0: 2 },
    }),
    [3],
    2,
  );
  checkTables(
    new QDenseT({
      nOut: 2,
      batchNorm: true,
      activation: 'relu',
      inputShape: [6],
      iqConf: { i0: 2, f0: 2 },
      toqConf: { homogeneousAxes: [0], b0: 5, i0: 0 },
    }),
    [6],
    3,
  );
});

test('QConvT1D / QConvT2D inference equals the tables over im2col patches (strides, same padding)', () => {
  checkTables(
    new QConvT1D({
      filters: 2,
      kernelSize: 3,
      inputShape: [7, 2],
      iqConf: { i0: 2, f0: 2 },
      toqConf: { homogeneousAxes: [0], b0: 5, i0: 1 },
    }),
    [7, 2],
    4,
  );
  checkTables(
    new QConvT1D({
      filters: 2,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      inputShape: [6, 1],
      iqConf: { i0: 2, f0: 2 },
    }),
    [6, 1],
    5,
  );
  checkTables(
    new QConvT2D({
      filters: 2,
      kernelSize: [2, 3],
      strides: [2, 1],
      padding: 'same',
      inputShape: [5, 4, 2],
      iqConf: { i0: 2, f0: 1 },
      toqConf: { homogeneousAxes: [0], b0: 4, i0: 1 },
    }),
    [5, 4, 2],
    6,
  );
});

test('QDenseT EBOPs follow HGQ2 by hand (fbits incl. sign, table_idxs, parallelization)', () => {
  // iq: k=1, i=2, f=2 → fbits 5; toq: k=1, b=4 → fbits 5. (B, b) = (6, 5): small = 2^0 = 1 per edge,
  // per edge 1·5·2^(5−6) + 5 = 7.5
  const l = new QDenseT({
    nOut: 3,
    inputShape: [4],
    iqConf: { i0: 2, f0: 2 },
    toqConf: { b0: 4, i0: 1 },
  });
  tf.sequential({ layers: [l] });
  assert.equal(l.hgqEbops(), 12 * 7.5);
  // fbits 3 < b = 4: small = 3/4; (6, 4) → per edge 0.75·5·2^(−2) + 5
  const l2 = new QDenseT({
    nOut: 1,
    inputShape: [2],
    tableIdxs: [6, 4],
    iqConf: { i0: 1, f0: 1 },
    toqConf: { b0: 4 },
  });
  tf.sequential({ layers: [l2] });
  assert.equal(l2.hgqEbops(), 2 * (0.75 * 5 * 0.25 + 5));
  // conv with 4 positions, parallelization factor 1: a quarter of the fully parallel cost
  const c = new QConvT1D({
    filters: 1,
    kernelSize: 2,
    inputShape: [5, 1],
    iqConf: { i0: 2, f0: 2 },
    toqConf: { b0: 4 },
  });
  const c1 = new QConvT1D({
    filters: 1,
    kernelSize: 2,
    inputShape: [5, 1],
    parallelizationFactor: 1,
    iqConf: { i0: 2, f0: 2 },
    toqConf: { b0: 4 },
  });
  tf.sequential({ layers: [c] });
  tf.sequential({ layers: [c1] });
  assert.equal(c.hgqEbops(), 4 * 2 * 7.5);
  assert.equal(c1.hgqEbops(), 2 * 7.5);
});

test('QDenseT trains: task loss and EBOPs fall, sub-network and bit widths move; save/load keeps predictions', async () => {
  const rng = makeRng(9);
  const n = 256;
  const xs = Float32Array.from({ length: n * 4 }, () => (rng.next() - 0.5) * 3);
  const ys = Float32Array.from(
    { length: n * 2 },
    (_, j) => Math.sin(xs[Math.floor(j / 2) * 4 + (j % 2)]!) + (0.5 * xs[Math.floor(j / 2) * 4 + 2]! ** 2) / 2,
  );
  const input = tf.input({ shape: [4] });
  const t = new QDenseT({
    nOut: 2,
    batchNorm: true,
    beta0: 1e-4,
    toqConf: { homogeneousAxes: [0] },
  });
  const model = tf.model({
    inputs: input,
    outputs: t.apply(input) as tf.SymbolicTensor,
  });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'meanSquaredError' });
  const x = tf.tensor2d(xs, [n, 4]);
  const y = tf.tensor2d(ys, [n, 2]);
  const mse = () => tf.tidy(() => tf.losses.meanSquaredError(y, model.predict(x) as tf.Tensor).dataSync()[0]!);
  const k0 = t.hiddenKernels[0]!.read().dataSync().slice();
  const loss0 = mse();
  const e0 = t.hgqEbops();
  await model.fit(x, y, { epochs: 30, batchSize: 64, verbose: 0 });
  const loss1 = mse();
  const e1 = t.hgqEbops();
  assert.ok(loss1 < 0.5 * loss0, `task loss ${loss0} → ${loss1}`);
  assert.ok(e1 < e0, `EBOPs ${e0} → ${e1}`);
  assert.ok(
    t.hiddenKernels[0]!.read()
      .dataSync()
      .some((v, j) => v !== k0[j]),
    'sub-network kernels moved',
  );
  assert.notEqual(t.movingMean!.read().dataSync()[0], 0, 'batch norm statistics moved');

  const dir = mkdtempSync(join(tmpdir(), 'qdenset-'));
  await saveModel(model, dir);
  const back = await loadModel(dir);
  const a = (model.predict(x) as tf.Tensor).dataSync();
  const b = (back.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
  const lt = back.layers.find((l) => l instanceof QDenseT) as QDenseT;
  assert.equal(lt.batchNorm, true);
  assert.equal(lt.hgqEbops(), t.hgqEbops());
});

test('QConvT2D survives save/load; bad options name the layer', async () => {
  const input = tf.input({ shape: [6, 6, 1] });
  const c = new QConvT2D({ filters: 2, kernelSize: 3, strides: 2, name: 'ct' });
  const model = tf.model({
    inputs: input,
    outputs: c.apply(input) as tf.SymbolicTensor,
  });
  assert.deepEqual(model.outputs[0]!.shape, [null, 2, 2, 2]);
  const dir = mkdtempSync(join(tmpdir(), 'qconvt-'));
  await saveModel(model, dir);
  const back = await loadModel(dir);
  const x = tf.randomUniform([3, 6, 6, 1], -2, 2);
  assert.deepEqual(Array.from((back.predict(x) as tf.Tensor).dataSync()), Array.from((model.predict(x) as tf.Tensor).dataSync()));

  assert.throws(() => new QDenseT({ nOut: 0, name: 'bad' }), /QDenseT 'bad': nOut must be an integer ≥ 1/);
  assert.throws(
    () => new QDenseT({ nOut: 2, subnnActivation: 'nope', name: 'bad2' }),
    /QDenseT 'bad2': unknown subnnActivation 'nope'/,
  );
  assert.throws(
    () => new QConvT1D({ filters: 2, kernelSize: [3, 3], name: 'bad3' }),
    /QConvT1D 'bad3': kernelSize must be 1 positive integer/,
  );
  assert.throws(
    () =>
      tf.sequential({
        layers: [
          new QConvT1D({
            filters: 1,
            kernelSize: 5,
            inputShape: [3, 1],
            name: 'bad4',
          }),
        ],
      }),
    /QConvT1D 'bad4': window 5 is larger than the input/,
  );
});
