/** Output widths of W·x computed up front (cmvm refuses types whose graphs leave the exact float path). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lowestBitExponent, rowOutputBits, rowWiderThan } from '../src/cmvm/check.ts';
import { qiFromKif, qiWidth } from '../src/fixed/interval.ts';
import { doubleToDyadic } from '../src/fixed/quantize.ts';
import type { Kif } from '../src/fixed/types.ts';
import { makeRng } from './util/rng.ts';

test('lowestBitExponent is doubleToDyadic’s exponent (normal, subnormal, integer, fractional doubles)', () => {
  const rng = makeRng(3);
  const xs = [
    1,
    -1,
    0.5,
    3,
    2 ** 60,
    2 ** -1074,
    3 * 2 ** -1074,
    2 ** -1022,
    1.5 * 2 ** -1030,
    Number.MAX_VALUE,
    2 ** 52 + 2,
    -(2 ** 33) * 5,
  ];
  for (let n = 0; n < 5000; n++)
    xs.push((rng.chance(0.5) ? -1 : 1) * rng.int(1, 2 ** 30) * rng.int(1, 2 ** 22) * 2 ** rng.int(-1100, 900));
  for (const x of xs) if (x !== 0 && Number.isFinite(x)) assert.equal(lowestBitExponent(x), doubleToDyadic(x).e, String(x));
});

test('rowOutputBits is the width of the exact output interval (brute force over small types)', () => {
  const rng = makeRng(11);
  for (let n = 0; n < 300; n++) {
    const t: Kif = { k: rng.pick([0, 1] as const), i: rng.int(-2, 3), f: rng.int(-2, 3) };
    if (t.k + t.i + t.f <= 0 || t.k + t.i + t.f > 4) continue;
    const row = Array.from({ length: rng.int(1, 3) }, () => rng.int(-9, 9) * 2 ** rng.int(-3, 3));
    const q = qiFromKif(t);
    const values: number[] = [];
    for (let v = q.min; v <= q.max; v += q.step) values.push(v);
    // every combination of inputs: the set of outputs, and the width of its smallest type
    let outs = [0];
    for (const w of row) outs = outs.flatMap((s) => values.map((x) => s + w * x));
    const lo = Math.min(...outs);
    const hi = Math.max(...outs);
    const step = Math.min(...outs.filter((y) => y !== 0).map((y) => 2 ** doubleToDyadic(y).e), Infinity);
    const expected = lo === 0 && hi === 0 ? 0 : qiWidth({ min: lo, max: hi, step });
    assert.equal(rowOutputBits(row, t), expected, `${JSON.stringify(row)} ${JSON.stringify(t)}`);
  }
});

test('rowWiderThan: the float pre-estimate never clears a row that is too wide', () => {
  const rng = makeRng(5);
  for (let n = 0; n < 300; n++) {
    const t: Kif = { k: rng.pick([0, 1] as const), i: rng.int(-10, 40), f: rng.int(-10, 40) };
    const W = Array.from({ length: 3 }, () =>
      Array.from({ length: rng.int(1, 40) }, () => rng.int(-300, 300) * 2 ** rng.int(-32, 10)),
    );
    const limit = rng.int(20, 60);
    const exact = W.map((r) => rowOutputBits(r, t));
    const first = exact.findIndex((b) => b > limit);
    const got = rowWiderThan(W, t, limit);
    assert.deepEqual(got, first < 0 ? null : { row: first, bits: exact[first] });
  }
});
