import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import JSZip from 'jszip';
import { readKerasArchive, parsePythonJson } from '../src/import/keras-archive.ts';
import { hgq2ModelFromArchive, quantizerKif } from '../src/import/hgq2-model.ts';
import { ebopsFromFileName } from '../src/import/ebops.ts';
import { hgq2Fixtures, fixturesMissing, HGQ2_FIXTURE_DIR } from './util/hgq2-fixtures.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();
const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

if (missing.skip) test('HGQ2 fixture tests', { skip: missing.skip }, () => {});
if (missing.failInCi) {
  test('HGQ2 fixtures are present in CI', () => {
    assert.fail(`CI=true but no .keras fixtures in ${HGQ2_FIXTURE_DIR}`);
  });
}

test('parsePythonJson accepts the Infinity/NaN tokens Python writes, and only outside strings', () => {
  const v = parsePythonJson('{"a": Infinity, "b": [-Infinity, NaN], "s": "NaN and Infinity \\" stay", "n": 1.5}');
  assert.equal(v.a, Infinity);
  assert.equal(v.b[0], -Infinity);
  assert.ok(Number.isNaN(v.b[1]));
  assert.equal(v.s, 'NaN and Infinity " stay');
  assert.equal(v.n, 1.5);
});

for (const path of fixtures) {
  test(`reads every dataset of ${basename(path)} and decodes the HGQ2 state`, { skip: missing.skip }, async () => {
    const ar = await readKerasArchive(path);
    assert.equal(ar.config.class_name, 'Functional');
    assert.match(String(ar.metadata.keras_version), /^3\./);
    assert.ok(ar.weights.size > 20);
    for (const [p, t] of ar.weights) {
      assert.equal(t.data.length, prod(t.shape), `${p}: data length matches shape`);
      assert.ok(['float32', 'uint8', 'uint32', 'int32', 'int64'].includes(t.dtype), `${p}: dtype ${t.dtype}`);
    }
    // The per-layer uint32 `ebops` variables sum to the EBOPs HGQ2 logged in the file name: a check of
    // dtype decoding, scalar datasets and the group walk at once.
    const model = hgq2ModelFromArchive(ar);
    let stored = 0;
    for (const l of model.layers) if (l.vars.ebops) stored += Number(l.vars.ebops.data[0]);
    assert.equal(stored, ebopsFromFileName(path));
    // Each saved layer's group carries its name (Keras ≥ 3.x), matching the decoded mapping.
    for (const l of model.layers) if (l.group) assert.equal(ar.groupAttrs.get(`${l.group}/vars`)?.name, l.name);
    // Shapes agree with the config: kernel and quantizer shapes, k ∈ {0,1}, integer bit widths in bounds.
    for (const l of model.layers) {
      const kernel = l.vars.kernel;
      if (kernel && l.kq) assert.deepEqual(l.kq.shape, kernel.shape, `${l.name}: per-weight kernel quantizer`);
      if (l.className === 'QDense') assert.deepEqual(kernel!.shape, [l.inbound[0]!.shape.at(-1), l.config.units]);
      if (l.className === 'QEinsumDenseBatchnorm') {
        for (const v of ['bias', 'gamma', 'moving_mean', 'moving_variance'])
          assert.deepEqual(l.vars[v]!.shape, [kernel!.shape.at(-1)]);
        for (const v of l.vars.moving_variance!.data) assert.ok(Number(v) >= 0, `${l.name}: variance ≥ 0`);
      }
      for (const q of [l.iq, l.kq, l.bq, ...(l.iqs ?? [])]) {
        if (!q) continue;
        for (const k of q.k) assert.ok(k === 0 || k === 1);
        const kif = quantizerKif(q);
        if (q.qType === 'kbi' && q.bounds.b)
          for (let j = 0; j < q.k.length; j++) {
            const b = kif.i[j]! + kif.f[j]!;
            assert.ok(b >= q.bounds.b[0] && b <= q.bounds.b[1], `${q.group}: b=${b} within ${q.bounds.b}`);
          }
      }
    }
  });
}

// ---- error cases --------------------------------------------------------------------------------------

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hgq-import-test-'));
}

async function rejectsWith(path: string, ...patterns: RegExp[]) {
  await assert.rejects(readKerasArchive(path), (e: Error) => {
    assert.ok(e.message.startsWith(path), `message names the file: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('a non-zip file is rejected as not a zip', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'model.keras');
    writeFileSync(p, '{"this": "is json, not a zip"}');
    await rejectsWith(p, /not a zip/);
    const empty = join(dir, 'empty.keras');
    writeFileSync(empty, '');
    await rejectsWith(empty, /not a zip/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing file is reported with its path', async () => {
  const dir = tmp();
  try {
    await rejectsWith(join(dir, 'nope.keras'), /cannot read the file \(ENOENT\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a zip without model.weights.h5 is rejected naming the missing member', async () => {
  const dir = tmp();
  try {
    const zip = new JSZip();
    zip.file('config.json', '{"class_name": "Functional", "config": {"layers": []}}');
    zip.file('metadata.json', '{"keras_version": "3.11.2"}');
    const p = join(dir, 'no-weights.keras');
    writeFileSync(p, await zip.generateAsync({ type: 'uint8array' }));
    await rejectsWith(p, /no model\.weights\.h5/, /members: config\.json, metadata\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a zip whose model.weights.h5 is not HDF5 is rejected', async () => {
  const dir = tmp();
  try {
    const zip = new JSZip();
    zip.file('config.json', '{}');
    zip.file('metadata.json', '{}');
    zip.file('model.weights.h5', 'definitely not an HDF5 file, just some text that is long enough');
    const p = join(dir, 'bad-h5.keras');
    writeFileSync(p, await zip.generateAsync({ type: 'uint8array' }));
    await rejectsWith(p, /model\.weights\.h5/, /not a readable HDF5 file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('truncated and corrupted archives are rejected', { skip: missing.skip }, async () => {
  const dir = tmp();
  try {
    const bytes = readFileSync(fixtures[0]!);
    for (const keep of [bytes.length - 1, Math.floor(bytes.length / 2), 100]) {
      const p = join(dir, `truncated-${keep}.keras`);
      writeFileSync(p, bytes.subarray(0, keep));
      await rejectsWith(p, /truncated or corrupted/);
    }
    // one flipped byte inside the (stored, uncompressed) weights: only the CRC check can see it
    const bad = Buffer.from(bytes);
    bad[Math.floor(bad.length / 2)] ^= 0xff;
    const p = join(dir, 'corrupt.keras');
    writeFileSync(p, bad);
    await rejectsWith(p, /CRC32|corrupted/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('weights that do not match the config (a missing variable) are rejected naming it', { skip: missing.skip }, async () => {
  const dir = tmp();
  try {
    // config of the three-input muon model, weights of a jet tagger: the muon layers' variables are missing.
    const muon = fixtures.find((f) => basename(f).startsWith('tgc'))!;
    const jet = fixtures.find((f) => basename(f).startsWith('jsc_openml'))!;
    const a = await JSZip.loadAsync(readFileSync(muon));
    const b = await JSZip.loadAsync(readFileSync(jet));
    const zip = new JSZip();
    zip.file('config.json', await a.file('config.json')!.async('uint8array'));
    zip.file('metadata.json', await a.file('metadata.json')!.async('uint8array'));
    zip.file('model.weights.h5', await b.file('model.weights.h5')!.async('uint8array'));
    const p = join(dir, 'mismatch.keras');
    writeFileSync(p, await zip.generateAsync({ type: 'uint8array' }));
    const ar = await readKerasArchive(p);
    assert.throws(
      () => hgq2ModelFromArchive(ar),
      (e: Error) => {
        assert.ok(e.message.startsWith(p));
        assert.match(e.message, /(has no dataset layers\/\S+|cannot find the weights of layer)/);
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unsupported layer class is rejected naming the layer and the file', { skip: missing.skip }, async () => {
  const ar = await readKerasArchive(fixtures[0]!);
  const cfg = structuredClone(ar.config);
  cfg.config.layers[1].class_name = 'QLinformerAttention';
  assert.throws(
    () => hgq2ModelFromArchive({ ...ar, config: cfg }),
    (e: Error) => {
      assert.ok(e.message.startsWith(fixtures[0]!));
      assert.match(e.message, /layer '\w+' has class QLinformerAttention, which hgq import does not support/);
      return true;
    },
  );
});

test('a Sequential config (layers in order, no inbound nodes) decodes like the functional one', {
  skip: missing.skip,
}, async () => {
  const path = fixtures.find((f) => basename(f).startsWith('jsc_openml'))!;
  const ar = await readKerasArchive(path);
  const seqCfg = {
    class_name: 'Sequential',
    config: {
      name: 'sequential',
      layers: ar.config.config.layers.map((L: any) => {
        const { inbound_nodes: _drop, ...rest } = L;
        void _drop;
        return rest;
      }),
    },
  };
  const fn = hgq2ModelFromArchive(ar);
  const seq = hgq2ModelFromArchive({ ...ar, config: seqCfg });
  assert.deepEqual(seq.inputs, fn.inputs);
  assert.deepEqual(seq.outputs, fn.outputs);
  assert.deepEqual(
    seq.layers.map((l) => [l.name, l.group, l.inbound.map((r) => [r.layer, r.shape])]),
    fn.layers.map((l) => [l.name, l.group, l.inbound.map((r) => [r.layer, r.shape])]),
  );
  const noInput = { ...seqCfg, config: { ...seqCfg.config, layers: seqCfg.config.layers.slice(1) } };
  assert.throws(() => hgq2ModelFromArchive({ ...ar, config: noInput }), /comes before any InputLayer|no InputLayer/);
});
