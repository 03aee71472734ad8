import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codeToNumber, doubleToDyadic, quantize, quantizeArray, quantizeCode, roundToStep } from '../src/fixed/quantize.ts';
import { parseType } from '../src/fixed/typename.ts';
import { OVERFLOW_MODES, ROUND_MODES, type Kif, type OverflowMode, type RoundMode } from '../src/fixed/types.ts';
import { makeRng, type Rng } from './util/rng.ts';

/** The reference result as a number (all results of width <= 53 with sane exponents are doubles). */
function ref(x: number, t: Kif, r: RoundMode, o: OverflowMode): number {
  const v = codeToNumber(quantizeCode(x, t, r, o), t.f);
  assert.notEqual(v, null, `reference result for ${x} not a double`);
  return v!;
}

/** Sign of |x − q| − 2^p, computed exactly. */
function cmpAbsDiff(x: number, q: number, p: number): number {
  const a = doubleToDyadic(x);
  const b = doubleToDyadic(q);
  const e = Math.min(a.e, b.e, p);
  let d = (a.m << BigInt(a.e - e)) - (b.m << BigInt(b.e - e));
  if (d < 0n) d = -d;
  const lim = 1n << BigInt(p - e);
  return d < lim ? -1 : d > lim ? 1 : 0;
}

function randomType(rng: Rng): Kif {
  const k = rng.int(0, 1) as 0 | 1;
  const u = rng.next();
  if (u < 0.05) {
    // zero or negative width
    const i = rng.int(-10, 10);
    return { k, i, f: -k - i - rng.int(0, 3) };
  }
  if (u < 0.15) {
    // the widest float-path types
    const W = rng.int(48, 53);
    const i = rng.int(-5, W - k + 5);
    return { k, i, f: W - k - i };
  }
  const W = rng.int(1, 24);
  const i = rng.int(-12, W + 12); // negative i, or negative f when i > W - k
  return { k, i, f: W - k - i };
}

/** Values that stress the semantics for type t: ties, grid points, range ends, far out, tiny, random bits. */
function randomValue(rng: Rng, t: Kif, sat: boolean): number {
  const step = 2 ** -t.f;
  const span = 2 ** (t.i + 1);
  const sign = rng.chance(0.5) ? -1 : 1;
  switch (rng.int(0, 10)) {
    case 10: // just off a tie by a few ulps (where a naive y − floor(y) comparison is inexact)
      return (rng.int(-3, 2) + 0.5 + (rng.chance(0.5) ? -1 : 1) * 2 ** -rng.int(40, 60)) * step;
    case 0: // exact tie between two grid points
      return (rng.int(-(2 ** 20), 2 ** 20) + 0.5) * step;
    case 1: // a grid point
      return rng.int(-(2 ** 20), 2 ** 20) * step;
    case 2: // near the range ends
      return sign * (2 ** t.i + rng.int(-3, 3) * step * 0.5);
    case 3: // far out of range
      return sign * span * 2 ** rng.int(1, 80) * (1 + rng.next());
    case 4: // enormous, tiny or subnormal magnitudes (x·2^f may overflow or underflow)
      return sign * rng.pick([1e300 * rng.next(), 1e-300 * rng.next(), 5e-324 * rng.int(1, rng.pick([8, 2 ** 20]))]);
    case 5: // a tie far out of range (rounding decides the wrapped value)
      return sign * (2 ** rng.int(0, 30) + 0.5) * step * (rng.chance(0.5) ? 1 : 2 ** 10);
    case 6: // infinity (SAT only), zero, -0
      return sat && rng.chance(0.5) ? sign * Infinity : rng.chance(0.5) ? 0 : -0;
    case 7: {
      // random 53-bit mantissa around the type's scale
      const m = rng.int(0, 2 ** 26) * 2 ** 27 + rng.int(0, 2 ** 27 - 1);
      return sign * m * 2 ** (rng.int(-60, 10) - t.f);
    }
    default: // uniform over a bit more than the range
      return sign * rng.next() * span * 1.5;
  }
}

test('float path equals the BigInt reference on >= 100,000 random values, every round × overflow mode', () => {
  const rng = makeRng(20261127);
  const perCombo = 5000; // 7 × 3 × 5000 = 105,000
  let checked = 0;
  for (const r of ROUND_MODES) {
    for (const o of OVERFLOW_MODES) {
      let zeroWidth = 0;
      let ties = 0;
      let negI = 0;
      let negF = 0;
      let outside = 0;
      for (let n = 0; n < perCombo; n++) {
        const t = randomType(rng);
        const x = randomValue(rng, t, o !== 'WRAP');
        if (t.k + t.i + t.f <= 0) zeroWidth++;
        else if (Math.abs(x) >= 2 ** (t.i + 1)) outside++;
        if (t.i < 0) negI++;
        if (t.f < 0) negF++;
        if (Number.isFinite(x) && Math.abs(x * 2 ** t.f) < 2 ** 52 && (x * 2 ** t.f) % 1 === 0.5) ties++;
        const got = quantize(x, t, r, o);
        const want = ref(x, t, r, o);
        if (!Object.is(got, want)) assert.fail(`quantize(${x}, (${t.k},${t.i},${t.f}), ${r}, ${o}) = ${got}, reference ${want}`);
        checked++;
      }
      assert.ok(zeroWidth > 50, `${r}/${o}: zero-width types exercised (${zeroWidth})`);
      assert.ok(ties > 200, `${r}/${o}: exact ties exercised (${ties})`);
      assert.ok(negI > 200 && negF > 200, `${r}/${o}: negative i (${negI}) and f (${negF}) exercised`);
      assert.ok(outside > 500, `${r}/${o}: far out of range exercised (${outside})`);
    }
  }
  assert.ok(checked >= 100_000);
});

test('results are on the grid, in range, and never -0; round-to-nearest modes are within half a step', () => {
  const rng = makeRng(7);
  for (let n = 0; n < 20000; n++) {
    const r = rng.pick(ROUND_MODES);
    const o = rng.pick(OVERFLOW_MODES);
    const t = randomType(rng);
    if (t.k + t.i + t.f <= 0 || t.k + t.i + t.f > 53) continue;
    const x = randomValue(rng, t, o !== 'WRAP');
    const q = quantize(x, t, r, o);
    const step = 2 ** -t.f;
    const hi = 2 ** t.i - step;
    const lo = t.k === 0 ? 0 : o === 'SAT_SYM' ? -hi : -(2 ** t.i);
    assert.ok(!Object.is(q, -0), 'never -0');
    assert.ok(q >= lo && q <= hi, `${q} within [${lo}, ${hi}]`);
    assert.ok(q % step === 0, `${q} on the grid of ${step}`);
    if (Number.isFinite(x) && x >= lo && x <= hi) {
      const c = cmpAbsDiff(x, q, r.startsWith('RND') ? -t.f - 1 : -t.f);
      const what = `|${q} − ${x}| vs step ${step} (${t.k},${t.i},${t.f}) ${r} ${o}`;
      if (r.startsWith('RND')) assert.ok(c <= 0, `${what}: at most half a step`);
      else assert.ok(c < 0 && (r === 'TRN' ? q <= x : Math.abs(q) <= Math.abs(x)), `${what}: truncated`);
    }
    if (o !== 'WRAP' && Number.isFinite(x)) {
      // SAT is monotone: a larger input never gives a smaller output
      const y = x + Math.abs(x) * 0.25 + step;
      assert.ok(
        quantize(y, t, r, o) >= q,
        `monotone: q(${x}) = ${q}, q(${y}) = ${quantize(y, t, r, o)} (${t.k},${t.i},${t.f}) ${r} ${o}`,
      );
    }
  }
});

test('WRAP differs from rounding only by a multiple of 2^(i+k)', () => {
  const rng = makeRng(11);
  for (let n = 0; n < 20000; n++) {
    const r = rng.pick(ROUND_MODES);
    const W = rng.int(1, 20);
    const k = rng.int(0, 1) as 0 | 1;
    const i = rng.int(-6, W + 6);
    const t: Kif = { k, i, f: W - k - i };
    const x = randomValue(rng, t, false);
    if (!Number.isFinite(x) || Math.abs(x) > 2 ** 40) continue;
    const rounded = roundToStep(x, t.f, r);
    const q = quantize(x, t, r, 'WRAP');
    const period = 2 ** (t.i + k);
    assert.ok((rounded - q) % period === 0, `round(${x}) − wrap = ${rounded - q}`);
  }
});

test('wide types (54..64 bits) go through the BigInt path: exact when representable, else a RangeError', () => {
  const rng = makeRng(3);
  let exact = 0;
  for (let n = 0; n < 3000; n++) {
    const W = rng.int(54, 64);
    const k = rng.int(0, 1) as 0 | 1;
    const i = rng.int(0, W - k);
    const t: Kif = { k, i, f: W - k - i };
    const x = randomValue(rng, t, true);
    const o: OverflowMode = Number.isFinite(x) ? rng.pick(OVERFLOW_MODES) : 'SAT';
    const r = rng.pick(ROUND_MODES);
    const code = quantizeCode(x, t, r, o);
    const v = codeToNumber(code, t.f);
    if (v === null) assert.throws(() => quantize(x, t, r, o), /quantizeCode/);
    else {
      assert.ok(Object.is(quantize(x, t, r, o), v));
      exact++;
    }
  }
  assert.ok(exact > 1000);
  // 64-bit codes by hand
  const s64: Kif = { k: 1, i: 63, f: 0 };
  assert.equal(quantizeCode('9223372036854775807', s64), 2n ** 63n - 1n);
  assert.equal(quantizeCode('9223372036854775808', s64), -(2n ** 63n));
  assert.equal(quantizeCode('1e30', s64, 'TRN', 'SAT'), 2n ** 63n - 1n);
  assert.equal(quantizeCode('-1e30', s64, 'TRN', 'SAT_SYM'), -(2n ** 63n) + 1n);
  assert.equal(quantizeCode('18446744073709551615.5', { k: 0, i: 64, f: 0 }, 'RND'), 0n); // rounds to 2^64, wraps
});

// Known answers, each worked out by hand. UG1399 = Vitis HLS user guide, "Quantization Modes" and
// "Overflow Modes" examples (ap_fixed<3,2> is (1,1,1): step 0.5, range [-2, 1.5]).
const KNOWN: [type: string, round: RoundMode, overflow: OverflowMode, x: number, expect: number][] = [
  ['ap_fixed<3,2>', 'RND', 'SAT', 1.25, 1.5], // UG1399
  ['ap_fixed<3,2>', 'RND', 'SAT', -1.25, -1.0], // UG1399
  ['ap_fixed<3,2>', 'RND_ZERO', 'SAT', 1.25, 1.0], // UG1399
  ['ap_fixed<3,2>', 'RND_ZERO', 'SAT', -1.25, -1.0], // UG1399
  ['ap_fixed<3,2>', 'RND_MIN_INF', 'SAT', 1.25, 1.0], // UG1399
  ['ap_fixed<3,2>', 'RND_MIN_INF', 'SAT', -1.25, -1.5], // UG1399
  ['ap_fixed<3,2>', 'RND_INF', 'SAT', 1.25, 1.5], // UG1399
  ['ap_fixed<3,2>', 'RND_INF', 'SAT', -1.25, -1.5], // UG1399
  ['ap_fixed<3,2>', 'RND_CONV', 'SAT', 1.25, 1.0], // 2.5 → 2 (even)
  ['ap_fixed<3,2>', 'RND_CONV', 'SAT', 0.75, 1.0], // 1.5 → 2 (even)
  ['ap_fixed<3,2>', 'RND_CONV', 'SAT', -1.25, -1.0], // -2.5 → -2
  ['ap_fixed<3,2>', 'TRN', 'SAT', -1.25, -1.5], // floor(-2.5) = -3
  ['ap_fixed<3,2>', 'TRN_ZERO', 'SAT', -1.25, -1.0],
  ['ap_fixed<3,2>', 'TRN_ZERO', 'WRAP', -0.1, 0], // toward zero gives 0, never -0
  ['ap_fixed<3,2>', 'RND', 'SAT', 1.75, 1.5], // clip first: 1.5
  ['ap_fixed<4,4>', 'RND', 'SAT', 19, 7], // UG1399
  ['ap_fixed<4,4>', 'RND', 'SAT', -19, -8], // UG1399
  ['ap_ufixed<4,4>', 'RND', 'SAT', 19, 15], // UG1399
  ['ap_ufixed<4,4>', 'RND', 'SAT', -19, 0], // UG1399
  ['ap_fixed<4,4>', 'RND', 'SAT_SYM', 19, 7], // UG1399
  ['ap_fixed<4,4>', 'RND', 'SAT_SYM', -19, -7], // UG1399
  ['ap_ufixed<4,4>', 'RND', 'SAT_SYM', -19, 0],
  ['fixed<8,8>', 'TRN', 'WRAP', 200, -56], // 200 − 256
  ['ufixed<8,8>', 'TRN', 'WRAP', 300, 44], // 300 − 256
  ['fixed<4,4>', 'TRN', 'WRAP', -9, 7], // -9 + 16
  ['fixed<8,3>', 'RND', 'SAT', 1.3, 1.3125], // 41.6 → 42 / 32
  ['fixed<8,3>', 'RND', 'SAT', -7.9, -4],
  ['fixed<8,3>', 'TRN', 'WRAP', 5, -3], // 5 − 8
  ['(1,5,-2)', 'RND', 'SAT', 13, 12], // step 4: 3.25 → 3
  ['(1,5,-2)', 'RND', 'SAT', 14, 16], // 3.5 → 4
  ['(1,5,-2)', 'RND_CONV', 'SAT', 10, 8], // 2.5 → 2
  ['(1,5,-2)', 'RND', 'SAT', 30, 28], // max = 32 − 4
  ['(1,5,-2)', 'RND', 'WRAP', 30, -32], // 7.5 → 8 → wraps in 4 bits to -8
  ['(0,-2,5)', 'RND', 'SAT', 0.3, 0.21875], // max = 1/4 − 1/32
  ['(0,-2,5)', 'RND', 'WRAP', 0.1, 0.09375], // 3.2 → 3
  ['(0,-2,5)', 'TRN', 'WRAP', 0.3, 0.03125], // 9.6 → 9 → 9 mod 8 = 1
  ['(1,-1,0)', 'RND', 'SAT', 123.4, 0], // width 0
  ['(0,3,-3)', 'TRN', 'WRAP', -77, 0], // width 0
  ['fixed<1,1>', 'TRN', 'SAT_SYM', -1, 0], // 1-bit signed symmetric: only 0
  ['fixed<1,1>', 'TRN', 'SAT', -1, -1],
  ['ufixed<2,0>', 'RND_INF', 'WRAP', 0.125, 0.25], // tie 0.5 → away from zero
  ['fixed<6,2>', 'RND_MIN_INF', 'WRAP', -0.03125, -0.0625], // tie -0.5 → -1
  ['fixed<6,2>', 'RND_ZERO', 'WRAP', -0.03125, 0], // tie -0.5 → 0
];

test('known answers (≥ 20, across all modes; UG1399 examples included)', () => {
  for (const [name, r, o, x, expect] of KNOWN) {
    const t = parseType(name).kif;
    const got = quantize(x, t, r, o);
    assert.ok(Object.is(got, expect), `${name} ${r} ${o}: ${x} → ${got}, expected ${expect}`);
    assert.equal(quantizeCode(x, t, r, o), BigInt(expect * 2 ** t.f), `${name} code`);
  }
  const modes = new Set(KNOWN.flatMap(([, r, o]) => [r, o]));
  for (const m of [...ROUND_MODES, ...OVERFLOW_MODES]) assert.ok(modes.has(m), `known answers cover ${m}`);
});

test('decimal strings are parsed exactly, not through a double', () => {
  const t: Kif = { k: 1, i: 3, f: 60 };
  assert.equal(quantizeCode('0.1', t), 115292150460684697n); // floor(2^60 / 10)
  assert.equal(quantizeCode(0.1, t), 115292150460684704n); // the double 0.1 is slightly above 1/10
  assert.equal(quantizeCode('-1e-400', { k: 1, i: 3, f: 0 }), -1n); // floor of a tiny negative
  assert.equal(quantizeCode('2.5e-1', { k: 0, i: 2, f: 1 }, 'RND_CONV'), 0n);
  assert.equal(quantizeCode('  +.75 ', { k: 0, i: 2, f: 1 }, 'RND'), 2n);
  assert.equal(quantizeCode('-inf', { k: 1, i: 3, f: 0 }, 'TRN', 'SAT'), -8n);
  assert.throws(() => quantizeCode('1.2.3', t), /not a decimal number/);
  assert.throws(() => quantizeCode('0x10', t), /not a decimal number/);
  assert.throws(() => quantizeCode('', t), /not a decimal number/);
});

test('NaN throws, ±Infinity saturates under SAT and throws under WRAP, -0 becomes +0', () => {
  const t: Kif = { k: 1, i: 2, f: 3 };
  assert.throws(() => quantize(NaN, t), { name: 'RangeError', message: /NaN/ });
  assert.throws(() => quantizeCode(NaN, t), /NaN/);
  assert.equal(quantize(Infinity, t, 'RND', 'SAT'), 3.875);
  assert.equal(quantize(-Infinity, t, 'RND', 'SAT'), -4);
  assert.equal(quantize(-Infinity, t, 'RND', 'SAT_SYM'), -3.875);
  assert.throws(() => quantize(Infinity, t, 'RND', 'WRAP'), /WRAP/);
  assert.ok(Object.is(quantize(-0, t), 0));
  assert.ok(Object.is(quantize(-0.01, t, 'RND'), 0));
  assert.ok(Object.is(quantize(-8, t, 'TRN', 'WRAP'), 0)); // wraps to 0, not -0
  assert.throws(() => quantize(1, { k: 2 as 0, i: 1, f: 1 }), /k must be 0 or 1/);
  assert.throws(() => quantize(1, { k: 1, i: 1.5, f: 1 }), /integers/);
});

test('quantizeArray: one type or one per element, into out, NaN names its index', () => {
  const rng = makeRng(5);
  const xs = Float64Array.from({ length: 1000 }, () => (rng.next() - 0.5) * 40);
  const types = Array.from({ length: 1000 }, () => randomType(rng));
  const per = quantizeArray(xs, types, 'RND', 'SAT');
  per.forEach((q, j) => assert.ok(Object.is(q, quantize(xs[j]!, types[j]!, 'RND', 'SAT'))));
  const t: Kif = { k: 1, i: 3, f: 2 };
  const out = new Float64Array(1000);
  const res = quantizeArray(xs, t, 'RND_CONV', 'WRAP', out);
  assert.equal(res, out);
  out.forEach((q, j) => assert.ok(Object.is(q, quantize(xs[j]!, t, 'RND_CONV', 'WRAP'))));
  assert.throws(() => quantizeArray([1, NaN], t), /NaN \(element 1\)/);
  assert.throws(() => quantizeArray([1, 2], [t]), /1 types for 2 values/);
});
