import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { hgqSpawn as hgq } from './util/cli.ts';

// Each case spawns a process: run them concurrently to keep the file fast.
describe('hgq quantize (spawned)', { concurrency: true }, () => {
  test('the README example: exact value, tab, integer code; exit 0', async () => {
    const r = await hgq(['quantize', '--type', 'fixed<8,3>', '--round', 'RND', '--overflow', 'SAT', '1.3', '-7.9']);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '1.3125\t42\n-4\t-128\n');
  });

  test('values from stdin, one per line; decimals are exact (0.1 is 1/10); defaults TRN/WRAP', async () => {
    const r = await hgq(['quantize', '-t', '(1,3,60)'], '0.1\n\n  -0.375 \n9\n');
    assert.equal(r.code, 0, r.stderr);
    // floor(2^60/10); -0.375 exactly; 9 wraps (TRN/WRAP default) to 9 − 16 = −7
    assert.equal(
      r.stdout,
      '0.099999999999999999479582957206957871676422655582427978515625\t115292150460684697\n' +
        '-0.375\t-432345564227567616\n' +
        '-7\t-8070450532247928832\n',
    );
  });

  test('ap_fixed type names carry default modes; flags override them', async () => {
    const a = await hgq(['quantize', '-t', 'ap_fixed<3,2,AP_RND_INF,AP_SAT>', '--', '-1.25', '7']);
    assert.equal(a.stdout, '-1.5\t-3\n1.5\t3\n');
    const b = await hgq(['quantize', '-t', 'ap_fixed<3,2,AP_RND_INF,AP_SAT>', '--round', 'ap_rnd', '-o', 'WRAP', '-1.25', '7']);
    assert.equal(b.stdout, '-1\t-2\n-1\t-2\n'); // RND: -2.5 → -2; 7 → 14 wraps in 3 bits to -2
  });

  test('bad input exits 2 with a clear message on stderr and no line for the bad value', async () => {
    const [bad, nan, type, mode, inf, missing, unknown] = await Promise.all([
      hgq(['quantize', '-t', 'fixed<8,3>', '1', 'abc']),
      hgq(['quantize', '-t', 'fixed<8,3>'], '1\nNaN\n2\n'),
      hgq(['quantize', '-t', 'fixed<8>', '1']),
      hgq(['quantize', '-t', 'fixed<8,3>', '--overflow', 'CLAMP', '1']),
      hgq(['quantize', '-t', 'fixed<8,3>', 'inf']),
      hgq(['quantize', '1']),
      hgq(['frobnicate']),
    ]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, '', 'arguments are all checked before any output');
    assert.match(bad.stderr, /value 2: "abc" is not a number/);

    assert.equal(nan.code, 2);
    assert.equal(nan.stdout, '1\t32\n', 'lines before the bad one are printed, nothing after');
    assert.match(nan.stderr, /stdin line 2: NaN cannot be quantized/);

    assert.equal(type.code, 2);
    assert.equal(type.stdout, '');
    assert.match(type.stderr, /invalid fixed-point type "fixed<8>".*Accepted forms/);

    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /--overflow "CLAMP" is not a mode; use one of WRAP, SAT, SAT_SYM/);

    assert.equal(inf.code, 2);
    assert.match(inf.stderr, /WRAP overflow \(undefined\); use SAT/);

    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /required option '-t, --type <TYPE>'/);

    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  });

  test('--help and --version exit 0; --json prints one JSON object as the last line', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const v = await hgq(['--version']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), pkg.version);
    const h = await hgq(['quantize', '--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /--round <MODE>/);
    const j = await hgq(['quantize', '-t', 'ufixed<4,2>', '-r', 'RND_CONV', '--json', '0.375', '9']);
    assert.equal(j.code, 0, j.stderr);
    const lines = j.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['0.5\t2', '1\t4']); // 1.5 → 2 (even); 9 → 36 → wraps to 4
    assert.deepEqual(JSON.parse(lines.at(-1)!), {
      type: { k: 0, i: 2, f: 2 },
      round: 'RND_CONV',
      overflow: 'WRAP',
      results: [
        { input: '0.375', value: '0.5', code: '2' },
        { input: '9', value: '1', code: '4' },
      ],
    });
  });
});
