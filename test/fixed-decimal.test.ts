/**
 * Decimal strings with exponents far beyond what is worth expanding (1e999999999, -1e-400000) are numbers:
 * quantizeCode gives them the exact code, the same as any decimal of the same side of the type's range and grid.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_DECIMAL_EXPONENT, parseDecimalParts, quantizeCode } from '../src/fixed/quantize.ts';
import { parseType } from '../src/fixed/typename.ts';
import { OVERFLOW_MODES, ROUND_MODES, type Kif } from '../src/fixed/types.ts';
import { makeRng } from './util/rng.ts';

test('huge and tiny exponents quantize exactly like moderate decimals beyond the same type limits', () => {
  const rng = makeRng(7);
  const far = MAX_DECIMAL_EXPONENT + 1;
  for (let n = 0; n < 400; n++) {
    const t: Kif = { k: rng.pick([0, 1] as const), i: rng.int(-8, 40), f: rng.int(-8, 40) };
    if (t.k + t.i + t.f <= 0) continue;
    const round = rng.pick(ROUND_MODES);
    const overflow = rng.pick(OVERFLOW_MODES);
    const digits = String(rng.int(1, 999999));
    for (const sign of ['', '-']) {
      // 10^500 is above every code of these types and a multiple of 2^W at scale 2^f; so is 10^(far + j)
      const big = quantizeCode(`${sign}${digits}e500`, t, round, overflow);
      for (const e of [far, far + 12345, 999999999])
        assert.equal(
          quantizeCode(`${sign}${digits}e${e}`, t, round, overflow),
          big,
          `${sign}${digits}e${e} ${JSON.stringify(t)} ${round} ${overflow}`,
        );
      assert.equal(quantizeCode(`${sign}${digits}e99999999999999999999999`, t, round, overflow), big);
      // 10^-500 is far below 2^-f: it rounds like any tiny value of its sign
      const tiny = quantizeCode(`${sign}${digits}e-500`, t, round, overflow);
      for (const e of [far, 999999999]) assert.equal(quantizeCode(`${sign}${digits}e-${e}`, t, round, overflow), tiny);
    }
  }
});

test('huge exponents: SAT clips to the range ends, WRAP is 0, tiny values round by mode', () => {
  const t: Kif = { k: 1, i: 2, f: 5 }; // fixed<8,3>
  assert.equal(quantizeCode('1e999999999', t, 'TRN', 'SAT'), 127n);
  assert.equal(quantizeCode('-1e999999999', t, 'TRN', 'SAT'), -128n);
  assert.equal(quantizeCode('-1e999999999', t, 'TRN', 'SAT_SYM'), -127n);
  assert.equal(quantizeCode('1e999999999', t, 'TRN', 'WRAP'), 0n);
  assert.equal(quantizeCode('-1e-999999999', t, 'TRN', 'SAT'), -1n, 'floor of a tiny negative value');
  assert.equal(quantizeCode('-1e-999999999', t, 'TRN_ZERO', 'SAT'), 0n);
  assert.equal(quantizeCode('1e-999999999', t, 'TRN', 'SAT'), 0n);
  assert.equal(quantizeCode('0e999999999', t, 'TRN', 'WRAP'), 0n);
  // a long digit string with a big negative exponent whose value is in range is expanded, not guessed
  const long = '1' + '0'.repeat(MAX_DECIMAL_EXPONENT + 1);
  assert.equal(quantizeCode(`${long}e-${MAX_DECIMAL_EXPONENT + 1}`, t, 'TRN', 'SAT'), 32n); // = 1
  assert.equal(quantizeCode(`${long}e-${MAX_DECIMAL_EXPONENT + 2}`, t, 'RND', 'SAT'), 3n); // 0.1·32 = 3.2
});

test('parseDecimalParts keeps the sign of an exponent too long for a double', () => {
  const p = parseDecimalParts(`-12.5e-${'9'.repeat(400)}`);
  assert.ok(p !== null && typeof p !== 'number');
  assert.equal(p.negative, true);
  assert.equal(p.digits, 125n);
  assert.equal(p.scale, -Infinity);
  assert.equal(parseDecimalParts('1e5x'), null);
});

test('type names: "-0" is 0 (no negative-zero widths), out-of-range parts name the limit', () => {
  const t = parseType('(1,-0,-0)').kif;
  assert.ok(Object.is(t.i, 0) && Object.is(t.f, 0));
  const u = parseType('fixed<-0,-0>').kif;
  assert.ok(Object.is(u.f, 0));
  assert.throws(() => parseType('fixed<100001,3>'), /W 100001 is out of range \(\|W\| <= 100000\)/);
});
