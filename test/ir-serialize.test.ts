import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRng } from './util/rng.ts';
import { randomInputs, randomProgram } from './util/random-program.ts';
import { programFromJSON, programToJSON, readProgram, writeProgram } from '../src/ir/serialize.ts';
import { compileProgram } from '../src/ir/emulate.ts';

test('JSON round trip preserves programs exactly (and their emulator outputs)', () => {
  const rng = makeRng(11);
  for (let t = 0; t < 100; t++) {
    const p = randomProgram(rng);
    const q = programFromJSON(programToJSON(p));
    assert.deepEqual(q, JSON.parse(JSON.stringify(p)));
    const x = randomInputs(rng, p.inputs[0]!.shape[0]!, 20);
    assert.deepEqual(compileProgram(q).run(x, 20), compileProgram(p).run(x, 20));
  }
});

test('writeProgram/readProgram go through a temporary file and leave only the target', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-ir-'));
  const p = randomProgram(makeRng(5));
  writeProgram(join(dir, 'p.json'), p);
  assert.deepEqual(readdirSync(dir), ['p.json']);
  assert.deepEqual(readProgram(join(dir, 'p.json')), JSON.parse(JSON.stringify(p)));
});

test('other versions, corrupt and truncated files give clear errors naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-ir-'));
  const p = randomProgram(makeRng(6));
  const text = programToJSON(p);
  const f = join(dir, 'v2.json');
  writeFileSync(f, text.replace('"version":1', '"version":2'));
  assert.throws(
    () => readProgram(f),
    new RegExp(`${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: IR format version 2, but this hgq reads version 1`),
  );
  const g = join(dir, 'trunc.json');
  writeFileSync(g, text.slice(0, text.length / 2));
  assert.throws(() => readProgram(g), /trunc\.json: not valid JSON, the file is corrupt or truncated/);
  assert.throws(() => programFromJSON('[1,2]', 'a.json'), /a\.json: not an hgq IR program/);
  assert.throws(() => programFromJSON('{"name":"x"}', 'b.json'), /b\.json: not an hgq IR program \(no "version" field\)/);
  const bad = JSON.parse(text);
  bad.ops[bad.ops.length - 1].qint.max += 1024;
  assert.throws(() => programFromJSON(JSON.stringify(bad), 'c.json'), /c\.json: invalid program .*op \d+ .*stored qint/);
  assert.throws(() => readProgram(join(dir, 'missing.json')), /missing\.json: cannot read the program/);
  assert.equal(readFileSync(f, 'utf8').length > 0, true);
});
