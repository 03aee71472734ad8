/**
 * `hgq train` with HGQ-LUT table layers in a spec's layer list (issue #14: "a hybrid model trains, traces and
 * verifies"): a QDense → QDenseT (batch norm) → QDenseT hybrid trains on the wasm engine through the CLI,
 * its checkpoints convert and verify in Verilator with 0 mismatches, and the float reference refuses table
 * layers by name before any work.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { needTool } from './backends-fixtures.ts';
import { hgqSpawn } from './util/cli.ts';
import { mulberry32 } from '../src/util/random.ts';

const dir = mkdtempSync(join(tmpdir(), 'hgq-train-table-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** 600 rows of 5 features; 3 classes from a nonlinear score (a table layer's per-edge functions can fit it). */
function writeTable(path: string): void {
  const rng = mulberry32(11);
  const lines = ['a,b,c,d,e,label'];
  for (let r = 0; r < 600; r++) {
    const x = Array.from({ length: 5 }, () => 2 * rng() - 1);
    const s = Math.sin(3 * x[0]!) + x[1]! * x[1]! - 0.5 * x[2]!;
    lines.push([...x.map((v) => v.toFixed(4)), s < 0 ? 0 : s < 0.7 ? 1 : 2].join(','));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

function spec(out: string, quantize: boolean): string {
  return JSON.stringify({
    data: { task: 'classification', train: { path: 'table.csv', label: 'label' } },
    model: {
      layers: [
        { type: 'QDense', units: 6, activation: 'relu' },
        { type: 'QDenseT', n_out: 4, d_hl: 4, batch_norm: true },
        { type: 'QDenseT', n_out: 3, d_hl: 4, subnn_activation: 'relu' },
      ],
    },
    training: { epochs: 4, batch_size: 64, seed: 2, threads: 1, quantize, beta: { schedule: '0:1e-7,3:1e-5' } },
    out,
  });
}

test('a hybrid QDense → QDenseT → QDenseT spec trains on the wasm engine; its cheapest and best checkpoints verify in Verilator', async (t) => {
  writeTable(join(dir, 'table.csv'));
  writeFileSync(join(dir, 'hybrid.json'), spec('run', true));
  const r = await hgqSpawn(['train', join(dir, 'hybrid.json'), '--no-progress']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /cannot train this model/, 'trained on the engine, no tfjs fallback');
  assert.match(r.stdout, /on the wasm engine/);
  // table EBOPs hold fractions (float32): the front table shows them to one decimal, not as 1767.5999755859375
  assert.match(r.stdout, /\s\d+(\.\d)?\s+checkpoints\/epoch-/);
  assert.doesNotMatch(r.stdout, /\d\.\d{2,}\s+checkpoints\//);
  const front = JSON.parse(readFileSync(join(dir, 'run', 'front.json'), 'utf8'));
  assert.ok(front.checkpoints.length >= 1);
  const model = JSON.parse(readFileSync(join(dir, 'run', front.checkpoints[0].path, 'model.json'), 'utf8'));
  assert.match(JSON.stringify(model), /QDenseT/, 'the checkpoint holds the table layers');
  if (!needTool(t, 'verilator')) return;
  const picks = new Set([front.checkpoints[0].path, front.checkpoints.at(-1).path]);
  for (const path of picks) {
    const prj = join(dir, `prj-${path.replace(/\W/g, '-')}`);
    const c = await hgqSpawn([
      'convert',
      join(dir, 'run', path),
      prj,
      '--latency-cutoff',
      '2',
      '--validate',
      '500',
      '--verify',
      '1000',
    ]);
    assert.equal(c.code, 0, c.stderr);
    const summary = JSON.parse(readFileSync(join(prj, 'summary.json'), 'utf8'));
    assert.equal(summary.verified_vectors, 1000, path);
    assert.equal(summary.mismatches, 0, path);
    assert.match(c.stdout, /validate: 0 mismatching of 500/);
  }
});

test('training.quantize: false with a table layer is exit 2 naming the layer, before a run folder exists', async () => {
  writeTable(join(dir, 'table.csv'));
  writeFileSync(join(dir, 'float.json'), spec('run-float', false));
  const r = await hgqSpawn(['train', join(dir, 'float.json'), '--no-progress']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /model\.layers\[1\] \(QDenseT\): training\.quantize: false has no float counterpart for QDenseT/);
  assert.ok(!existsSync(join(dir, 'run-float')));
});
