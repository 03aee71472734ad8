/**
 * HGQ-LUT table layers imported from HGQ2 (../shared/fixtures/hgq2-lut: five models made with HGQ2 itself):
 * the imported tfjs model reproduces HGQ2's outputs and every layer's output bit for bit on the 256 stored
 * test inputs, and the EBOPs equal HGQ2's per-layer values (exact formula on the stored state: float32 value
 * and the uint32 HGQ2 stores; our tfjs layers within float32 rounding of a differently ordered sum).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { loadHgq2Model } from '../src/import/hgq2-model.ts';
import { buildHgqModel, hgq2StyleEbops } from '../src/import/hgq2-build.ts';
import { modelEbops } from '../src/import/ebops.ts';
import { HGQ2_LUT_DIR, HGQ2_LUT_STEMS, lutFixturesSkip } from './util/hgq2-fixtures.ts';

await initBackend();

const DIR = HGQ2_LUT_DIR;
const STEMS = HGQ2_LUT_STEMS;
const skip = lutFixturesSkip(test);

interface F32Array {
  shape: number[];
  b64_f32le: string;
}
function f32(a: F32Array): Float32Array {
  const b = Buffer.from(a.b64_f32le, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

for (const stem of STEMS) {
  test(`${stem}: imported model equals HGQ2 bit for bit, every layer, and its EBOPs`, {
    skip,
  }, async () => {
    const decoded = await loadHgq2Model(`${DIR}${stem}.keras`);
    const ref = JSON.parse(readFileSync(`${DIR}${stem}.json`, 'utf8'));
    const model = buildHgqModel(decoded);
    const x = tf.tensor(f32(ref.test_inputs), ref.test_inputs.shape);
    try {
      for (const [name, out] of Object.entries<F32Array>(ref.layer_outputs)) {
        const sub = tf.model({
          inputs: model.inputs,
          outputs: model.getLayer(name).output as tf.SymbolicTensor,
        });
        const y = sub.predict(x) as tf.Tensor;
        const got = y.dataSync();
        y.dispose();
        const want = f32(out);
        assert.equal(got.length, want.length, `${name}: output size`);
        let bad = 0;
        for (let j = 0; j < want.length; j++) if (got[j] !== want[j]) bad++;
        assert.equal(bad, 0, `${stem} layer ${name}: ${bad} of ${want.length} values differ from HGQ2`);
      }
      const y = model.predict(x) as tf.Tensor;
      assert.deepEqual(Array.from(y.dataSync()), Array.from(f32(ref.outputs)));
      y.dispose();

      const exact = modelEbops(decoded);
      const ours = hgq2StyleEbops(model);
      for (const l of exact.layers) {
        const want = ref.ebops.per_layer[l.name];
        assert.equal(Math.fround(l.ebops), want.ebops_float_recomputed, `${l.name}: exact EBOPs (float32) vs HGQ2`);
        assert.equal(Math.floor(l.ebops), want.ebops_uint32_var, `${l.name}: integer EBOPs vs HGQ2's stored uint32`);
        assert.equal(l.stored, want.ebops_uint32_var, `${l.name}: decoded stored EBOPs`);
        const mine = ours.layers.find((o) => o.name === l.name)!;
        assert.ok(Math.abs(mine.ebops - l.ebops) <= 1e-6 * l.ebops, `${l.name}: tfjs layer EBOPs ${mine.ebops} vs ${l.ebops}`);
      }
      assert.equal(exact.totalFloored, ref.ebops.total_uint32);
    } finally {
      x.dispose();
    }
  });
}
