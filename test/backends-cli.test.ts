/**
 * `hgq convert` and `hgq synth` end to end: project files and summary.json (estimate, latency, stages,
 * layouts; verified_vectors and mismatches after --verify), --json as the last stdout line, exit codes
 * 2 for bad input with a message saying what to fix, the model-loader hook.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadProgramForConvert } from '../src/app/convert-input.ts';
import { writeProgram } from '../src/ir/serialize.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';
import { hgqInProcess } from './util/cli.ts';

const HGQ = join(import.meta.dirname, '..', 'bin', 'hgq.js');
function hgq(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [HGQ, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('hgq convert writes a project; --verify fills verified_vectors and mismatches; --json last line', (t) => {
  if (!needTool(t, 'iverilog')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-cli-'));
  try {
    const prog = join(root, 'p.json');
    writeProgram(prog, coveringProgram(100, 60, 6));
    const out = join(root, 'prj');
    const r = hgq([
      'convert',
      prog,
      out,
      '--latency-cutoff',
      '2',
      '--verify',
      '2000',
      '--simulator',
      'icarus',
      '--json',
      '--part',
      'xc7a100tcsg324-1',
      '--clock-period',
      '4',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(last, s);
    assert.equal(s.verified_vectors, 2000);
    assert.equal(s.mismatches, 0);
    assert.equal(s.simulator, 'icarus');
    assert.equal(s.latency_cycles, s.stages - 1);
    assert.ok(s.stages >= 2);
    assert.equal(s.part, 'xc7a100tcsg324-1');
    for (const f of Object.values(s.files) as string[]) assert.ok(existsSync(join(out, f)), f);
    assert.match(readFileSync(join(out, 'vivado/build.tcl'), 'utf8'), /set part xc7a100tcsg324-1/);
    assert.match(readFileSync(join(out, s.files.xdc), 'utf8'), /create_clock -period 4 /);
    // no temporary directories left next to the project
    assert.deepEqual(spawnSync('ls', ['-A', root], { encoding: 'utf8' }).stdout.trim().split('\n').sort(), ['p.json', 'prj']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('hgq convert/synth: bad input exits 2 with a message that says what to do', async () => {
  delete process.env.HGQ_AP_INCLUDE;
  const root = mkdtempSync(join(tmpdir(), 'hgq-cli-'));
  try {
    const prog = join(root, 'p.json');
    writeProgram(prog, coveringProgram(100, 40, 4));
    const cases: Array<[string[], RegExp]> = [
      [['convert', join(root, 'missing.json'), join(root, 'o')], /no such file/],
      [['convert', prog, join(root, 'o'), '--format', 'systemc'], /--format "systemc" is not one of verilog, vhdl, hls/],
      [['convert', prog, join(root, 'o'), '--latency-cutoff', '-2'], /--latency-cutoff "-2" must be a number >= 0/],
      [['convert', prog, join(root, 'o'), '--verify', 'many'], /--verify "many" must be an integer >= 1/],
      [['convert', prog, join(root, 'o'), '--format', 'hls', '--verify', '10'], /needs ap_fixed\.h: add --ap-include DIR/],
      [['convert', prog, join(root, 'o'), '--validate', '10'], /--validate compares the emulator with a source model/],
      [['convert', root, join(root, 'o')], /not an IR program/],
      [['synth', join(root, 'nothing')], /not an hgq project/],
      [['synth', root, '--family', 'xc9'], /--family "xc9" is not one of xc7, xcup/],
    ];
    writeFileSync(join(root, 'bad.json'), '{"version": 1');
    cases.push([['convert', join(root, 'bad.json'), join(root, 'o')], /bad\.json/]);
    for (const [args, msg] of cases) {
      const r = await hgqInProcess(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg, args.join(' '));
    }
    assert.ok(!existsSync(join(root, 'o')), 'nothing written on bad input');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('convert input: a program.json is read as is; what is neither a program nor a model is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-cli-'));
  try {
    const p = coveringProgram(100, 40, 4);
    writeProgram(join(root, 'p.json'), p);
    const loaded = await loadProgramForConvert(join(root, 'p.json'));
    assert.deepEqual(loaded.program.out, p.out);
    assert.equal(loaded.validate, undefined, 'a program has no source model to validate against');
    writeFileSync(join(root, 'x.model'), '');
    await assert.rejects(loadProgramForConvert(join(root, 'x.model')), /not an IR program \(\.json\) and not a model/);
    await assert.rejects(loadProgramForConvert(root), /not an IR program/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
