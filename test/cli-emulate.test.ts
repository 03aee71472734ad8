import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeRng } from './util/rng.ts';
import { randomInputs, randomProgram } from './util/random-program.ts';
import { writeProgram, programToJSON } from '../src/ir/serialize.ts';
import { interpretProgram } from '../src/ir/emulate.ts';
import { formatCsv, parseCsv } from '../src/data/csv.ts';
import { readNpy, writeNpy } from '../src/data/npy.ts';
import { formatDyadic } from '../src/fixed/format.ts';
import { hgqSpawn as hgq } from './util/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hgq-emulate-'));
const rng = makeRng(55);
const prog = randomProgram(rng, { nIn: 4, nOut: 3, nOps: 40 });
const progPath = join(dir, 'p.json');
writeProgram(progPath, prog);
const batch = 500;
const x = randomInputs(rng, 4, batch);
const want = interpretProgram(prog, x, batch);
const wantCsv =
  Array.from({ length: batch }, (_, s) => Array.from(want.subarray(s * 3, s * 3 + 3), formatDyadic).join(',')).join('\n') + '\n';

describe('hgq emulate (spawned)', { concurrency: true }, () => {
  test('CSV in (with header) → exact decimal CSV on stdout equal to the reference interpreter', async () => {
    const f = join(dir, 'x.csv');
    writeFileSync(f, 'a,b,c,d\n' + formatCsv({ data: x, shape: [batch, 4] }));
    const r = await hgq(['emulate', progPath, '--input', f, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const summary = JSON.parse(lines.pop()!);
    assert.equal(summary.samples, batch);
    assert.equal(summary.n_in, 4);
    assert.equal(summary.n_out, 3);
    assert.equal(lines.join('\n') + '\n', wantCsv);
    assert.deepEqual(parseCsv(lines.join('\n')).data, want);
  });

  test('NPY in → NPY out (-o), values exact', async () => {
    const f = join(dir, 'x.npy');
    writeNpy(f, { data: x, shape: [batch, 4] });
    const o = join(dir, 'y.npy');
    const r = await hgq(['emulate', progPath, '-i', f, '-o', o]);
    assert.equal(r.code, 0, r.stderr);
    const y = readNpy(o);
    assert.deepEqual(y.shape, [batch, 3]);
    assert.deepEqual(y.data, want);
  });

  test('CSV in → CSV file out (-o)', async () => {
    const f = join(dir, 'x2.csv');
    writeFileSync(f, formatCsv({ data: x, shape: [batch, 4] }));
    const o = join(dir, 'y.csv');
    const r = await hgq(['emulate', progPath, '-i', f, '-o', o]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(readFileSync(o, 'utf8'), wantCsv);
  });

  test('wrong input width: exit 2 with expected vs got', async () => {
    const f = join(dir, 'narrow.csv');
    writeFileSync(f, '1,2,3\n4,5,6\n');
    const r = await hgq(['emulate', progPath, '-i', f]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /expects 4 input values per sample, but the file has 3 per row/);
    assert.equal(r.stdout, '');
  });

  test('NaN input, malformed CSV, bad program version: exit 2 with the cause', async () => {
    const f = join(dir, 'nan.csv');
    writeFileSync(f, '1,2,3,4\n1,nan,3,4\n');
    const r1 = await hgq(['emulate', progPath, '-i', f]);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /nan\.csv: input sample 1, element 1 is NaN/);
    const g = join(dir, 'bad.csv');
    writeFileSync(g, '1,2,3,4\n1,2,x,4\n');
    const r2 = await hgq(['emulate', progPath, '-i', g]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /bad\.csv: line 2, column 3: 'x' is not a number/);
    const v = join(dir, 'v9.json');
    writeFileSync(v, programToJSON(prog).replace('"version":1', '"version":9'));
    const r3 = await hgq(['emulate', v, '-i', g]);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /v9\.json: IR format version 9, but this hgq reads version 1/);
    const r4 = await hgq(['emulate', progPath]);
    assert.equal(r4.code, 2);
  });
});

test('no temporary files are left behind', async () => {
  // runs after the spawned cases above (node:test runs top-level tests in order)
  assert.ok(readdirSync(dir).every((n) => !n.includes('.tmp')));
});
