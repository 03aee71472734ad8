/**
 * `hgq convert` never deletes a directory it did not write: an existing output directory is replaced only
 * when it is empty or an earlier hgq project (has summary.json); anything else is refused with exit 2
 * before any work, and left untouched.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeProgram } from '../src/ir/serialize.ts';
import { coveringProgram } from './backends-fixtures.ts';
import { hgqSpawnSync as hgq } from './util/cli.ts';


test('convert refuses a non-empty directory that is not an hgq project, and replaces its own projects', () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-outdir-'));
  try {
    const prog = join(root, 'p.json');
    writeProgram(prog, coveringProgram(100, 60, 6));

    const userDir = join(root, 'mine');
    mkdirSync(userDir);
    writeFileSync(join(userDir, 'notes.txt'), 'precious');
    const refused = hgq(['convert', prog, userDir]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /not an hgq project/);
    assert.equal(readFileSync(join(userDir, 'notes.txt'), 'utf8'), 'precious');
    assert.equal(existsSync(join(userDir, 'summary.json')), false);

    const empty = join(root, 'empty');
    mkdirSync(empty);
    const first = hgq(['convert', prog, empty]);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(existsSync(join(empty, 'summary.json')));

    writeFileSync(join(empty, 'stale.txt'), 'old project file');
    const again = hgq(['convert', prog, empty, '--latency-cutoff', '1']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(existsSync(join(empty, 'stale.txt')), false, 'an earlier project is replaced whole');
    assert.equal(JSON.parse(readFileSync(join(empty, 'summary.json'), 'utf8')).latency_cutoff, 1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
