import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { loadHgq2Model, quantizerKif, type HgqModel } from '../src/import/hgq2-model.ts';
import {
  applyQuantizer,
  fuseBatchnorm,
  inputRanges,
  layerForward,
  referenceForward,
  KERAS_EPSILON,
  type Tensor,
} from '../src/import/reference-forward.ts';
import { roundToStep } from '../src/fixed/quantize.ts';
import { broadcastIndex } from '../src/import/nd.ts';
import { makeRng, type Rng } from './util/rng.ts';
import { hgq2Fixtures, fixturesMissing, HGQ2_FIXTURE_DIR } from './util/hgq2-fixtures.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();
if (missing.skip) test('HGQ2 fixture tests', { skip: missing.skip }, () => {});
if (missing.failInCi) {
  test('HGQ2 fixtures are present in CI', () => {
    assert.fail(`CI=true but no .keras fixtures in ${HGQ2_FIXTURE_DIR}`);
  });
}

/** Inputs inside the accepted ranges, on the input quantizer's grid half of the time, plus a few outside. */
function drawInputs(model: HgqModel, B: number, rng: Rng): Tensor[] {
  return inputRanges(model).map((r) => {
    const n = r.lo.length;
    const d = new Float64Array(B * n);
    for (let b = 0; b < B; b++)
      for (let e = 0; e < n; e++) {
        const lo = r.lo[e]!;
        const hi = r.hi[e]!;
        let v = lo + rng.next() * (hi - lo);
        if (rng.chance(0.5) && r.step[e]! > 0) v = Math.round(v / r.step[e]!) * r.step[e]!;
        if (rng.chance(0.02)) v = (rng.next() - 0.5) * 4 * Math.max(1, Math.abs(hi), Math.abs(lo)); // out of range: wraps/clips
        d[b * n + e] = v;
      }
    return { data: d, shape: [B, ...r.shape] };
  });
}

for (const path of fixtures) {
  test(`reference forward of ${basename(path)}: shapes, finiteness, batch independence`, { skip: missing.skip }, async () => {
    const model = await loadHgq2Model(path);
    const rng = makeRng(7);
    const B = 12;
    const xs = drawInputs(model, B, rng);
    const full = referenceForward(model, xs, { keepAll: true });
    const out = full.outputs[0]!;
    const lastLayer = model.byName.get(model.outputs[0]!)!;
    assert.equal(out.shape[0], B);
    assert.equal(out.shape.at(-1), lastLayer.config.units ?? lastLayer.config.output_shape?.at(-1));
    for (const v of out.data) assert.ok(Number.isFinite(v));
    // Each sample only depends on itself: the first half alone gives the same outputs.
    const half = xs.map((t) => ({ data: t.data.slice(0, (t.data.length / B) * (B / 2)), shape: [B / 2, ...t.shape.slice(1)] }));
    const h = referenceForward(model, half).outputs[0]!;
    assert.deepEqual([...h.data], [...out.data.slice(0, h.data.length)]);
    // Quantized layers' outputs are dyadic (finite binary fractions): every value times 2^40 is an integer.
    for (const [name, t] of full.layers) {
      if (model.byName.get(name)!.className === 'InputLayer') continue;
      for (const v of t.data) assert.ok(Number.isInteger(v * 2 ** 40), `${name}: ${v} is not on a fixed-point grid`);
    }
  });

  test(`batch-norm fold of ${basename(path)} equals the unfused batch norm (float, before quantizers)`, {
    skip: missing.skip,
  }, async () => {
    const model = await loadHgq2Model(path);
    const rng = makeRng(11);
    for (const layer of model.layers.filter((l) => l.className === 'QEinsumDenseBatchnorm')) {
      const inShape = [3, ...(layer.inbound[0]!.shape.slice(1) as number[])];
      const n = inShape.reduce((a, b) => a * b, 1);
      const x: Tensor = { data: Float64Array.from({ length: n }, () => rng.next() * 4 - 2), shape: inShape };
      const y = layerForward(layer, [x], { quantize: false });
      const K = layer.vars.kernel!;
      const [Cin, C] = K.shape as [number, number];
      const g = layer.vars.gamma!.data,
        mu = layer.vars.moving_mean!.data,
        va = layer.vars.moving_variance!.data,
        be = layer.vars.bias!.data;
      const rows = n / Cin;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < C; c++) {
          let z = 0;
          for (let k = 0; k < Cin; k++) z += x.data[r * Cin + k]! * Number(K.data[k * C + c]);
          let bn = (Number(g[c]) * (z - Number(mu[c]))) / Math.sqrt(Number(va[c]) + KERAS_EPSILON) + Number(be[c]);
          if (layer.config.activation === 'relu') bn = Math.max(0, bn);
          const got = y.data[r * C + c]!;
          assert.ok(
            Math.abs(got - bn) <= 1e-5 * (1 + Math.abs(bn)) + 1e-4,
            `${layer.name}[${r},${c}]: fused ${got} vs unfused ${bn}`,
          );
        }
    }
  });
}

test('GetItem slices and Reshape flattens (muon model wiring)', { skip: missing.skip }, async () => {
  const path = fixtures.find((f) => basename(f).startsWith('tgc'));
  assert.ok(path, 'the muon-tracking fixture is present');
  const model = await loadHgq2Model(path);
  const r = referenceForward(model, drawInputs(model, 5, makeRng(3)), { keepAll: true });
  const dense = r.layers.get('q_dense')!;
  const a = r.layers.get('get_item')!;
  const b = r.layers.get('get_item_1')!;
  assert.deepEqual(a.shape, [5, 50]);
  assert.deepEqual(b.shape, [5, 50]);
  for (let s = 0; s < 5; s++)
    for (let j = 0; j < 50; j++) {
      assert.equal(a.data[s * 50 + j], dense.data[s * 100 + j]);
      assert.equal(b.data[s * 50 + j], dense.data[s * 100 + 50 + j]);
    }
  assert.deepEqual(r.layers.get('reshape')!.shape, [5, 50]);
  assert.deepEqual([...r.layers.get('reshape')!.data], [...r.layers.get('q_conv1d')!.data]);
});

test('quantizers: activation outputs on grid and in range; WRAP bias quantizers only round', { skip: missing.skip }, async () => {
  const rng = makeRng(5);
  for (const path of fixtures) {
    const model = await loadHgq2Model(path);
    for (const l of model.layers) {
      for (const q of [l.iq, l.bq, l.kq, ...(l.iqs ?? [])]) {
        if (!q) continue;
        const shape = q.isWeight ? q.shape : [2, ...q.shape.slice(1)];
        const n = shape.reduce((a, b) => a * b, 1);
        const x: Tensor = { data: Float64Array.from({ length: n }, () => (rng.next() - 0.5) * 2 ** rng.int(-6, 8)), shape };
        const y = applyQuantizer(q, x);
        const { k, i, f } = quantizerKif(q);
        const ix = broadcastIndex(q.shape, shape);
        for (let j = 0; j < n; j++) {
          const p = ix[j]!;
          const v = y.data[j]!;
          if (q.overflowMode === 'WRAP' && q.trainable && q.isWeight) {
            assert.equal(v, roundToStep(x.data[j]!, f[p]!, q.roundMode), `${q.group}: round only`);
            continue;
          }
          const W = k[p]! + i[p]! + f[p]!;
          if (W <= 0) {
            assert.equal(v, 0);
            continue;
          }
          assert.ok(Number.isInteger(v * 2 ** f[p]!), `${q.group}: ${v} on the 2^-${f[p]} grid`);
          assert.ok(
            v >= -k[p]! * 2 ** i[p]! && v <= 2 ** i[p]! - 2 ** -f[p]!,
            `${q.group}: ${v} in range of (${k[p]},${i[p]},${f[p]})`,
          );
        }
      }
    }
  }
});

test('fused kernel is computed in float32 like TensorFlow', { skip: missing.skip }, async () => {
  const model = await loadHgq2Model(fixtures[0]!);
  const layer = model.layers.find((l) => l.className === 'QEinsumDenseBatchnorm')!;
  const { kernel, bias } = fuseBatchnorm(layer);
  for (const v of kernel) assert.equal(v, Math.fround(v));
  for (const v of bias) assert.equal(v, Math.fround(v));
});
