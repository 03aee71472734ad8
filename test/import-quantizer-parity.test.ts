/**
 * Our tfjs Quantizer, configured and loaded from each fixture quantizer (hgq2-to-hgq.ts), quantizes
 * exactly like the reference HGQ2 semantics (reference-forward.ts applyQuantizer, via src/fixed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadHgq2Model, quantizerBits, type HgqQuantizer } from '../src/import/hgq2-model.ts';
import { hgq2QuantizerOptions, hgq2QuantizerValues } from '../src/import/hgq2-to-hgq.ts';
import { applyQuantizer, fuseBatchnorm } from '../src/import/reference-forward.ts';
import { Quantizer, plainVariable, type QParamName } from '../src/quantizer/quantizer.ts';
import { makeRng } from './util/rng.ts';
import { hgq2Fixtures, fixturesMissing, HGQ2_FIXTURE_DIR } from './util/hgq2-fixtures.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();
if (missing.skip) test('HGQ2 fixture tests', { skip: missing.skip }, () => {});
if (missing.failInCi) {
  test('HGQ2 fixtures are present in CI', () => {
    assert.fail(`CI=true but no .keras fixtures in ${HGQ2_FIXTURE_DIR}`);
  });
}

function ours(q: HgqQuantizer, inShape: (number | null)[]): Quantizer {
  const v = hgq2QuantizerValues(q);
  const qz = new Quantizer(hgq2QuantizerOptions(q));
  qz.build(inShape, (name: QParamName, shape, init, trainable) => {
    const src: ArrayLike<number> | undefined = name === 'i_decay_speed' ? [v.iDecaySpeed ?? init] : (v as any)[name];
    const t = src ? tf.tensor(Array.from(src), shape, 'float32') : tf.fill(shape, init);
    const variable = plainVariable(t, trainable);
    t.dispose();
    return variable;
  });
  return qz;
}

for (const path of fixtures) {
  test(`our Quantizer loaded from ${basename(path)} quantizes bit-exactly like HGQ2's inference and has the same EBOPs bits`, {
    skip: missing.skip,
  }, async () => {
    const model = await loadHgq2Model(path);
    const rng = makeRng(42);
    let checked = 0;
    for (const l of model.layers) {
      const cases: { q: HgqQuantizer; inShape: (number | null)[]; x: Float32Array; shape: number[] }[] = [];
      const acts = (q: HgqQuantizer, inShape: (number | null)[]) => {
        const shape = [3, ...(inShape.slice(1) as number[])];
        const n = shape.reduce((a, b) => a * b, 1);
        // magnitudes spanning the stored ranges, some outside (wrap/clip), some exact grid ties
        const x = Float32Array.from({ length: n }, () => {
          const v = (rng.next() - 0.5) * 2 ** rng.int(-4, 7);
          return rng.chance(0.2) ? Math.round(v * 16) / 16 + 1 / 32 : v;
        });
        cases.push({ q, inShape, x, shape });
      };
      if (l.iq) acts(l.iq, l.inbound[0]!.shape);
      (l.iqs ?? []).forEach((q, j) => acts(q, l.inbound[j]!.shape));
      if (l.kq) {
        const K = l.className === 'QEinsumDenseBatchnorm' ? fuseBatchnorm(l) : null;
        const shape = l.vars.kernel!.shape;
        cases.push({
          q: l.kq,
          inShape: shape,
          x: Float32Array.from(K ? K.kernel : (l.vars.kernel!.data as Float32Array)),
          shape,
        });
        if (l.bq) {
          const b = K ? K.bias : (l.vars.bias!.data as Float32Array);
          cases.push({ q: l.bq, inShape: [b.length], x: Float32Array.from(b), shape: [b.length] });
        }
      }
      for (const c of cases) {
        const qz = ours(c.q, c.inShape);
        const xt = tf.tensor(c.x, c.shape, 'float32');
        const got = qz.call(xt, false);
        const gotData = got.dataSync();
        const want = applyQuantizer(c.q, { data: Float64Array.from(c.x), shape: c.shape }).data;
        for (let j = 0; j < want.length; j++) {
          if (gotData[j] !== want[j]) assert.fail(`${c.q.group}[${j}]: x=${c.x[j]} ours ${gotData[j]} vs reference ${want[j]}`);
        }
        // EBOPs bit widths agree too (HGQ2 `bits`: sign only under SAT)
        const bits = qz.bits();
        assert.deepEqual([...bits.dataSync()], [...quantizerBits(c.q)], `${c.q.group}: bits`);
        tf.dispose([xt, got, bits]);
        qz.dispose();
        checked++;
      }
    }
    assert.ok(checked >= 8);
  });
}
