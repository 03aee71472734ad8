/** `hgq import`: end to end on a fixture, atomic output, exit codes and messages for bad input. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadModelAny } from '../src/app/load-model.ts';
import { hgq2StyleEbops } from '../src/import/hgq2-build.ts';
import { hgq2Fixtures, fixturesMissing } from './util/hgq2-fixtures.ts';
import { hgqSpawn } from './util/cli.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();
const small = fixtures.find((f) => basename(f).startsWith('jsc_openml-val_acc=0.733'));
const tgc = fixtures.find((f) => basename(f).startsWith('tgc'));

describe('hgq import (spawned)', { concurrency: true }, () => {
  test('hgq import <fixture> -o <dir> --json: writes a loadable model, prints the layers and EBOPs', {
    skip: missing.skip || !tgc ? 'fixtures absent' : false,
  }, async () => {
    const parent = mkdtempSync(join(tmpdir(), 'hgq-cli-import-'));
    const out = join(parent, 'tgc');
    const r = await hgqSpawn(['import', tgc!, '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['.hgq-output.json', 'model.json', 'weights.bin']);
    assert.equal(
      JSON.parse(readFileSync(join(out, '.hgq-output.json'), 'utf8')).kind,
      'model',
      'the folder is marked as an hgq model',
    );
    assert.deepEqual(readdirSync(parent), ['tgc'], 'no temp directories left');
    const lines = r.stdout.trimEnd().split('\n');
    const s = JSON.parse(lines.at(-1)!);
    assert.equal(s.ebops_logged, 32445);
    assert.ok(Math.abs(s.ebops - 32445) / 32445 < 0.02);
    assert.ok(s.layers.some((l: { className: string }) => l.className === 'GetItem'));
    assert.match(r.stdout, /q_einsum|QEinsumDenseBatchnorm/);
    assert.match(r.stdout, new RegExp(`EBOPs ${s.ebops} \\(HGQ2 logged 32445`));
    const m = await loadModelAny(out);
    assert.equal(m.inputs.length, 3);
    assert.equal(hgq2StyleEbops(m).total, s.ebops);
    // importing again over our own model directory replaces it
    const again = await hgqSpawn(['import', tgc!, '-o', out]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(readdirSync(parent), ['tgc']);
  });

  test('hgq import: bad input exits 2 with a message and leaves nothing in the output directory', {
    skip: missing.skip || !small ? 'fixtures absent' : false,
  }, async () => {
    const parent = mkdtempSync(join(tmpdir(), 'hgq-cli-import-bad-'));
    // a truncated archive
    const bytes = readFileSync(small!);
    const trunc = join(parent, 'truncated.keras');
    writeFileSync(trunc, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const outDir = join(parent, 'out');
    // a doctored archive with an unsupported layer: the message names the layer and the file
    const JSZip = (await import('jszip')).default;
    const zip = await JSZip.loadAsync(bytes);
    const cfg = (await zip.file('config.json')!.async('string')).replace('"class_name": "QDense"', '"class_name": "QDenseLoRA"');
    zip.file('config.json', cfg);
    const doctored = join(parent, 'doctored.keras');
    writeFileSync(doctored, await zip.generateAsync({ type: 'nodebuffer' }));
    const busy = join(parent, 'busy');
    mkdirSync(busy);
    copyFileSync(small!, join(busy, 'keep.keras'));
    const [rTrunc, rDoct, rNone, rBusy, rNoOut] = await Promise.all([
      hgqSpawn(['import', trunc, '-o', outDir]),
      hgqSpawn(['import', doctored, '-o', outDir]),
      hgqSpawn(['import', join(parent, 'none.keras'), '-o', outDir]),
      hgqSpawn(['import', small!, '-o', busy]),
      hgqSpawn(['import', small!]),
    ]);
    assert.equal(rTrunc.code, 2, rTrunc.stderr);
    assert.match(rTrunc.stderr, /truncated\.keras/);
    assert.equal(rDoct.code, 2, rDoct.stderr);
    assert.match(rDoct.stderr, /doctored\.keras.*'out'.*QDenseLoRA/);
    assert.equal(rNone.code, 2);
    assert.match(rNone.stderr, /none\.keras: no such file/);
    assert.equal(rBusy.code, 2);
    assert.match(rBusy.stderr, /was not written by hgq/);
    assert.deepEqual(readdirSync(busy), ['keep.keras']);
    assert.equal(rNoOut.code, 2);
    assert.match(rNoOut.stderr, /--out/);
    assert.ok(!existsSync(outDir), 'no output directory after failed imports');
    assert.deepEqual(readdirSync(parent).sort(), ['busy', 'doctored.keras', 'truncated.keras'], 'no temp directories left');
  });
});
