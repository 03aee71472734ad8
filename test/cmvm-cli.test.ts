/**
 * `hgq cmvm` end to end: --random with --json (last line), a matrix file emitted as an IR program that the
 * IR reader accepts and the emulator runs to W·x, and bad matrix files rejected with exit 2 and a message.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileProgram } from '../src/ir/emulate.ts';
import { readProgram } from '../src/ir/serialize.ts';
import { parseMatrixCSV, parseMatrixJSON } from '../src/cmvm/matrix-file.ts';
import { hgqSpawnSync } from './util/cli.ts';

const hgq = (args: string[]) => hgqSpawnSync(['cmvm', ...args]);

test('--random --count --json: per-matrix lines and one JSON object last', () => {
  const r = hgq(['--random', '4', '--bits', '8', '--seed', '3', '--count', '3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const j = JSON.parse(lines.at(-1)!) as { mean: Record<string, number>; matrices: Array<Record<string, number>> };
  assert.equal(j.matrices.length, 3);
  for (const m of j.matrices) for (const k of ['adders', 'cost', 'depth', 'ms']) assert.equal(typeof m[k], 'number');
  const mean = j.matrices.reduce((s, m) => s + m.adders!, 0) / 3;
  assert.ok(Math.abs(j.mean.adders! - mean) < 1e-3);
  assert.equal(lines.filter((l) => l.startsWith('matrix ')).length, 3);
});

test('--matrix (CSV, fractional) --emit: the program file runs W·x in the emulator', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-cmvm-'));
  const W = [
    [3, -0.375, 0, 17],
    [0, 0, 0, 0],
    [-5, 2.25, 1, -1],
  ];
  writeFileSync(join(dir, 'w.csv'), W.map((r) => r.join(',')).join('\n') + '\n');
  const out = join(dir, 'p.json');
  const r = hgq(['--matrix', join(dir, 'w.csv'), '--input-type', 'fixed<6,3>', '--dc', '1', '--emit', out, '--verify']);
  assert.equal(r.code, 0, r.stderr);
  const p = readProgram(out);
  const emu = compileProgram(p);
  const xs = [
    [-4, -4, -4, -4],
    [3.875, 3.875, 3.875, 3.875],
    [1.5, -2.25, 0.125, 3],
  ];
  const y = emu.run(new Float64Array(xs.flat()), xs.length);
  xs.forEach((x, s) => W.forEach((row, o) => assert.equal(y[s * 3 + o], row.reduce((a, w, c) => a + w * x[c]!, 0) + 0)));
  assert.match(readFileSync(out, 'utf8'), /"version":1/);
});

test('bad matrix files and options: exit 2 with a message saying what to fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-cmvm-'));
  writeFileSync(join(dir, 'ragged.csv'), '1,2,3\n4,5\n');
  const r = hgq(['--matrix', join(dir, 'ragged.csv')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /row 2 has 2 entries but row 1 has 3/);
  writeFileSync(join(dir, 'tenth.json'), '[[0.1, 2]]');
  const t = hgq(['--matrix', join(dir, 'tenth.json')]);
  assert.equal(t.code, 2);
  assert.match(t.stderr, /not an exact fixed-point number/);
  assert.equal(hgq(['--matrix', join(dir, 'missing.csv')]).code, 2);
  const u = hgq(['--random', '4', '--dc', '-3']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /--dc must be an integer/);
});

test('matrix file errors say what is wrong', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['word.csv', '1,two\n', /"two" is not a number/],
    ['tenth.csv', '0.1,1\n', /0\.1 is not a fixed-point number/],
    ['empty.csv', '\n\n', /the matrix is empty/],
    ['blank.csv', '1,,2\n', /empty entry/],
    ['obj.json', '{"a": 1}', /expected a JSON array of rows/],
    ['broken.json', '[[1, 2]', /not valid JSON/],
    ['ragged.json', '[[1, 2], [3]]', /row 2 has 1 entries but row 1 has 2/],
    ['row.json', '[1, 2]', /row 1 is not an array/],
    ['nan.json', '[[1, null]]', /null is not a number/],
    ['empty.json', '[]', /the matrix is empty/],
    ['huge.csv', '1e30\n', /too large/],
  ];
  for (const [name, text, re] of cases) {
    const parse = name.endsWith('.json') ? parseMatrixJSON : parseMatrixCSV;
    assert.throws(() => parse(text, name), re, name);
  }
});

test('matrix parsing: exact dyadic decimals accepted, row/column conventions kept', () => {
  assert.deepEqual(parseMatrixCSV('1, -0.5\n0.125,3e2\n', 'm.csv'), [
    [1, -0.5],
    [0.125, 300],
  ]);
  assert.deepEqual(parseMatrixJSON('[[1, "-0.75"], [2.5, 0]]', 'm.json'), [
    [1, -0.75],
    [2.5, 0],
  ]);
  // 2^-40 is a fixed-point number, but with more fraction bits than supported
  assert.throws(() => parseMatrixCSV('0.0000000000009094947017729282379150390625\n', 'm.csv'), /40 fraction bits/);
});
