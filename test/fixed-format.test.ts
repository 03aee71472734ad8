import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCode, formatDyadic } from '../src/fixed/format.ts';
import { doubleToDyadic, parseDecimal, type Rational } from '../src/fixed/quantize.ts';
import { makeRng } from './util/rng.ts';

test('exact decimal expansions, no exponent, no float noise', () => {
  assert.equal(formatDyadic(0.1), '0.1000000000000000055511151231257827021181583404541015625');
  assert.equal(formatDyadic(-0.375), '-0.375');
  assert.equal(formatDyadic(3), '3');
  assert.equal(formatDyadic(-0), '0');
  assert.equal(formatDyadic(1e21), '1000000000000000000000');
  assert.equal(formatDyadic(2 ** 70), '1180591620717411303424');
  assert.equal(formatDyadic(-(2 ** -10)), '-0.0009765625');
  assert.equal(formatDyadic(5e-324).length, '0.'.length + 1074); // 2^-1074 has 1074 decimals
  assert.equal(formatCode(-3n, 3), '-0.375');
  assert.equal(formatCode(42n, 5), '1.3125');
  assert.equal(formatCode(5n, -2), '20');
  assert.equal(formatCode(-128n, 5), '-4');
  assert.equal(formatCode(0n, 9), '0');
  assert.equal(formatCode(2n ** 63n - 1n, 0), '9223372036854775807');
  assert.throws(() => formatDyadic(NaN), /not a finite number/);
});

test('every printed value parses back exactly to the same rational (random doubles and codes)', () => {
  const rng = makeRng(42);
  const same = (r: Rational, m: bigint, e: number): boolean =>
    e >= 0 ? r.n === (m << BigInt(e)) * r.d : r.n << BigInt(-e) === m * r.d;
  for (let n = 0; n < 20000; n++) {
    const mant = rng.int(0, 2 ** 26) * 2 ** 27 + rng.int(0, 2 ** 27 - 1);
    const e2 = rng.int(-1126, 970); // down into the subnormals (inexact there: x is then some other double)
    const x = (rng.chance(0.5) ? -1 : 1) * mant * 2 ** Math.ceil(e2 / 2) * 2 ** Math.floor(e2 / 2);
    const s = formatDyadic(x);
    assert.match(s, /^-?\d+(\.\d*[1-9])?$/, 'plain decimal, no trailing zeros');
    assert.equal(Number(s), x);
    const r = parseDecimal(s) as Rational;
    const { m, e } = doubleToDyadic(x);
    assert.ok(same(r, m, e), `${s} is exactly ${x}`);
    const code = BigInt(rng.int(-(2 ** 30), 2 ** 30)) * BigInt(rng.int(1, 2 ** 30));
    const f = rng.int(-20, 80);
    const rc = parseDecimal(formatCode(code, f)) as Rational;
    assert.ok(same(rc, code, -f), `formatCode(${code}, ${f})`);
  }
});
