/**
 * Corrupt checkpoints are bad input: `hgq trace` and `hgq convert` exit 2 naming the broken file and what is
 * wrong with it (never "internal error"); the loader checks weight byte counts against the manifest and
 * refuses weight paths that leave the model folder. The CLI runs in-process (main()) to share one tfjs.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { hgqInProcess as hgqIn } from './util/cli.ts';
import { loadModelAny } from '../src/app/load-model.ts';
import { QDense } from '../src/layers/dense.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { saveModel } from '../src/train/io.ts';
import { ModelFileError } from '../src/util/user-files.ts';

type Json = {
  modelTopology: { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
  weightsManifest: { paths: string[]; weights: { shape: number[]; dtype: string }[] }[];
};

const root = mkdtempSync(join(tmpdir(), 'hgq-modelfiles-'));
const good = join(root, 'good');

/** A copy of the good model with `edit` applied to its folder. */
function corrupt(name: string, edit: (dir: string) => void): string {
  const dir = join(root, name);
  cpSync(good, dir, { recursive: true });
  edit(dir);
  return dir;
}
function editJson(dir: string, f: (j: Json) => void): void {
  const p = join(dir, 'model.json');
  const j = JSON.parse(readFileSync(p, 'utf8')) as Json;
  f(j);
  writeFileSync(p, JSON.stringify(j));
}

/** Overwrite element `j` of weight `name` in weights.bin (float32, manifest order). */
function writeFloat(dir: string, name: string, j: number, v: number): void {
  const j0 = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as {
    weightsManifest: { weights: { name: string; shape: number[] }[] }[];
  };
  let offset = 0;
  for (const w of j0.weightsManifest[0]!.weights) {
    if (w.name === name) break;
    offset += 4 * w.shape.reduce((a, b) => a * b, 1);
  }
  const buf = readFileSync(join(dir, 'weights.bin'));
  buf.writeFloatLE(v, offset + 4 * j);
  writeFileSync(join(dir, 'weights.bin'), buf);
}

describe('corrupt model folders', () => {
  before(async () => {
    await initBackend();
    const m = tf.sequential();
    m.add(new QDense({ units: 3, inputShape: [4] }));
    m.add(new QDense({ units: 2 }));
    calibrate(m, tf.randomUniform([16, 4], -9, 9, 'float32', 1), { reset: true });
    await saveModel(m, good);
  });

  test('the intact model traces (exit 0): the corruptions below are what fails', async () => {
    const r = await hgqIn(['trace', good, '-o', join(root, 'ok.json')]);
    assert.equal(r.status, 0, r.stderr);
  });

  const bytes = (d: string): number => readFileSync(join(d, 'weights.bin')).byteLength;
  const cases: [string, (dir: string) => void, (dir: string) => RegExp][] = [
    [
      'truncated weights',
      (d) => writeFileSync(join(d, 'weights.bin'), readFileSync(join(d, 'weights.bin')).subarray(0, 200)),
      (d) => new RegExp(`${d}/weights\\.bin: holds 200 bytes but model\\.json describes \\d+ bytes .*truncated`),
    ],
    [
      'one byte short',
      (d) => writeFileSync(join(d, 'weights.bin'), readFileSync(join(d, 'weights.bin')).subarray(0, bytes(d) - 1)),
      () => /weights\.bin: holds \d+ bytes .*truncated/,
    ],
    [
      'extra bytes',
      (d) => writeFileSync(join(d, 'weights.bin'), Buffer.concat([readFileSync(join(d, 'weights.bin')), Buffer.alloc(4)])),
      () => /weights\.bin: holds \d+ bytes .*longer than described/,
    ],
    ['deleted weights', (d) => rmSync(join(d, 'weights.bin')), (d) => new RegExp(`${d}/weights\\.bin: weight file is missing`)],
    [
      'weights is a folder',
      (d) => (rmSync(join(d, 'weights.bin')), mkdirSync(join(d, 'weights.bin'))),
      () => /weights\.bin: weight file is not a regular file/,
    ],
    [
      'truncated model.json',
      (d) => writeFileSync(join(d, 'model.json'), readFileSync(join(d, 'model.json')).subarray(0, 500)),
      (d) => new RegExp(`${d}/model\\.json: not valid JSON .*truncated`),
    ],
    ['empty object model.json', (d) => writeFileSync(join(d, 'model.json'), '{}'), () => /model\.json: no modelTopology/],
    ['null model.json', (d) => writeFileSync(join(d, 'model.json'), 'null'), () => /model\.json: no modelTopology/],
    [
      'no weightsManifest',
      (d) => editJson(d, (j) => delete (j as Partial<Json>).weightsManifest),
      () => /model\.json: no weightsManifest/,
    ],
    [
      'malformed manifest',
      (d) => editJson(d, (j) => (j.weightsManifest[0]!.weights[0]!.shape = [-1])),
      () => /model\.json: weightsManifest\[0\]: weight .* needs a name, a shape/,
    ],
    [
      'unknown layer class',
      (d) => editJson(d, (j) => (j.modelTopology.config.layers[1]!.class_name = 'QFrobnicate')),
      () => /model\.json: unknown layer class "QFrobnicate"/,
    ],
    [
      'config that builds other shapes',
      (d) => editJson(d, (j) => (j.modelTopology.config.layers[0]!.config['units'] = 5)),
      () => /model\.json: the weights do not fit the layers' shapes/,
    ],
    [
      'manifest shapes swapped',
      (d) => editJson(d, (j) => (j.weightsManifest[0]!.weights[1]!.shape = [3, 4])),
      () => /model\.json: the weights do not fit the layers' shapes/,
    ],
    [
      'layer config refused by its class',
      (d) => editJson(d, (j) => (j.modelTopology.config.layers[0]!.config['units'] = -3)),
      () => /model\.json: cannot be built into a model: QDense .*units must be a positive integer/,
    ],
    [
      'weight path outside the folder',
      (d) => editJson(d, (j) => (j.weightsManifest[0]!.paths = ['../good/weights.bin'])),
      () => /model\.json: weight file "\.\.\/good\/weights\.bin" is outside the model folder/,
    ],
    [
      'absolute weight path',
      (d) => editJson(d, (j) => (j.weightsManifest[0]!.paths = ['/etc/passwd'])),
      () => /model\.json: weight file "\/etc\/passwd" is outside the model folder/,
    ],
    [
      'NaN in a weight',
      (d) => writeFloat(d, 'q_dense_QDense1/kernel', 2, NaN),
      (d) => new RegExp(`${d}/weights\\.bin: weight q_dense_QDense1/kernel holds NaN at element 2`),
    ],
    [
      'Infinity in a quantizer width',
      (d) => writeFloat(d, 'q_dense_QDense2/iq_f', 0, -Infinity),
      () => /weights\.bin: weight q_dense_QDense2\/iq_f holds -Infinity at element 0/,
    ],
    [
      'files listed: none',
      (d) => editJson(d, (j) => (j.weightsManifest[0]!.paths = [])),
      () => /model\.json: weightsManifest lists \d+ weights but no file/,
    ],
    [
      'unknown dtype',
      (d) => editJson(d, (j) => (j.weightsManifest[0]!.weights[0]!.dtype = 'float64')),
      () => /model\.json: weight .* has unknown dtype "float64"/,
    ],
    [
      'weights linking outside',
      (d) => (rmSync(join(d, 'weights.bin')), symlinkSync(join(good, 'weights.bin'), join(d, 'weights.bin'))),
      () => /weights\.bin: links outside the model folder/,
    ],
  ];

  for (const [name, edit, expect] of cases) {
    test(`${name}: trace exits 2 naming the file and the defect`, async () => {
      const dir = corrupt(name.replace(/\W+/g, '-'), edit);
      const out = join(root, `${name.replace(/\W+/g, '-')}.program.json`);
      const r = await hgqIn(['trace', dir, '-o', out]);
      assert.equal(r.status, 2, r.stderr);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.match(r.stderr, expect(dir));
      assert.ok(!existsSync(out), 'nothing written');
      await assert.rejects(loadModelAny(dir), (e: unknown) => e instanceof ModelFileError && e.message.startsWith(e.path));
    });
  }

  test('convert takes the same path: a truncated checkpoint is exit 2 before any project is written', async () => {
    const dir = corrupt('convert-trunc', (d) => writeFileSync(join(d, 'weights.bin'), Buffer.alloc(8)));
    const prj = join(root, 'prj');
    const r = await hgqIn(['convert', dir, prj]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /weights\.bin: holds 8 bytes/);
    assert.ok(!existsSync(join(prj, 'summary.json')));
  });

  test('a truncated .keras archive is exit 2 naming it', async () => {
    const keras = join(root, 'cut.keras');
    writeFileSync(keras, Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100)]));
    const r = await hgqIn(['trace', keras, '-o', join(root, 'k.json')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /cut\.keras: .*(truncated|corrupt)/);
  });
});
