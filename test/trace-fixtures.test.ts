/**
 * The five HGQ2 checkpoints (../shared/fixtures/hgq2), imported by src/import and traced: the emulated
 * program equals the imported model's inference bit for bit. Inputs mix three scales per sample (inside
 * the input quantizers' range, 4× and 64× beyond it: saturation and wrap-around). 10,000 samples for the
 * JSC MLPs; 3,000 for the two large models, whose tfjs inference takes ~1.3 ms per sample.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { loadModelAny } from '../src/app/load-model.ts';
import { trace } from '../src/trace/index.ts';
import { makeRng } from './util/rng.ts';
import { compareModel } from './util/trace-models.ts';
import { fixturesMissing, hgq2Fixtures } from './util/hgq2-fixtures.ts';

const missing = fixturesMissing();

test('every HGQ2 fixture: emulator == imported model on random inputs incl. saturation and wrap-around', {
  skip: missing.skip,
}, async () => {
  assert.ok(!missing.failInCi, 'HGQ2 fixtures must be present in CI');
  const rng = makeRng(2026);
  for (const path of hgq2Fixtures()) {
    const m = await loadModelAny(path);
    const p = trace(m);
    const big = /plf|tgc/.test(basename(path));
    const n = big ? 3000 : 10_000;
    const scales = [1, 4, 64];
    const xs = m.inputs.map((x) => {
      const per = (x.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
      const a = new Float32Array(n * per);
      for (let j = 0; j < a.length; j++) a[j] = (rng.next() * 2 - 1) * scales[Math.floor(j / per) % 3]!;
      return a;
    });
    const r = compareModel(m, p, xs, n);
    assert.equal(r.mismatches, 0, `${basename(path)}: ${r.mismatches} of ${r.values} values differ; first: ${r.first}`);
    assert.ok(r.distinct >= 20, `${basename(path)}: only ${r.distinct} distinct outputs`);
    m.dispose();
  }
});
