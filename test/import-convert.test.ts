import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { loadHgq2Model } from '../src/import/hgq2-model.ts';
import { hgq2QuantizerOptions, hgq2QuantizerValues } from '../src/import/hgq2-to-hgq.ts';
import { resolveQuantizerConfig } from '../src/quantizer/config.ts';
import { Quantizer } from '../src/quantizer/quantizer.ts';
import { hgq2Fixtures, fixturesMissing, HGQ2_FIXTURE_DIR } from './util/hgq2-fixtures.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();
if (missing.skip) test('HGQ2 fixture tests', { skip: missing.skip }, () => {});
if (missing.failInCi) {
  test('HGQ2 fixtures are present in CI', () => {
    assert.fail(`CI=true but no .keras fixtures in ${HGQ2_FIXTURE_DIR}`);
  });
}

for (const path of fixtures) {
  test(`every quantizer of ${basename(path)} maps to a valid hgq quantizer: same parameter shape, bounds hold the stored values`, {
    skip: missing.skip,
  }, async () => {
    const model = await loadHgq2Model(path);
    let n = 0;
    for (const l of model.layers) {
      const pairs: [typeof l.iq, (number | null)[]][] = [];
      if (l.iq) pairs.push([l.iq, l.inbound[0]!.shape]);
      (l.iqs ?? []).forEach((q, j) => pairs.push([q, l.inbound[j]!.shape]));
      if (l.kq) pairs.push([l.kq, l.vars.kernel!.shape]);
      if (l.bq) pairs.push([l.bq, l.vars.bias!.shape]);
      for (const [q, inShape] of pairs) {
        const opts = hgq2QuantizerOptions(q!);
        const cfg = resolveQuantizerConfig(opts);
        assert.equal(cfg.qType, q!.qType);
        assert.equal(cfg.overflowMode, q!.overflowMode);
        assert.equal(cfg.isWeight, q!.isWeight, `${q!.group}: is_weight carried over (round-only WRAP biases)`);
        const ours = new Quantizer(opts);
        ours.build(inShape);
        assert.deepEqual(ours.paramShape, q!.shape, `${q!.group}: parameter shape`);
        const v = hgq2QuantizerValues(q!);
        // stored values lie inside the bounds we carry over (HGQ2 clamps to the same constraints)
        for (const x of v.i)
          assert.ok(x >= cfg.iBounds[0] - 1e-6 && x <= cfg.iBounds[1] + 1e-6, `${q!.group}: i=${x} in ${cfg.iBounds}`);
        if (v.b)
          for (const x of v.b)
            assert.ok(x >= cfg.bBounds[0] - 1e-6 && x <= cfg.bBounds[1] + 1e-6, `${q!.group}: b=${x} in ${cfg.bBounds}`);
        if (v.f)
          for (const x of v.f)
            assert.ok(x >= cfg.fBounds[0] - 1e-6 && x <= cfg.fBounds[1] + 1e-6, `${q!.group}: f=${x} in ${cfg.fBounds}`);
        ours.dispose?.();
        n++;
      }
    }
    assert.ok(n >= 8);
  });
}
