/**
 * Careless input to the commands that write: every check happens before any long work and is exit 2 naming
 * what is wrong. Strings written into TCL are validated (a Tcl shell sourcing the generated script executes
 * nothing); the simulator must fit the project format; vector counts beyond what the machine can build are
 * refused naming the limit; single output files (trace -o, emulate -o, cmvm --emit) never replace a file hgq
 * did not write, a folder, or a path under a missing folder or a file; `import -o` never replaces a folder
 * hgq did not write; a failed write (file-size limit) leaves no temporaries.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateProject, writeProject } from '../src/backends/project.ts';
import { MAX_VECTORS } from '../src/backends/vectors.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { programToJSON, writeProgram } from '../src/ir/serialize.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';
import { hgq, hgqInProcess } from './util/cli.ts';
import { makeRng } from './util/rng.ts';

const hgqIn = hgqInProcess;

async function expectRefused(args: string[], msg: RegExp, status = 2): Promise<void> {
  const t0 = performance.now();
  const r = await hgqIn(args);
  assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, msg, args.join(' '));
  assert.ok(performance.now() - t0 < 20_000, `${args.join(' ')}: refused up front`);
}

function setup(): { root: string; prog: string } {
  const root = mkdtempSync(join(tmpdir(), 'hgq-outchecks-'));
  const prog = join(root, 'p.json');
  writeProgram(prog, coveringProgram(100, 40, 4));
  return { root, prog };
}

const TCL_HOSTILE = [
  'x [exec touch pwned]',
  'x;exec touch pwned',
  '$env(HOME)',
  'a b',
  'x\nexec touch pwned',
  '{x}',
  'x"y',
  'x\\',
  '[pwd]',
  '-',
  '',
];

test('--part and --top cannot smuggle Tcl into build.tcl: refused with exit 2, nothing written or run', async () => {
  const { root, prog } = setup();
  try {
    for (const bad of TCL_HOSTILE) {
      await expectRefused(['convert', prog, join(root, 'o'), '--part', bad], /--part: part ".*" is not a part name/s);
      await expectRefused(
        ['convert', prog, join(root, 'o'), '--top', bad],
        /--top: top-level name ".*" is not a plain Verilog\/VHDL identifier/s,
      );
    }
    await expectRefused(
      ['convert', prog, join(root, 'o'), '--top', 'module'],
      /not a plain Verilog\/VHDL identifier.*e\.g\. module_top/,
    );
    assert.deepEqual(readdirSync(root), ['p.json']);
    assert.ok(!existsSync(join(process.cwd(), 'pwned')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every part/top name generateProject accepts reaches Tcl as the literal string (tclsh sources the set lines)', (t) => {
  if (!needTool(t, 'tclsh')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-tcl-'));
  try {
    const p = coveringProgram(100, 40, 4);
    const rng = makeRng(5);
    const alphabet = 'ab09-_.[]$;{}"\\ \n#()';
    const candidates = [...TCL_HOSTILE, 'xc7a100tcsg324-1', 'xcvu13p-flga2577-2-e', 'XCKU115-FLVB2104-2-E'];
    for (let k = 0; k < 300; k++) candidates.push(Array.from({ length: rng.int(1, 8) }, () => rng.pick([...alphabet])).join(''));
    const accepted: { part: string; top: string; tcl: string }[] = [];
    for (const part of candidates) {
      const top = /^[A-Za-z][A-Za-z0-9_]*$/.test(part) ? part : 'design';
      let files: Map<string, string>;
      try {
        files = generateProject(p, { part, top, vectors: 0 }).files;
      } catch (e) {
        assert.match((e as Error).message, /is not a part name|not a plain Verilog\/VHDL identifier/, JSON.stringify(part));
        continue;
      }
      accepted.push({ part, top, tcl: files.get('vivado/build.tcl')! });
    }
    assert.ok(accepted.length >= 3, 'ordinary part names are accepted');
    assert.ok(accepted.length < candidates.length, 'hostile ones are not');
    // one script: each project's `set` lines, then the values as Tcl sees them
    const script = accepted
      .map(
        ({ tcl }) =>
          tcl
            .split('\n')
            .filter((l) => l.startsWith('set '))
            .join('\n') + '\nputs [list $top $part]',
      )
      .join('\n');
    const sandbox = join(root, 'sandbox');
    mkdirSync(join(sandbox, 'vivado'), { recursive: true });
    writeFileSync(join(sandbox, 'vivado', 'sets.tcl'), script + '\n');
    const r = spawnSync('tclsh', [join(sandbox, 'vivado', 'sets.tcl')], { cwd: sandbox, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const seen = r.stdout.trim().split('\n');
    assert.equal(seen.length, accepted.length);
    for (const [k, a] of accepted.entries()) assert.equal(seen[k], `${a.top} ${a.part}`, 'Tcl holds the literal name');
    assert.deepEqual(readdirSync(sandbox), ['vivado'], 'the script created nothing');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a simulator that cannot run the project format is refused before anything is written', async () => {
  const { root, prog } = setup();
  const o = join(root, 'o');
  try {
    await expectRefused(['convert', prog, o, '--verify', '10', '--simulator', 'ghdl'], /ghdl simulator needs a VHDL project/);
    await expectRefused(
      ['convert', prog, o, '--format', 'vhdl', '--verify', '10', '--simulator', 'icarus'],
      /Icarus simulates Verilog only/,
    );
    await expectRefused(
      ['convert', prog, o, '--format', 'hls', '--verify', '10', '--simulator', 'verilator', '--ap-include', root],
      /HLS project .* g\+\+/,
    );
    await expectRefused(['convert', prog, o, '--simulator', 'icarus'], /--simulator .* add --verify/);
    await expectRefused(['convert', prog, o, '--format', 'hls', '--verify', '10', '--ap-include', root], /no ap_fixed\.h there/);
    await expectRefused(['convert', prog, o, '--data', join(root, 'nope.csv')], /--data .*nope\.csv: no such file/);
    assert.deepEqual(readdirSync(root), ['p.json']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('vector counts beyond what the machine can build are refused up front, naming the limit', async () => {
  const { root, prog } = setup();
  const o = join(root, 'o');
  try {
    const limit = MAX_VECTORS.toLocaleString('en');
    for (const flag of ['--vectors', '--verify', '--validate'])
      await expectRefused(['convert', prog, o, flag, '1e9'], new RegExp(`${flag} 1000000000 is more than the ${limit} vectors`));
    // a wide design: its vector files would pass V8's string limit long before MAX_VECTORS
    const b = new ProgramBuilder();
    const xs = Array.from({ length: 300 }, (_, j) => b.input(j, { k: 1, i: 4, f: 3 }, 'RND', 'SAT'));
    const wide = join(root, 'wide.json');
    writeProgram(
      wide,
      b.build(
        'wide',
        [{ name: 'x', shape: [300] }],
        [{ name: 'y', shape: [300] }],
        xs.map((w) => ({ wire: w, shift: 0, neg: false })),
      ),
    );
    await expectRefused(
      ['convert', wide, o, '--vectors', '2000000'],
      /--vectors 2000000: vectors of this design \(2400 input bits, 2400 output bits\) are limited to [\d,]+ on this machine/,
    );
    assert.deepEqual(readdirSync(root).sort(), ['p.json', 'wide.json']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('single output files: never a folder, a missing or file parent, or a file hgq did not write', async () => {
  const { root, prog } = setup();
  try {
    const user = join(root, 'notes.txt');
    writeFileSync(user, 'precious');
    mkdirSync(join(root, 'adir'));
    const csv = join(root, 'x.csv');
    writeFileSync(csv, '1,2,3,4,5,6,7,8\n-1,0.5,2,3,4,5,6,7\n');
    const model = join(root, 'no-model'); // the output is checked before the model is read
    const places: [string, RegExp][] = [
      [join(root, 'adir'), /adir is a folder; give a file name/],
      [join(root, 'missing', 'out.json'), /the folder .*missing does not exist/],
      [join(user, 'out.json'), /notes\.txt is not a folder/],
      [`${join(root, 'newdir')}/`, /newdir\/ names a folder/],
    ];
    for (const [out, msg] of places) {
      await expectRefused(['trace', model, '-o', out], msg);
      await expectRefused(['emulate', prog, '-i', csv, '-o', out], msg);
      await expectRefused(['cmvm', '--random', '3', '--emit', out], msg);
    }
    await expectRefused(['trace', model, '-o', user], /notes\.txt exists and is not an IR program written by hgq/);
    await expectRefused(['cmvm', '--random', '3', '--emit', user], /notes\.txt exists and is not an IR program written by hgq/);
    await expectRefused(['cmvm', '--random', '3', '--emit', csv], /x\.csv exists and is not an IR program/);
    await expectRefused(
      ['emulate', prog, '-i', csv, '-o', user],
      /notes\.txt exists; hgq does not overwrite it: add --force to replace it/,
    );
    assert.equal(readFileSync(user, 'utf8'), 'precious');

    // its own outputs it replaces: an IR program by its format; CSV/NPY (unrecognizable) with --force
    const own = join(root, 'own.json');
    writeFileSync(own, programToJSON(coveringProgram(100, 40, 4)));
    assert.equal((await hgq(['cmvm', '--random', '3', '--emit', own])).status, 0);
    assert.match(readFileSync(own, 'utf8'), /"name":"cmvm/);
    const y = join(root, 'y.csv');
    assert.equal((await hgq(['emulate', prog, '-i', csv, '-o', y])).status, 0);
    await expectRefused(['emulate', prog, '-i', csv, '-o', y], /y\.csv exists; hgq does not overwrite it: add --force/);
    assert.equal((await hgq(['emulate', prog, '-i', csv, '-o', y, '--force'])).status, 0);
    assert.deepEqual(readdirSync(root).sort(), ['adir', 'notes.txt', 'own.json', 'p.json', 'x.csv', 'y.csv'], 'no temporaries');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('emulate -o under a file-size limit: exit 1 naming the file, no temporary left', async () => {
  const { root, prog } = setup();
  try {
    const rows = Array.from({ length: 6000 }, (_, r) =>
      Array.from({ length: 8 }, (_, c) => ((r * 7 + c * 3) % 17) - 8).join(','),
    ).join('\n');
    writeFileSync(join(root, 'x.csv'), rows + '\n');
    const r = await hgq(['emulate', prog, '-i', join(root, 'x.csv'), '-o', join(root, 'y.csv')], { shellPrefix: 'ulimit -f 64' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /y\.csv: could not be written/);
    assert.deepEqual(readdirSync(root).sort(), ['p.json', 'x.csv']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('import -o never replaces a folder hgq did not write (checked before the archive is read)', async () => {
  const { root, prog } = setup();
  try {
    const archive = prog; // any file: the output is checked first
    const cases: [string, Record<string, string>, RegExp][] = [
      ['user-with-model', { 'model.json': '{}', 'experiment.py': 'print(1)' }, /earlier hgq.*remove the folder/s],
      ['legacy-model', { 'model.json': '{}', 'weights.bin': '' }, /earlier hgq/],
      ['user', { 'data.csv': '1' }, /was not written by hgq/],
    ];
    for (const [name, files, msg] of cases) {
      const dir = join(root, name);
      mkdirSync(dir);
      for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
      await expectRefused(['import', archive, '-o', dir], msg);
      assert.deepEqual(readdirSync(dir).sort(), Object.keys(files).sort(), `${name}: untouched`);
    }
    await expectRefused(['import', archive, '-o', prog], /p\.json exists and is a file/);
    await expectRefused(['import', archive, '-o', join(prog, 'sub')], /p\.json.*(is a file|not a folder)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a program name with line breaks stays inside the header comment of every generated source', () => {
  const name = 'x\ninitial $system("touch pwned");\r\n-- y\n#include "/etc/passwd"\n';
  const p = { ...coveringProgram(100, 40, 4), name };
  for (const format of ['verilog', 'vhdl', 'hls'] as const) {
    const { files, summary } = generateProject(p, { format, vectors: 0 });
    for (const [path, text] of files) {
      if (path.endsWith('.json') || path.endsWith('.hex')) continue;
      assert.ok(
        !/^\s*(initial \$system|#include "\/etc|-- y)/m.test(text),
        `${format} ${path}: the name broke out of its comment`,
      );
    }
    assert.equal(summary.name, name, 'summary.json keeps the name as it is');
  }
});

test('synth and convert refuse a project another live hgq process is writing (its lock)', async () => {
  const { root, prog } = setup();
  try {
    const prj = join(root, 'prj');
    writeProject(coveringProgram(100, 40, 4), prj, { vectors: 0 });
    writeFileSync(join(root, '.prj.hgq-lock'), `${process.pid}\n`); // a live writer
    // busy, not bad input: exit 75 (EX_TEMPFAIL), so a script or scheduler knows a retry can succeed
    await expectRefused(['synth', prj], /being written by another hgq process \(pid \d+\)/, 75);
    await expectRefused(['convert', prog, prj], /being written by another hgq process/, 75);
    assert.equal(readFileSync(join(root, '.prj.hgq-lock'), 'utf8'), `${process.pid}\n`, 'the live lock is left alone');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
