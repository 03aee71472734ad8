/**
 * QEinsumDenseT from an HGQ2-style `.keras` config. There is no HGQ2 fixture for QEinsumDenseT, so these
 * configs are hand-built from the HGQ2 QDenseT fixtures (../shared/fixtures/hgq2-lut): each QDenseT becomes a
 * QEinsumDenseT with the dense equation ('bi,io->bo' or '...i,io->...o', bias_axes 'o'), its variables moved to
 * where HGQ2's QEinsumDenseT keeps them (group q_einsum_dense_t; the batch norm in the layer's own variables).
 * HGQ2 builds both layers from the same sub-network equations, so the property checked is:
 * without batch norm, the imported model reproduces HGQ2's QDenseT outputs bit for bit (and traces exactly);
 * with batch norm, every stored variable lands in our layer; and EBOPs from the stored state (ebops.ts)
 * equal both our layer's and HGQ2's stored QDenseT values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { readKerasArchive, type KerasArchive } from '../src/import/keras-archive.ts';
import { hgq2ModelFromArchive } from '../src/import/hgq2-model.ts';
import { buildHgqModel, hgq2StyleEbops } from '../src/import/hgq2-build.ts';
import { modelEbops } from '../src/import/ebops.ts';
import { QEinsumDenseT } from '../src/layers/table-einsum.ts';
import { trace } from '../src/trace/trace.ts';
import { checkAgainstModel } from '../src/trace/check.ts';
import { HGQ2_LUT_DIR, lutFixturesSkip } from './util/hgq2-fixtures.ts';

await initBackend();
const skip = lutFixturesSkip(test);

function f32(a: { b64_f32le: string }): Float32Array {
  const b = Buffer.from(a.b64_f32le, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/** Renames the HDF5 groups under `from` to `to` (datasets and group attributes). */
function moveGroup(ar: KerasArchive, from: string, to: string): void {
  const rename = <V>(m: Map<string, V>) => {
    for (const [k, v] of [...m]) {
      if (k !== from && !k.startsWith(`${from}/`)) continue;
      m.delete(k);
      m.set(to + k.slice(from.length), v);
    }
  };
  rename(ar.weights);
  rename(ar.groupAttrs);
}

/**
 * The archive with every QDenseT turned into the HGQ2 QEinsumDenseT holding the same state. Variables of
 * QEinsumDenseT's own group, as Keras saves them: trainable (bn_gamma, bn_beta) then non-trainable in creation
 * order (moving mean, moving variance, then β and EBOPs, which the base class adds last).
 */
async function asEinsumTable(stem: string, equations: string[]): Promise<KerasArchive> {
  const ar = await readKerasArchive(`${HGQ2_LUT_DIR}${stem}.keras`);
  const layers = ar.config.config.layers as { class_name: string; config: Record<string, unknown> }[];
  let n = 0;
  for (const L of layers) {
    if (L.class_name !== 'QDenseT') continue;
    const from = `layers/q_dense_t${n ? `_${n}` : ''}`;
    const to = `layers/q_einsum_dense_t${n ? `_${n}` : ''}`;
    const c = L.config;
    const bn = c.batch_norm === true;
    L.class_name = 'QEinsumDenseT';
    const { n_out: nOut, use_bias: _u, ...rest } = c;
    void _u;
    L.config = { ...rest, equation: equations[n]!, output_shape: [nOut], bias_axes: 'o', normalize_axes: null };
    moveGroup(ar, from, to);
    if (bn) {
      const own = [`${to}/vars/0`, `${to}/vars/1`].map((k) => ar.weights.get(k)!); // β, EBOPs
      const bnVars = [0, 1, 2, 3].map((j) => ar.weights.get(`${to}/bn_module/vars/${j}`)!);
      [...bnVars, ...own].forEach((t, j) => ar.weights.set(`${to}/vars/${j}`, t));
      for (let j = 0; j < 4; j++) ar.weights.delete(`${to}/bn_module/vars/${j}`);
    }
    n++;
  }
  assert.ok(n > 0, `${stem} has QDenseT layers`);
  return ar;
}

test('a hand-built QEinsumDenseT config (lut_dense_nhl2 as einsums) imports, equals HGQ2 bit for bit and traces exactly', {
  skip,
}, async () => {
  const ref = JSON.parse(readFileSync(`${HGQ2_LUT_DIR}lut_dense_nhl2.json`, 'utf8'));
  const decoded = hgq2ModelFromArchive(await asEinsumTable('lut_dense_nhl2', ['bi,io->bo', '...i,io->...o']));
  const model = buildHgqModel(decoded);
  assert.deepEqual(
    model.layers.filter((l) => l instanceof QEinsumDenseT).map((l) => (l as QEinsumDenseT).equation),
    ['bi,io->bo', '...i,io->...o'],
  );
  const x = tf.tensor(f32(ref.test_inputs), ref.test_inputs.shape);
  const y = model.predict(x) as tf.Tensor;
  assert.deepEqual(Array.from(y.dataSync()), Array.from(f32(ref.outputs)), 'outputs equal HGQ2 QDenseT model');
  const exact = modelEbops(decoded);
  const ours = hgq2StyleEbops(model);
  for (const l of exact.layers) {
    const want = ref.ebops.per_layer[l.name].ebops_float_recomputed as number;
    assert.ok(Math.abs(l.ebops - want) <= 1e-6 * want, `${l.name}: EBOPs ${l.ebops} vs HGQ2 ${want}`);
    const mine = ours.layers.find((m) => m.name === l.name)!.ebops;
    assert.ok(Math.abs(mine - want) <= 1e-5 * want, `${l.name}: our layer's EBOPs ${mine} vs HGQ2 ${want}`);
  }
  const chk = checkAgainstModel(model, trace(model), 500);
  assert.equal(chk.mismatches, 0, `emulator vs model, first mismatch ${JSON.stringify(chk.first)}`);
});

test('a hand-built QEinsumDenseT config with batch norm (lut_dense as einsums) loads every stored variable', {
  skip,
}, async () => {
  const ar = await asEinsumTable('lut_dense', ['bi,io->bo', 'bi,io->bo']);
  const decoded = hgq2ModelFromArchive(ar);
  const model = buildHgqModel(decoded);
  const layer = model.layers.find((l) => l instanceof QEinsumDenseT && l.batchNorm) as QEinsumDenseT;
  assert.ok(layer, 'a QEinsumDenseT with batch norm');
  const src = decoded.byName.get(layer.name)!;
  const bn = src.subnet!.bn!;
  for (const [v, t] of [
    [layer.bnGamma, bn.gamma],
    [layer.bnBeta, bn.beta],
    [layer.movingMean, bn.movingMean],
    [layer.movingVariance, bn.movingVariance],
  ] as const)
    assert.deepEqual(Array.from(v!.read().dataSync()), Array.from(t!.data as Float32Array), v!.name);
  assert.equal(layer.getBeta(), Number(src.vars.beta!.data[0]), 'β from the layer variables, not the batch norm');
  // HGQ2 QEinsumDenseT has sub-network biases only without batch norm
  assert.equal(layer.outBias, null);
  const e = modelEbops(decoded).layers.find((l) => l.name === layer.name)!.ebops;
  assert.ok(Math.abs(layer.hgqEbops() - e) <= 1e-5 * e, `EBOPs ${layer.hgqEbops()} vs ${e}`);
});
