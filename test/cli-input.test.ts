/**
 * Bad or unusual input on the command line and in users' files: negative numbers as values, numbers beyond
 * double range, malformed numeric flags, and the exit codes (2 = bad input, with the file and what is wrong).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
    const r = await hgq(['quantize', '-t', 'fixed<8,3>', '--overflow', 'SAT', 'inf', '-inf', '-1.', '-2E0', '-.5', '-Infinity', '--json']);
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
