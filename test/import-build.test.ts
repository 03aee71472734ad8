/**
 * buildHgqModel on every HGQ2 fixture: the imported tfjs model computes exactly what the reference
 * semantics (reference-forward.ts, src/fixed) compute, costs the same EBOPs as HGQ2's formulas on the stored
 * state, survives save/load, and unsupported content gives errors naming the layer and the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { loadHgq2Model, hgq2ModelFromArchive, type HgqModel } from '../src/import/hgq2-model.ts';
import { readKerasArchive } from '../src/import/keras-archive.ts';
import { buildHgqModel, hgq2StyleEbops, tfjsLayerNames } from '../src/import/hgq2-build.ts';
import { loadModelAny, loadModelWithSource } from '../src/app/load-model.ts';
import { referenceForward, inputRanges, type Tensor } from '../src/import/reference-forward.ts';
import { modelEbops, ebopsFromFileName } from '../src/import/ebops.ts';
import { saveModel } from '../src/train/io.ts';
import { makeRng } from './util/rng.ts';
import { hgq2Fixtures, fixturesMissing, HGQ2_FIXTURE_DIR } from './util/hgq2-fixtures.ts';

await initBackend();

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();
if (missing.skip) test('HGQ2 fixture tests', { skip: missing.skip }, () => {});
if (missing.failInCi) {
  test('HGQ2 fixtures are present in CI', () => {
    assert.fail(`CI=true but no .keras fixtures in ${HGQ2_FIXTURE_DIR}`);
  });
}

/** Inputs inside the ranges the input quantizers accept, plus 10% far outside (wrap/clip) and 10% rounding ties. */
function sampleInputs(model: HgqModel, n: number, seed: number): Tensor[] {
  const rng = makeRng(seed);
  return inputRanges(model).map((r) => {
    const per = r.lo.length;
    const data = new Float64Array(n * per);
    for (let s = 0; s < n; s++) {
      for (let e = 0; e < per; e++) {
        const lo = r.lo[e]!,
          hi = r.hi[e]!,
          step = r.step[e]!;
        let v = lo + (hi - lo) * rng.next();
        if (rng.chance(0.1)) v *= 3;
        else if (step > 0) {
          if (rng.chance(0.1)) v = (Math.floor(v / step) + 0.5) * step; // a rounding tie
        }
        data[s * per + e] = Math.fround(v);
      }
    }
    return { data, shape: [n, ...r.shape] };
  });
}

function predict(model: tf.LayersModel, xs: Tensor[]): Float32Array[] {
  const ts = xs.map((x) => tf.tensor(Float32Array.from(x.data), x.shape));
  const y = model.predict(ts) as tf.Tensor | tf.Tensor[];
  const ys = Array.isArray(y) ? y : [y];
  const out = ys.map((t) => t.dataSync() as Float32Array);
  tf.dispose([...ts, ...ys]);
  return out;
}

for (const path of fixtures) {
  const name = basename(path);
  test(`${name}: imported model == reference forward bit for bit, EBOPs == HGQ2 formulas (within 2% of the logged value), save/load identical`, async () => {
    const decoded = await loadHgq2Model(path);
    const model = buildHgqModel(decoded);
    assert.deepEqual(
      model.inputs.map((x) => x.shape),
      decoded.inputs.map((n) => decoded.byName.get(n)!.config.batch_shape),
    );

    // inference: bit for bit (every accumulation in these models is float32-exact; no tolerance needed)
    const xs = sampleInputs(decoded, 200, 7);
    const want = referenceForward(decoded, xs).outputs;
    const got = predict(model, xs);
    assert.equal(got.length, want.length);
    got.forEach((g, j) => {
      assert.equal(g.length, want[j]!.data.length);
      for (let k = 0; k < g.length; k++)
        if (g[k] !== want[j]!.data[k]) assert.fail(`${name}: output ${j}[${k}] = ${g[k]}, reference ${want[j]!.data[k]}`);
    });
    assert.ok(new Set(got[0]).size > 10, 'outputs vary over the samples');

    // EBOPs from the imported state: per layer equal to HGQ2's formulas on the stored state (ebops.ts)
    const ref = modelEbops(decoded);
    const ours = hgq2StyleEbops(model);
    const refByName = new Map(ref.layers.map((l) => [l.name, l.ebops]));
    const tfName = tfjsLayerNames(decoded.layers.map((l) => l.name));
    const back = new Map([...tfName.entries()].map(([a, b]) => [b, a]));
    assert.equal(ours.layers.length, ref.layers.length);
    for (const l of ours.layers) {
      const r = refByName.get(back.get(l.name)!);
      assert.ok(r !== undefined && Math.abs(l.ebops - r) < 0.01, `${name} ${l.name}: EBOPs ${l.ebops} vs HGQ2 formula ${r}`);
    }
    assert.equal(ours.total, ref.totalFloored);
    const logged = ebopsFromFileName(path)!;
    assert.ok(Math.abs(ours.total - logged) / logged < 0.02, `${name}: EBOPs ${ours.total} vs logged ${logged}`);

    // saved and reloaded (loadModelAny on the directory): identical predictions and EBOPs
    const dir = mkdtempSync(join(tmpdir(), 'hgq-import-'));
    await saveModel(model, dir);
    const re = await loadModelWithSource(dir);
    assert.equal(re.source, 'tfjs');
    const got2 = predict(re.model, xs);
    got2.forEach((g, j) => assert.deepEqual(g, got[j]));
    assert.equal(hgq2StyleEbops(re.model).total, ours.total);
    // loadModelAny on the .keras file imports it on the fly
    const direct = await loadModelAny(path);
    predict(direct, xs).forEach((g, j) => assert.deepEqual(g, got[j]));
    for (const m of [model, re.model, direct]) m.dispose();
  });
}

/** Decode a fixture after editing its config.json. */
async function doctored(fixture: string, edit: (layers: any[]) => void): Promise<HgqModel> {
  const ar = await readKerasArchive(fixture);
  const cfg = structuredClone(ar.config);
  edit(cfg.config.layers);
  return hgq2ModelFromArchive({ ...ar, config: cfg });
}

const tgc = fixtures.find((f) => basename(f).startsWith('tgc'));
const plf = fixtures.find((f) => basename(f).startsWith('jsc_plf'));
const byName = (layers: any[], n: string) => layers.find((l) => (l.config?.name ?? l.name) === n);

test('unsupported layers and options: errors name the layer and the file', {
  skip: !tgc || !plf ? 'fixtures absent' : false,
}, async () => {
  // an unknown layer class (the decoder refuses it)
  await assert.rejects(
    doctored(tgc!, (ls) => (byName(ls, 'theta_out').class_name = 'QDenseLoRA')),
    (e: Error) => e.message.includes(tgc!) && e.message.includes("'theta_out'") && e.message.includes('QDenseLoRA'),
  );
  const cases: [string, string, (ls: any[]) => void, RegExp][] = [
    [tgc!, 'theta_out', (ls) => (byName(ls, 'theta_out').config.activation = 'tanh'), /activation 'tanh' is not supported/],
    [tgc!, 'q_conv1d', (ls) => (byName(ls, 'q_conv1d').config.dilation_rate = [2]), /dilation_rate \[2\] is not supported/],
    [tgc!, 'q_conv1d', (ls) => (byName(ls, 'q_conv1d').config.padding = 'causal'), /padding 'causal' is not supported/],
    [
      plf!,
      'q_einsum_dense_batchnorm',
      (ls) => (byName(ls, 'q_einsum_dense_batchnorm').config.equation = '...c,cC->...C'),
      /equation '\.\.\.c,cC->\.\.\.C' is not supported/,
    ],
    [plf!, 'q_sum', (ls) => (byName(ls, 'q_sum').config.scale = 0.3), /scale must be a power of two/],
    [
      tgc!,
      'get_item',
      (ls) =>
        (byName(ls, 'get_item').inbound_nodes[0].args[1] = [
          { class_name: '__slice__', config: { start: 1, stop: null, step: null } },
        ]),
      /batch axis must be taken whole/,
    ],
  ];
  for (const [file, layer, edit, re] of cases) {
    const decoded = await doctored(file, edit);
    assert.throws(
      () => buildHgqModel(decoded),
      (e: Error) => e.message.startsWith(`${file}: layer '${layer}'`) && re.test(e.message),
      `${layer}: ${re}`,
    );
  }
});

test('loadModelAny: clear errors for paths that are not models', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-notmodel-'));
  await assert.rejects(loadModelAny(join(dir, 'nope')), /no such file or directory/);
  await assert.rejects(loadModelAny(dir), /not a model \(expected a directory with model.json/);
});
