/**
 * ceilLog2 (src/fixed/interval.ts): the smallest e with 2^e ≥ v, exact on both of its paths (the integer
 * bit-length path up to 2^32 and the floating-point one), checked against the definition.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ceilLog2 } from '../src/fixed/interval.ts';
import { makeRng } from './util/rng.ts';

/** The definition, by doubling/halving (slow, obviously exact for dyadic v). */
function reference(v: number): number {
  let e = 0;
  while (2 ** e < v) e++;
  while (2 ** (e - 1) >= v) e--;
  return e;
}

test('ceilLog2 is exact at and around every power of two from 2^-60 to 2^60', () => {
  for (let e = -60; e <= 60; e++) {
    const p = 2 ** e;
    assert.equal(ceilLog2(p), e, `2^${e}`);
    // the neighbours one unit in the last place away, and ± small integers where exact
    const up = p * (1 + Number.EPSILON);
    const down = p * (1 - Number.EPSILON / 2);
    assert.equal(ceilLog2(up), e + 1, `just above 2^${e}`);
    assert.equal(ceilLog2(down), e, `just below 2^${e}`);
    if (e >= 1 && e <= 52) {
      assert.equal(ceilLog2(p + 1), e + 1, `2^${e} + 1`);
      assert.equal(ceilLog2(p - 1), e === 1 ? 0 : e, `2^${e} − 1`);
    }
  }
});

test('ceilLog2 matches the definition on random integers and dyadic fractions', () => {
  const rng = makeRng(7);
  for (let k = 0; k < 20000; k++) {
    const bits = rng.int(1, 52);
    const m = rng.int(1, 2 ** Math.min(bits, 31)) * (bits > 31 ? 2 ** (bits - 31) : 1) + (bits > 31 ? rng.int(0, 1) : 0);
    const v = m / 2 ** rng.int(-8, 20);
    assert.equal(ceilLog2(v), reference(v), `v = ${v}`);
  }
});
