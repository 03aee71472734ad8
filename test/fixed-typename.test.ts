import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatType, parseType } from '../src/fixed/typename.ts';
import type { Kif } from '../src/fixed/types.ts';
import { makeRng } from './util/rng.ts';

test('type names map to (k, i, f) as docs/fixed-point.md §1 defines them', () => {
  const cases: [string, Kif][] = [
    ['fixed<8,3>', { k: 1, i: 2, f: 5 }],
    ['ufixed<8,3>', { k: 0, i: 3, f: 5 }],
    ['ap_fixed<16,6>', { k: 1, i: 5, f: 10 }],
    ['ap_ufixed<4,4>', { k: 0, i: 4, f: 0 }],
    ['fixed<4,-2>', { k: 1, i: -3, f: 6 }], // negative I: value below 1/8 in magnitude
    ['ufixed<3,6>', { k: 0, i: 6, f: -3 }], // I > W: multiples of 8
    ['fixed<0,0>', { k: 1, i: -1, f: 0 }], // width 0
    ['(1,2,3)', { k: 1, i: 2, f: 3 }],
    ['( 0 , -4 , 9 )', { k: 0, i: -4, f: 9 }],
    ['  Fixed < 8 , 3 >  ', { k: 1, i: 2, f: 5 }],
    ['AP_FIXED<8,+3>', { k: 1, i: 2, f: 5 }],
  ];
  for (const [name, kif] of cases) assert.deepEqual(parseType(name), { kif }, name);
});

test('ap_fixed modes map to ours; AP_ prefix optional; N = 0 accepted', () => {
  assert.deepEqual(parseType('ap_fixed<8,3,AP_RND,AP_SAT>'), { kif: { k: 1, i: 2, f: 5 }, round: 'RND', overflow: 'SAT' });
  assert.deepEqual(parseType('ap_ufixed<8, 3, AP_RND_CONV>'), { kif: { k: 0, i: 3, f: 5 }, round: 'RND_CONV' });
  assert.deepEqual(parseType('ap_fixed<8,3,AP_TRN_ZERO,AP_WRAP,0>'), {
    kif: { k: 1, i: 2, f: 5 },
    round: 'TRN_ZERO',
    overflow: 'WRAP',
  });
  for (const q of ['RND', 'RND_ZERO', 'RND_MIN_INF', 'RND_INF', 'RND_CONV', 'TRN', 'TRN_ZERO'] as const) {
    assert.equal(parseType(`ap_fixed<8,3,AP_${q}>`).round, q);
    assert.equal(parseType(`fixed<8,3,${q.toLowerCase()}>`).round, q);
  }
  for (const o of ['WRAP', 'SAT', 'SAT_SYM'] as const) assert.equal(parseType(`ap_fixed<8,3,AP_TRN,AP_${o}>`).overflow, o);
});

test('malformed or unsupported names throw an error quoting the name and listing the accepted forms', () => {
  const bad: [string, RegExp][] = [
    ['fixd<8,3>', /not a recognised type name/],
    ['fixed<8>', /not a recognised/],
    ['fixed<8,3', /not a recognised/],
    ['fixed<-1,3>', /width W=-1/],
    ['fixed<8.5,3>', /not a recognised/],
    ['(2,1,1)', /k must be 0 or 1/],
    ['(1,1)', /not a recognised/],
    ['', /not a recognised/],
    ['ap_fixed<8,3,AP_ROUND>', /unknown quantization \(rounding\) mode "AP_ROUND"/],
    ['ap_fixed<8,3,AP_RND,AP_CLIP>', /unknown overflow mode "AP_CLIP"/],
    ['ap_fixed<8,3,AP_RND,AP_SAT_ZERO>', /AP_SAT_ZERO .* not supported/],
    ['ap_fixed<8,3,AP_RND,AP_WRAP_SM>', /AP_WRAP_SM .* not supported/],
    ['ap_fixed<8,3,AP_RND,AP_WRAP,2>', /N=2 are not supported/],
    ['ap_fixed<8,3,AP_RND,AP_WRAP,0,1>', /not a recognised/],
  ];
  for (const [name, why] of bad) {
    assert.throws(
      () => parseType(name),
      (e: Error) => {
        assert.ok(e.message.includes(`"${name}"`), `quotes ${name}: ${e.message}`);
        assert.match(e.message, why);
        assert.match(e.message, /Accepted forms: fixed<W,I>, ufixed<W,I>, ap_fixed<W,I/);
        return true;
      },
    );
  }
});

test('formatType round-trips through parseType in every style', () => {
  const rng = makeRng(1);
  for (let n = 0; n < 2000; n++) {
    const k = rng.int(0, 1) as 0 | 1;
    const W = rng.int(1, 64);
    const i = rng.int(-20, W + 20);
    const t: Kif = { k, i, f: W - k - i };
    for (const style of ['fixed', 'ap', 'kif'] as const) assert.deepEqual(parseType(formatType(t, style)).kif, t);
  }
  assert.equal(formatType({ k: 1, i: 2, f: 5 }), 'fixed<8,3>');
  assert.equal(formatType({ k: 0, i: 3, f: 5 }, 'ap'), 'ap_ufixed<8,3>');
  assert.equal(formatType({ k: 1, i: 2, f: 5 }, 'ap', 'RND', 'SAT'), 'ap_fixed<8,3,AP_RND,AP_SAT>');
  assert.equal(formatType({ k: 1, i: -3, f: 1 }, 'kif'), '(1,-3,1)');
  assert.deepEqual(parseType(formatType({ k: 1, i: 2, f: 5 }, 'ap', 'RND_CONV', 'SAT_SYM')), {
    kif: { k: 1, i: 2, f: 5 },
    round: 'RND_CONV',
    overflow: 'SAT_SYM',
  });
  assert.throws(() => formatType({ k: 0, i: 0, f: 0 }, 'ap'), /ap_fixed needs a width >= 1/);
});
