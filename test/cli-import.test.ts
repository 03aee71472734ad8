/** `hgq import`: end to end on a fixture, atomic output, exit codes and messages for bad input. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadModelAny } from '../src/app/load-model.ts';
import { hgq2StyleEbops } from '../src/import/hgq2-build.ts';
import { hgq2Fixtures, fixturesMissing } from './util/hgq2-fixtures.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();
const small = fixtures.find((f) => basename(f).startsWith('jsc_openml-val_acc=0.733'));
const tgc = fixtures.find((f) => basename(f).startsWith('tgc'));

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Run the CLI in a child process (the test runner talks to its parent over this process's stdout). */
function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/hgq.js', ...args], { cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('hgq import (spawned)', { concurrency: true }, () => {
test('hgq import <fixture> -o <dir> --json: writes a loadable model, prints the layers and EBOPs', { skip: missing.skip || !tgc ? 'fixtures absent' : false }, async () => {
  const parent = mkdtempSync(join(tmpdir(), 'hgq-cli-import-'));
  const out = join(parent, 'tgc');
  const r = await run(['import', tgc!, '-o', out, '--json']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(readdirSync(out).sort(), ['.hgq-output.json', 'model.json', 'weights.bin']);
  assert.equal(JSON.parse(readFileSync(join(out, '.hgq-output.json'), 'utf8')).kind, 'model', 'the folder is marked as an hgq model');
  assert.deepEqual(readdirSync(parent), ['tgc'], 'no temp directories left');
  const lines = r.out.trimEnd().split('\n');
  const s = JSON.parse(lines.at(-1)!);
  assert.equal(s.ebops_logged, 32445);
  assert.ok(Math.abs(s.ebops - 32445) / 32445 < 0.02);
  assert.ok(s.layers.some((l: { className: string }) => l.className === 'GetItem'));
  assert.match(r.out, /q_einsum|QEinsumDenseBatchnorm/);
  assert.match(r.out, new RegExp(`EBOPs ${s.ebops} \\(HGQ2 logged 32445`));
  const m = await loadModelAny(out);
  assert.equal(m.inputs.length, 3);
  assert.equal(hgq2StyleEbops(m).total, s.ebops);
  // importing again over our own model directory replaces it
  const again = await run(['import', tgc!, '-o', out]);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(readdirSync(parent), ['tgc']);
});

test('hgq import: bad input exits 2 with a message and leaves nothing in the output directory', { skip: missing.skip || !small ? 'fixtures absent' : false }, async () => {
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
    run(['import', trunc, '-o', outDir]),
    run(['import', doctored, '-o', outDir]),
    run(['import', join(parent, 'none.keras'), '-o', outDir]),
    run(['import', small!, '-o', busy]),
    run(['import', small!]),
  ]);
  assert.equal(rTrunc.code, 2, rTrunc.err);
  assert.match(rTrunc.err, /truncated\.keras/);
  assert.equal(rDoct.code, 2, rDoct.err);
  assert.match(rDoct.err, /doctored\.keras.*'out'.*QDenseLoRA/);
  assert.equal(rNone.code, 2);
  assert.match(rNone.err, /none\.keras: no such file/);
  assert.equal(rBusy.code, 2);
  assert.match(rBusy.err, /was not written by hgq/);
  assert.deepEqual(readdirSync(busy), ['keep.keras']);
  assert.equal(rNoOut.code, 2);
  assert.match(rNoOut.err, /--out/);
  assert.ok(!existsSync(outDir), 'no output directory after failed imports');
  assert.deepEqual(readdirSync(parent).sort(), ['busy', 'doctored.keras', 'truncated.keras'], 'no temp directories left');
});
});
