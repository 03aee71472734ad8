/**
 * Bad or unusual input on the command line and in users' files: negative numbers as values, numbers beyond
 * double range, malformed numeric flags, and the exit codes (2 = bad input, with the file and what is wrong).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function hgq(args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/hgq.js', ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'hgq-input-'));
}

describe('quantize: numbers as arguments', { concurrency: true }, () => {
  test('negative numbers of every spelling are values, not options (-inf, -1., -2E3, -.5, -Infinity)', async () => {
    const r = await hgq([
      'quantize',
      '-t',
      'fixed<8,3>',
      '--overflow',
      'SAT',
      'inf',
      '-inf',
      '-1.',
      '-2E0',
      '-.5',
      '-Infinity',
      '--json',
    ]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 6), ['3.96875\t127', '-4\t-128', '-1\t-32', '-2\t-64', '-0.5\t-16', '-4\t-128']);
    assert.deepEqual(
      (JSON.parse(lines.at(-1)!) as { results: { input: string }[] }).results.map((x) => x.input),
      ['inf', '-inf', '-1.', '-2E0', '-.5', '-Infinity'],
      '--json after the values is still the option',
    );
  });

  test('unknown options are still refused, before and after negative numbers', async () => {
    const [a, b] = await Promise.all([
      hgq(['quantize', '-t', 'fixed<8,3>', '-inf', '--bogus']),
      hgq(['quantize', '-t', 'fixed<8,3>', '--bogus', '-1']),
    ]);
    for (const r of [a, b]) {
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown option '--bogus'/);
      assert.equal(r.stdout, '');
    }
    const nan = await hgq(['quantize', '-t', 'fixed<8,3>', '-NaN']);
    assert.equal(nan.code, 2);
    assert.match(nan.stderr, /value 1: NaN cannot be quantized/);
  });

  test('exponents beyond double range are numbers: SAT clips, WRAP wraps exactly (to 0), tiny ones round', async () => {
    const sat = await hgq(['quantize', '-t', 'fixed<8,3>', '-o', 'SAT', '1e999999999', '-1e999999999', '-1e-999999999']);
    assert.equal(sat.code, 0, sat.stderr);
    assert.equal(sat.stdout, '3.96875\t127\n-4\t-128\n-0.03125\t-1\n');
    const wrap = await hgq(['quantize', '-t', 'fixed<8,3>', '1e999999999', '3e999999999']);
    assert.equal(wrap.code, 0, wrap.stderr);
    assert.equal(wrap.stdout, '0\t0\n0\t0\n');
    const stdin = await hgq(['quantize', '-t', 'ufixed<4,2>', '-o', 'SAT'], '-1e999999999\n1E+999999999\n');
    assert.equal(stdin.stdout, '0\t0\n3.75\t15\n');
  });
});

describe('cmvm: input types and numbers in matrix files', { concurrency: true }, () => {
  test('input types beyond the exact path are exit 2 naming the 52-bit limit, never an internal error', async () => {
    const runs = await Promise.all(
      ['fixed<100000,3>', 'fixed<53,3>', 'fixed<54,54>', 'fixed<52,3>', 'fixed<44,3>', '(1,-99990,99990)', 'ufixed<8,-1000>'].map(
        (t) => hgq(['cmvm', '--random', '3', '--input-type', t, '--verify']),
      ),
    );
    for (const r of runs) {
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.match(r.stderr, /--input-type/);
    }
    for (const r of runs.slice(0, 5)) assert.match(r.stderr, /52 bits/);
    assert.match(runs[3]!.stderr, /row \d+: .* outputs need \d+ bits/, 'the matrix and row that overflow are named');
  });

  test('the widest accepted types verify exactly, corners included (inputs at the type ends, not rounded past them)', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'one.csv'), '1\n');
    writeFileSync(join(dir, 'pm.csv'), '1,-1\n0.5,0.25\n');
    const [a, b, c] = await Promise.all([
      hgq(['cmvm', '--matrix', join(dir, 'one.csv'), '--input-type', 'fixed<52,3>', '--verify']),
      hgq(['cmvm', '--matrix', join(dir, 'pm.csv'), '--input-type', 'ufixed<50,1>', '--verify']),
      hgq(['cmvm', '--random', '4', '--bits', '8', '--input-type', 'fixed<40,3>', '--verify']),
    ]);
    for (const r of [a, b, c]) assert.equal(r.code, 0, r.stderr);
  });

  test('numeric flags take plain decimals only: no hex, no empty string, no fractions for integers', async () => {
    const bad = await Promise.all(
      [
        ['--dc', '0x1'],
        ['--dc', ''],
        ['--effort', '1.5'],
        ['--dc', 'Infinity'],
        ['--count', '1e7'],
      ].map((f) => hgq(['cmvm', '--random', '2', ...f])),
    );
    for (const r of bad) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /must be an integer from/);
    }
    const ok = await hgq(['cmvm', '--random', '2', '--count', '2e0', '--dc', '-0', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout.trim().split('\n').at(-1)!) as { matrices: unknown[] }).matrices.length, 2);
  });

  test('matrix entries beyond double range are named as written: too large or too small, not "null"', async () => {
    const dir = tmp();
    const files: Record<string, string> = {
      'big.json': '[[1, 2], ["2.5e0", 1e400]]',
      'neg.json': '[[-1e400]]',
      'tiny.json': '[[0.0e5, 1e-400]]',
      'big.csv': '1,1e999999999\n',
      'tiny.csv': '-1e-999999999,1\n',
    };
    for (const [n, text] of Object.entries(files)) writeFileSync(join(dir, n), text);
    const runs = await Promise.all(Object.keys(files).map((n) => hgq(['cmvm', '--matrix', join(dir, n)])));
    const [big, neg, tiny, bigCsv, tinyCsv] = runs;
    for (const r of runs) {
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stderr, /null|internal/);
    }
    assert.match(big!.stderr, /big\.json: row 2, column 2: 1e400 is too large \(\|entry\| must be below 2\^40\)/);
    assert.match(neg!.stderr, /-1e400 is too large/);
    assert.match(tiny!.stderr, /row 1, column 2: 1e-400 is too small/);
    assert.match(bigCsv!.stderr, /line 1, column 2: 1e999999999 is too large/);
    assert.match(tinyCsv!.stderr, /line 1, column 1: -1e-999999999 needs more than the 32 supported fraction bits/);
  });
});

describe('synth: a damaged summary.json is exit 2 naming the file and the field', { concurrency: true }, () => {
  /** A minimal project as `hgq convert` lays it out (synth reads summary.json before it starts Yosys). */
  function project(summary: string | object, withSource = true): string {
    const dir = tmp();
    writeFileSync(join(dir, 'summary.json'), typeof summary === 'string' ? summary : JSON.stringify(summary));
    if (withSource) {
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'src', 'top.v'), 'module top(input a, output b); assign b = a; endmodule\n');
    }
    return dir;
  }
  const good = { format: 'verilog', top: 'top', files: { source: 'src/top.v' } };
  const cases: [string, string | object, RegExp, boolean?][] = [
    ['{}', {}, /summary\.json: field "format" is missing/],
    ['truncated', JSON.stringify(good).slice(0, 20), /summary\.json: not valid JSON/],
    ['an array', '[1]', /summary\.json: is not a JSON object/],
    ['no top', { ...good, top: undefined }, /summary\.json: field "top" is missing/],
    [
      'a top that would inject Yosys commands',
      { ...good, top: 'top\nshell touch pwned' },
      /summary\.json: field "top" is "top\\nshell touch pwned", not a module name/,
    ],
    ['an unknown format', { ...good, format: 'systemc' }, /summary\.json: field "format" is "systemc"/],
    ['no files', { ...good, files: undefined }, /summary\.json: field "files" is missing/],
    ['no source entry', { ...good, files: {} }, /summary\.json: field "files\.source" is missing/],
    [
      'a source outside the project',
      { ...good, files: { source: '../../etc/passwd' } },
      /field "files\.source" \("\.\.\/\.\.\/etc\/passwd"\) points outside the project/,
    ],
    ['a missing source file', good, /src\/top\.v: no such file \(named in .*summary\.json as files\.source\)/, false],
    ['a VHDL project without its Verilog twin', { ...good, format: 'vhdl' }, /field "files\.verilog_twin" is missing/],
  ];
  for (const [name, summary, expect, withSource] of cases) {
    test(name, async () => {
      const r = await hgq(['synth', project(summary, withSource ?? true)]);
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.match(r.stderr, expect);
    });
  }
});

describe('trace: numeric flags', { concurrency: true }, () => {
  test('--dc, --effort, --threads, --validate refuse empty, hex and fractional values (Number() took "" as 0 and 0x1 as 1)', async () => {
    const flags = [
      ['--threads', '0'],
      ['--threads', '1.5'],
      ['--dc', ''],
      ['--dc', '0x1'],
      ['--dc', '-2'],
      ['--effort', '1.0e-1'],
      ['--effort', '4'],
      ['--validate', '0'],
      ['--validate', ' '],
      ['--validate', '0b11'],
    ];
    const runs = await Promise.all(flags.map((f) => hgq(['trace', join(tmp(), 'no-model'), '-o', join(tmp(), 'p.json'), ...f])));
    runs.forEach((r, j) => {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`${flags[j]![0]}.* must be an integer`), r.stderr);
    });
  });
});
