/**
 * QEinsumDenseT (HGQ-LUT on an einsum). There is no HGQ2 fixture for it, so these tests check properties:
 * on 'bi,io->bo' it computes exactly what QDenseT computes with the same weights (HGQ2 builds both from the
 * same sub-network equations); on grouped, broadcast, input-only-contracted and ellipsis equations, with
 * batch norm and zero-width inputs and table outputs, inference equals the exported tables looked up and summed
 * bit for bit; EBOPs follow HGQ2's formula by hand (pre-sum shape, fbits, n_parallel); the layer trains and
 * survives save/load; bad equations name the layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDenseT, type TableLayerExport } from '../src/layers/table-dense.ts';
import { QEinsumDenseT, type QEinsumDenseTArgs } from '../src/layers/table-einsum.ts';
import { planEinsumTable } from '../src/layers/table-einsum-plan.ts';
import type { TableExport } from '../src/layers/table.ts';
import type { QuantizerExport } from '../src/layers/base.ts';
import { quantize } from '../src/fixed/quantize.ts';
import type { Kif } from '../src/fixed/types.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng } from './util/rng.ts';

await initBackend();

type Ex = TableLayerExport & { inputQuantizers: (QuantizerExport | null)[] };

const kifAt = (e: QuantizerExport, j: number): Kif => ({ k: e.k[j] as 0 | 1, i: e.i[j]!, f: e.f[j]! });
function lookup(t: TableExport, x: number): number {
  const idx = (x - t.min) / t.step;
  assert.ok(Number.isInteger(idx) && idx >= 0 && idx < t.values.length, `index ${idx} for ${x}`);
  return t.values[idx]!;
}

/** The layer as hardware computes it from its export: per output Σ_k table_e(quantize(x[inputIndex])). */
function tableForward(ex: Ex, x: Float32Array, perSample: number): Float64Array {
  const P = ex.positions.reduce((a, d) => a * d, 1);
  const { nIn, nOut } = ex;
  const iq = ex.inputQuantizers[0]!;
  const n = x.length / perSample;
  const out = new Float64Array(n * P * nOut);
  for (let s = 0; s < n; s++)
    for (let p = 0; p < P; p++)
      for (let o = 0; o < nOut; o++) {
        let acc = 0;
        for (let i = 0; i < nIn; i++) {
          const e = (p * nIn + i) * nOut + o;
          const t = ex.edgeTable[e]!;
          const q = ex.quantizerIndex![e]!;
          const raw = x[s * perSample + ex.inputIndex[p * nIn + i]!]!;
          if (t >= 0) acc += lookup(ex.tables[t]!, quantize(raw, kifAt(iq, q), iq.round, iq.overflow));
        }
        out[s * P * nOut + ex.outputIndex![p * nOut + o]!] = ex.activation === 'relu' ? Math.max(acc, 0) : acc;
      }
  return out;
}

function randomInputs(n: number, per: number, seed: number, scale: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n * per }, () => {
    let v = (rng.next() - 0.5) * 2 * scale;
    if (rng.chance(0.1)) v *= 4; // beyond the calibrated range: WRAP / SAT
    return v;
  });
}

/** Random perturbation of every sub-network and batch-norm weight (so the tables are not trivial). */
function perturb(layer: tf.layers.Layer, seed: number): void {
  const rng = makeRng(seed);
  for (const w of layer.weights) {
    if (!/kernel|bias|bn_|moving/.test(w.originalName)) continue;
    const v = w.read();
    const d = tf.randomUniform(v.shape, -0.5, 0.5, 'float32', rng.int(0, 1 << 30));
    w.write(/variance/.test(w.originalName) ? tf.add(tf.abs(tf.add(v, d)), 0.1) : tf.add(v, tf.mul(d, 2)));
  }
}

/** Sets every third element (from `first`) of the quantizer variable `name` to `value` (zero widths). */
function zeroSome(layer: tf.layers.Layer, name: string, value: number, first: number): void {
  const w = layer.weights.find((v) => v.originalName.endsWith(`/${name}`));
  assert.ok(w, `no weight ${name}`);
  const v = w.read().dataSync().slice();
  for (let j = first; j < v.length; j += 3) v[j] = value;
  w.write(tf.tensor(v, w.shape as number[]));
}

function checkTables(args: QEinsumDenseTArgs, inShape: number[], seed: number, zero = false): Ex {
  const layer = new QEinsumDenseT({ ...args, inputShape: inShape });
  const m = tf.sequential({ layers: [layer] });
  const per = inShape.reduce((a, d) => a * d, 1);
  const n = 300;
  calibrate(m, tf.tensor(randomInputs(n, per, seed, 2), [n, ...inShape]), { reset: true });
  perturb(layer, seed + 1);
  if (zero) {
    zeroSome(layer, 'iq_f', -40, 0); // input of zero bits: the table is one constant
    zeroSome(layer, 'toq_k', 0, 1); // table output of zero bits (same elements): the edge vanishes
    zeroSome(layer, 'toq_b', 0, 1);
  }
  const xs = randomInputs(n, per, seed + 2, 2);
  const y = (m.predict(tf.tensor(xs, [n, ...inShape])) as tf.Tensor).dataSync();
  const ex = layer.exportQuantized() as unknown as Ex;
  assert.equal(ex.op, 'table_sum');
  const want = tableForward(ex, xs, per);
  assert.equal(y.length, want.length);
  let bad = 0;
  for (let j = 0; j < y.length; j++) if (y[j] !== want[j]) bad++;
  assert.equal(bad, 0, `${args.equation}: ${bad} of ${y.length} outputs differ from the table sum`);
  if (zero) {
    assert.ok(
      ex.edgeTable.some((t) => t < 0),
      `${args.equation}: some edges vanish`,
    );
    assert.ok(
      ex.tables.some((t) => t.values.length === 1),
      'some tables read a zero-width input',
    );
  }
  return ex;
}

test("on 'bi,io->bo' QEinsumDenseT equals QDenseT with the same weights, bit for bit", () => {
  const rng = makeRng(3);
  for (const [nHl, act] of [
    [1, 'tanh'],
    [2, 'relu'],
    [0, 'tanh'],
  ] as const) {
    const common = { nHl, dHl: 4, subnnActivation: act, iqConf: { i0: 2, f0: 3 }, toqConf: { b0: 6, i0: 1 } };
    const e = new QEinsumDenseT({ ...common, equation: 'bi,io->bo', outputShape: 3, biasAxes: 'o', inputShape: [5] });
    const d = new QDenseT({ ...common, nOut: 3, inputShape: [5] });
    const me = tf.sequential({ layers: [e] });
    const md = tf.sequential({ layers: [d] });
    perturb(d, 10 + nHl);
    assert.equal(e.weights.length, d.weights.length);
    for (const w of d.weights) {
      const twin = e.weights.find((v) => v.originalName.split('/').pop() === w.originalName.split('/').pop())!;
      assert.deepEqual(twin.shape, w.shape, w.originalName);
      twin.write(w.read());
    }
    const x = tf.tensor(
      Float32Array.from({ length: 200 * 5 }, () => (rng.next() - 0.5) * 10),
      [200, 5],
    );
    const a = (me.predict(x) as tf.Tensor).dataSync();
    const b = (md.predict(x) as tf.Tensor).dataSync();
    assert.deepEqual(Array.from(a), Array.from(b), `n_hl=${nHl}`);
    assert.equal(e.hgqEbops(), d.hgqEbops());
  }
});

test('QEinsumDenseT inference equals its exported tables summed (grouped, broadcast, ellipsis, batch norm, zero widths)', () => {
  const iqConf = { i0: 2, f0: 2 };
  const toqConf = { b0: 5, i0: 1 };
  // grouped letter c (input, kernel and output): one sub-network per (c, i, o)
  checkTables({ equation: 'bci,cio->bco', outputShape: [3, 2], biasAxes: 'co', iqConf, toqConf }, [3, 4], 1);
  // free letter c shared by the sub-networks, output order differs from the input's, relu
  checkTables(
    { equation: 'bci,io->boc', outputShape: [2, 3], biasAxes: 'o', activation: 'relu', iqConf, toqConf, nHl: 2, dHl: 3 },
    [3, 4],
    2,
  );
  // j summed within the input alone (no kernel axis): the edges along j share a sub-network
  checkTables({ equation: 'bij,io->bo', outputShape: [2], biasAxes: 'o', iqConf, toqConf }, [3, 2], 3);
  // ellipsis, batch norm over o (default normalize axes), zero-width inputs and outputs
  checkTables(
    { equation: '...i,io->...o', outputShape: [3], batchNorm: true, iqConf, toqConf: { ...toqConf, homogeneousAxes: [0] } },
    [2, 4],
    4,
    true,
  );
  // batch norm over a free letter (normalizeAxes), no contraction at all (n_in = 1)
  checkTables(
    {
      equation: 'bc,co->bco',
      outputShape: [3, 2],
      batchNorm: true,
      normalizeAxes: 'c',
      iqConf,
      toqConf: { ...toqConf, homogeneousAxes: [0] },
    },
    [3],
    5,
    true,
  );
});

test('QEinsumDenseT EBOPs follow HGQ2 by hand (pre-sum shape, fbits, n_parallel)', () => {
  // 'bci,io->bco' on [3, 4]: pre-sum (c=3, i=4, o=2) = 24 edges; iq fbits 1+2+2 = 5, toq fbits 1+4 = 5:
  // per edge 2^(5−5)·5·2^(5−6) + 5 = 7.5; n_parallel = c = 3 (input axis, output axis, not a kernel axis)
  const args = { equation: 'bci,io->bco', outputShape: [3, 2], iqConf: { i0: 2, f0: 2 }, toqConf: { b0: 4, i0: 1 } };
  const l = new QEinsumDenseT({ ...args, inputShape: [3, 4] });
  tf.sequential({ layers: [l] });
  assert.equal(l.hgqEbops(), 24 * 7.5);
  const l1 = new QEinsumDenseT({ ...args, parallelizationFactor: 1, inputShape: [3, 4] });
  tf.sequential({ layers: [l1] });
  assert.equal(l1.hgqEbops(), (24 * 7.5) / 3);
  assert.equal(planEinsumTable('bci,io->bco', [3, 2], [3, 4], 'x').nParallel, 3);
  // a grouped letter is a kernel axis: not parallel (HGQ2's _einsum_free0_size)
  assert.equal(planEinsumTable('bci,cio->bco', [3, 2], [3, 4], 'x').nParallel, 1);
  assert.equal(planEinsumTable('...i,io->...o', [2], [5, 6, 4], 'x').nParallel, 30);
});

test('QEinsumDenseT trains (loss and EBOPs fall) and survives save/load; bad equations name the layer', async () => {
  const rng = makeRng(9);
  const n = 256;
  const xs = Float32Array.from({ length: n * 3 * 2 }, () => (rng.next() - 0.5) * 4);
  const ys = Float32Array.from({ length: n * 3 }, (_, j) => Math.tanh(xs[2 * j]!) - 0.5 * xs[2 * j + 1]!);
  const layer = new QEinsumDenseT({
    equation: 'bci,io->bco',
    outputShape: [3, 1],
    biasAxes: 'o',
    beta0: 1e-4,
    inputShape: [3, 2],
    iqConf: { i0: 2, f0: 4 },
  });
  const model = tf.sequential({ layers: [layer] });
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'meanSquaredError' });
  const x = tf.tensor(xs, [n, 3, 2]);
  const y = tf.tensor(ys, [n, 3, 1]);
  const e0 = layer.hgqEbops();
  const h = await model.fit(x, y, { epochs: 30, batchSize: 32, verbose: 0 });
  const loss = h.history['loss'] as number[];
  assert.ok(loss.at(-1)! < loss[0]! * 0.5, `loss ${loss[0]} → ${loss.at(-1)}`);
  assert.ok(layer.hgqEbops() < e0, `EBOPs ${e0} → ${layer.hgqEbops()}`);
  const dir = mkdtempSync(join(tmpdir(), 'hgq-eint-'));
  try {
    await saveModel(model, dir);
    const back = await loadModel(dir);
    const a = (model.predict(x) as tf.Tensor).dataSync();
    const b = (back.predict(x) as tf.Tensor).dataSync();
    assert.deepEqual(Array.from(b), Array.from(a));
    // capital letters, an ellipsis and batch norm axes survive tfjs' config round trip
    const caps = tf.sequential({
      layers: [
        new QEinsumDenseT({
          equation: '...Ci,iO->...CO',
          outputShape: [3, 2],
          batchNorm: true,
          normalizeAxes: 'O',
          inputShape: [3, 2],
        }),
      ],
    });
    await saveModel(caps, join(dir, 'caps'));
    const caps2 = await loadModel(join(dir, 'caps'));
    assert.equal((caps2.layers[0] as QEinsumDenseT).equation, '...Ci,iO->...CO');
    assert.equal((caps2.layers[0] as QEinsumDenseT).normalizeAxes, 'O');
    assert.deepEqual(
      Array.from((caps2.predict(x) as tf.Tensor).dataSync()),
      Array.from((caps.predict(x) as tf.Tensor).dataSync()),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [eq, why] of [
    ['bi,ij->bo', /kernel letter 'j'/],
    ['bi,bo->bo', /batch letter/],
    ['bi,io', /expected/],
    ['...i,io->bo', /'\.\.\.' must lead both/],
    ['bii,io->bo', /repeat/],
  ] as const) {
    assert.throws(
      () => tf.sequential({ layers: [new QEinsumDenseT({ name: 'eint', equation: eq, outputShape: [3], inputShape: [4] })] }),
      (e: Error) => /QEinsumDenseT 'eint'/.test(e.message) && why.test(e.message),
      eq,
    );
  }
});
