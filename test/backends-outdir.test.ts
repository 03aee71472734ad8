/**
 * `hgq convert` never deletes or overwrites what it did not write (docs/run-folder.md): an output folder is
 * replaced only when it is absent, empty, or a project hgq wrote (ownership marker) holding nothing else;
 * anything else is refused with exit 2 before any work, and left untouched. Bad places (a file as parent, a
 * file as output folder) are exit 2 naming the path; failed writes leave no temporaries; a concurrent
 * convert into the same folder is refused; a SIGKILLed convert leaves nothing a later run does not clean.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeProgram } from '../src/ir/serialize.ts';
import { MARKER, listFiles, readMarker } from '../src/util/fs.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';
import { descendants, hgq, hgqInProcess, killAll, startHgq, waitFor } from './util/cli.ts';

function setup(): { root: string; prog: string } {
  const root = mkdtempSync(join(tmpdir(), 'hgq-outdir-'));
  const prog = join(root, 'p.json');
  writeProgram(prog, coveringProgram(100, 40, 4));
  return { root, prog };
}

/** Every file below `dir` with its content: to show a refused command touched nothing. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(listFiles(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

test('convert refuses folders it did not write (user files, a bare summary.json, a legacy project) and touches nothing', async () => {
  const { root, prog } = setup();
  try {
    const cases: [string, Record<string, string>, RegExp][] = [
      ['mine', { 'notes.txt': 'precious' }, /was not written by hgq/],
      // a folder with summary.json — even `{}` — beside a user's file: hgq once deleted the file
      ['bare-summary', { 'summary.json': '{}', 'thesis.tex': 'years of work' }, /earlier hgq.*remove the folder/s],
      // a project of an hgq before the marker: hgq cannot tell which files are its own
      [
        'legacy',
        { 'summary.json': '{"name":"x","format":"verilog"}', 'src/x.v': 'module x; endmodule', 'vivado/build.tcl': '' },
        /earlier hgq/,
      ],
      // a marker that is not ours (another format)
      ['fake-marker', { [MARKER]: '{"format":"other","files":[]}', 'data.bin': 'x' }, /not written by hgq/],
    ];
    for (const [name, files, msg] of cases) {
      const dir = join(root, name);
      for (const [f, text] of Object.entries(files)) {
        mkdirSync(join(dir, f, '..'), { recursive: true });
        writeFileSync(join(dir, f), text);
      }
      const before = snapshot(dir);
      const r = await hgqInProcess(['convert', prog, dir]);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, msg, name);
      assert.ok(r.stderr.includes(dir), `${name}: the message names the folder`);
      assert.deepEqual(snapshot(dir), before, `${name}: nothing touched`);
    }
    assert.deepEqual(
      readdirSync(root).sort(),
      ['bare-summary', 'fake-marker', 'legacy', 'mine', 'p.json'],
      'no temporaries or locks left',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('convert replaces its own project whole, and refuses it once a user file is added', async () => {
  const { root, prog } = setup();
  try {
    const prj = join(root, 'prj');
    mkdirSync(prj); // empty: fine
    const first = await hgq(['convert', prog, prj]);
    assert.equal(first.status, 0, first.stderr);
    const marker = readMarker(prj)!;
    assert.equal(marker.kind, 'project');
    assert.deepEqual(
      marker.files,
      listFiles(prj).filter((f) => f !== MARKER),
      'the marker lists exactly the files written',
    );

    const again = await hgq(['convert', prog, prj, '--latency-cutoff', '1']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(JSON.parse(readFileSync(join(prj, 'summary.json'), 'utf8')).latency_cutoff, 1);

    writeFileSync(join(prj, 'my-notes.txt'), 'mine');
    const refused = await hgqInProcess(['convert', prog, prj]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /files hgq did not write \(my-notes\.txt\)/);
    assert.equal(readFileSync(join(prj, 'my-notes.txt'), 'utf8'), 'mine');
    assert.equal(JSON.parse(readFileSync(join(prj, 'summary.json'), 'utf8')).latency_cutoff, 1, 'the project is untouched');
    assert.deepEqual(readdirSync(root).sort(), ['p.json', 'prj']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('bad output places are exit 2 naming the path, before any work, leaving nothing', async () => {
  const { root, prog } = setup();
  try {
    writeFileSync(join(root, 'afile'), 'x');
    const cases: [string, RegExp][] = [
      [join(root, 'afile'), /afile exists and is a file/],
      [join(root, 'afile', 'prj'), /afile.*(is a file|not a folder)/],
      [join(root, 'afile', 'deeper', 'prj'), /afile.*(is a file|not a folder)/],
    ];
    for (const [out, msg] of cases) {
      const r = await hgqInProcess(['convert', prog, out]);
      assert.equal(r.status, 2, `${out}: ${r.stderr}`);
      assert.match(r.stderr, msg, out);
    }
    assert.equal(readFileSync(join(root, 'afile'), 'utf8'), 'x');
    // a failing convert into new nested folders leaves none of them
    for (const args of [
      [join(root, 'missing.json'), join(root, 'new', 'deeper', 'prj')],
      [prog, join(root, 'new', 'deeper', 'prj'), '--validate', '10'],
    ]) {
      const r = await hgqInProcess(['convert', ...args]);
      assert.equal(r.status, 2, r.stderr);
    }
    assert.deepEqual(readdirSync(root).sort(), ['afile', 'p.json']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a write that fails (file-size limit) leaves no temporaries and the earlier project intact', async () => {
  const { root, prog } = setup();
  try {
    const prj = join(root, 'prj');
    assert.equal((await hgq(['convert', prog, prj])).status, 0);
    const before = snapshot(prj);
    // 64 × 512 bytes: node starts, the project's vector files do not fit
    const r = await hgq(['convert', prog, prj, '--vectors', '20000'], { shellPrefix: 'ulimit -f 64' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /could not be written.*(EFBIG|too large)/i);
    assert.deepEqual(snapshot(prj), before, 'the earlier project is as it was');
    assert.deepEqual(readdirSync(root).sort(), ['p.json', 'prj'], 'no staging folder, temporary or lock left');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("two converts into one folder at once: the second is refused; the result is one run's verified output", async (t) => {
  if (!needTool(t, 'iverilog')) return;
  const { root, prog } = setup();
  try {
    const prj = join(root, 'prj');
    const first = startHgq(['convert', prog, prj, '--latency-cutoff', '2', '--verify', '100000', '--simulator', 'icarus']);
    await waitFor(
      () => readdirSync(root).some((n) => n.startsWith('.prj.hgq-tmp-') && existsSync(join(root, n, 'sim', 'icarus.vvp'))),
      120_000,
      'the first convert to simulate',
    );
    const second = await hgq(['convert', prog, prj, '--latency-cutoff', '0']);
    assert.equal(second.status, 75, second.stderr); // busy: retry later (docs/cli.md §1)
    assert.match(second.stderr, /being written by another hgq process/);
    const r = await first.done;
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(readFileSync(join(prj, 'summary.json'), 'utf8'));
    assert.equal(s.latency_cutoff, 2);
    assert.equal(s.verified_vectors, 100000);
    assert.equal(s.mismatches, 0);
    // the sources on disk are the ones verified: every vector in sim/ came from this run
    assert.equal(
      readFileSync(join(prj, 'sim', 'inputs.hex'), 'utf8')
        .trim()
        .split('\n').length,
      100000,
    );
    assert.ok(readMarker(prj)?.files.includes('sim/inputs.hex'), "sim/ is listed as hgq's");
    assert.deepEqual(readdirSync(root).sort(), ['p.json', 'prj']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a SIGKILLed convert --verify leaves nothing that the next convert does not clean', async (t) => {
  if (!needTool(t, 'iverilog')) return;
  const { root, prog } = setup();
  const strays: number[] = [];
  try {
    const prj = join(root, 'prj');
    assert.equal((await hgq(['convert', prog, prj])).status, 0);
    const run = startHgq(['convert', prog, prj, '--verify', '200000', '--simulator', 'icarus']);
    // killed while verifying in its staging folder
    await waitFor(
      () => readdirSync(root).some((n) => n.startsWith('.prj.hgq-tmp-') && existsSync(join(root, n, 'sim'))),
      120_000,
      'verification to start',
    );
    strays.push(...descendants(run.child.pid!).map((d) => d.pid));
    run.child.kill('SIGKILL');
    await run.done;
    killAll(strays); // the simulator it started, orphaned by SIGKILL (no process can forward SIGKILL)
    assert.ok(
      readdirSync(root).some((n) => n.startsWith('.prj.')),
      'the killed run left its staging folder and lock',
    );
    assert.ok(existsSync(join(prj, 'summary.json')), 'the earlier project was not replaced by a partial one');
    assert.equal(JSON.parse(readFileSync(join(prj, 'summary.json'), 'utf8')).verified_vectors, undefined);

    // and what earlier hgq versions left when killed: `.prj.tmp-PID-TIME` and its `.old`
    const deadPid = spawnSync('true').pid;
    for (const leftover of [`.prj.tmp-${deadPid}-1765000000000`, `.prj.tmp-${deadPid}-1765000000000.old`]) {
      mkdirSync(join(root, leftover, 'src'), { recursive: true });
      writeFileSync(join(root, leftover, 'summary.json'), '{}');
    }
    const next = await hgq(['convert', prog, prj, '--latency-cutoff', '1']);
    assert.equal(next.status, 0, next.stderr);
    assert.deepEqual(readdirSync(root).sort(), ['p.json', 'prj'], 'stale staging folders and lock removed');
  } finally {
    killAll(strays);
    rmSync(root, { recursive: true, force: true });
  }
});
