import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  minimalKif,
  qiAdd,
  qiAddShifted,
  qiConst,
  qiContains,
  qiEquals,
  qiFromKif,
  qiIsZero,
  qiMax,
  qiMin,
  qiMul,
  qiNeg,
  qiQuantize,
  qiRelu,
  qiShift,
  qiSub,
  qiUnion,
  qiWidth,
} from '../src/fixed/interval.ts';
import { kifWidth, quantize, roundToStep } from '../src/fixed/quantize.ts';
import { OVERFLOW_MODES, ROUND_MODES, type Kif, type QInterval } from '../src/fixed/types.ts';
import { makeRng, type Rng } from './util/rng.ts';

/** A random interval: a few zero and constant ones, otherwise a random stretch of a random grid. */
function randomInterval(rng: Rng): QInterval {
  const u = rng.next();
  const step = 2 ** rng.int(-8, 4);
  if (u < 0.05) return { min: 0, max: 0, step };
  if (u < 0.1) return qiConst(rng.int(-300, 300) * step);
  const min = rng.int(-400, 400) * step;
  return { min, max: min + rng.int(1, 500) * step, step };
}

/** A value of q, its ends often. */
function sample(rng: Rng, q: QInterval): number {
  const n = Math.round((q.max - q.min) / q.step);
  const j = rng.chance(0.3) ? rng.pick([0, n]) : rng.int(0, n);
  return q.min + j * q.step + 0;
}

const ends = (q: QInterval): number[] => [q.min, q.max];

/** Holds every sampled result, and its ends are exactly the extremes over the operands' ends. */
function checkBinary(
  name: string,
  op: (a: QInterval, b: QInterval) => QInterval,
  f: (x: number, y: number) => number,
  rng: Rng,
): void {
  for (let n = 0; n < 2000; n++) {
    const a = randomInterval(rng);
    const b = randomInterval(rng);
    const q = op(a, b);
    for (let s = 0; s < 10; s++) {
      const x = sample(rng, a);
      const y = sample(rng, b);
      const z = f(x, y) + 0;
      assert.ok(
        qiContains(q, z),
        `${name}: ${z} = f(${x}, ${y}) in ${JSON.stringify(q)} (a=${JSON.stringify(a)}, b=${JSON.stringify(b)})`,
      );
    }
    // every rule here is monotone or bilinear in each operand: extremes sit at the corners
    const corners = ends(a).flatMap((x) => ends(b).map((y) => f(x, y) + 0));
    assert.equal(q.min, Math.min(...corners), `${name}: min attained`);
    assert.equal(q.max, Math.max(...corners), `${name}: max attained`);
  }
}

test('add, sub, add-shifted, mul, min, max: sound on sampled values and tight at the ends', () => {
  const rng = makeRng(99);
  checkBinary('add', qiAdd, (x, y) => x + y, rng);
  checkBinary('sub', qiSub, (x, y) => x - y, rng);
  checkBinary('mul', qiMul, (x, y) => x * y, rng);
  checkBinary('min', qiMin, Math.min, rng);
  checkBinary('max', qiMax, Math.max, rng);
  for (const sub of [false, true]) {
    const s = rng.int(-5, 5);
    checkBinary(
      `addShifted(${s},${sub})`,
      (a, b) => qiAddShifted(a, b, s, sub),
      (x, y) => (sub ? x - y * 2 ** s : x + y * 2 ** s),
      rng,
    );
  }
});

test('neg, relu, shift, union: sound and tight', () => {
  const rng = makeRng(5);
  for (let n = 0; n < 3000; n++) {
    const a = randomInterval(rng);
    const b = randomInterval(rng);
    const s = rng.int(-6, 6);
    const cases: [string, QInterval, (x: number) => number][] = [
      ['neg', qiNeg(a), (x) => -x],
      ['relu', qiRelu(a), (x) => Math.max(x, 0)],
      ['shift', qiShift(a, s), (x) => x * 2 ** s],
    ];
    for (const [name, q, f] of cases) {
      for (let j = 0; j < 10; j++) {
        const x = sample(rng, a);
        assert.ok(qiContains(q, f(x) + 0), `${name}(${x}) in ${JSON.stringify(q)}`);
      }
      assert.equal(q.min, Math.min(f(a.min), f(a.max)) + 0, `${name}: min attained`);
      assert.equal(q.max, Math.max(f(a.min), f(a.max)) + 0, `${name}: max attained`);
    }
    const u = qiUnion(a, b);
    for (let j = 0; j < 10; j++) {
      assert.ok(qiContains(u, sample(rng, a)) && qiContains(u, sample(rng, b)), 'union holds both');
    }
    assert.equal(u.min, Math.min(a.min, b.min));
    assert.equal(u.max, Math.max(a.max, b.max));
  }
});

test('qiQuantize holds every quantized sample; ends attained when nothing can wrap', () => {
  const rng = makeRng(17);
  let wrapped = 0;
  let tight = 0;
  for (let n = 0; n < 6000; n++) {
    const a = randomInterval(rng);
    const k = rng.int(0, 1) as 0 | 1;
    const W = rng.int(0, 14);
    const i = rng.int(-4, W + 2);
    const t: Kif = { k, i, f: W - k - i };
    const r = rng.pick(ROUND_MODES);
    const o = rng.pick(OVERFLOW_MODES);
    const q = qiQuantize(a, t, r, o);
    for (let j = 0; j < 12; j++) {
      const x = sample(rng, a);
      const y = quantize(x, t, r, o);
      assert.ok(
        qiContains(q, y),
        `quantize(${x}) = ${y} in ${JSON.stringify(q)} for ${JSON.stringify(a)} → (${k},${i},${t.f}) ${r} ${o}`,
      );
    }
    const qa = quantize(a.min, t, r, o);
    const qb = quantize(a.max, t, r, o);
    const range = qiFromKif(t, o);
    const mayWrap = o === 'WRAP' && (roundToStep(a.min, t.f, r) < range.min || roundToStep(a.max, t.f, r) > range.max);
    if (mayWrap) {
      assert.ok(qiEquals(q, range), 'WRAP that may overflow: the whole range');
      wrapped++;
    } else {
      assert.equal(q.min, qa, 'min attained');
      assert.equal(q.max, qb, 'max attained');
      tight++;
    }
  }
  assert.ok(wrapped > 500 && tight > 500, `both branches exercised (${wrapped} wrapped, ${tight} tight)`);
});

test('qiQuantize keeps an in-range interval on a coarser grid unchanged, and WRAP ranges that fit are rounded', () => {
  const t: Kif = { k: 1, i: 3, f: 4 };
  assert.deepEqual(qiQuantize({ min: -3, max: 5, step: 1 }, t, 'RND', 'WRAP'), { min: -3, max: 5, step: 1 });
  assert.deepEqual(qiQuantize({ min: -3.01171875, max: 5.03125, step: 2 ** -8 }, t, 'RND', 'WRAP'), {
    min: -3,
    max: 5.0625,
    step: 1 / 16,
  });
  assert.deepEqual(qiQuantize({ min: -20, max: 5, step: 1 }, t, 'RND', 'WRAP'), qiFromKif(t));
  assert.deepEqual(qiQuantize({ min: -20, max: 5, step: 1 }, t, 'RND', 'SAT'), { min: -8, max: 5, step: 1 / 16 });
  assert.ok(qiIsZero(qiQuantize({ min: -20, max: 5, step: 1 }, { k: 1, i: -1, f: 0 })));
});

test('qiFromKif and minimalKif are inverse; minimalKif is the smallest type holding the interval', () => {
  const rng = makeRng(23);
  for (let n = 0; n < 5000; n++) {
    const k = rng.int(0, 1) as 0 | 1;
    const W = rng.int(1, 40);
    const i = rng.int(-10, W + 10);
    const t: Kif = { k, i, f: W - k - i };
    for (const o of OVERFLOW_MODES) {
      const q = qiFromKif(t, o);
      if (qiIsZero(q)) continue; // signed 1-bit SAT_SYM holds only 0
      assert.deepEqual(minimalKif(q), t, `(${k},${i},${t.f}) ${o}`);
      assert.equal(qiWidth(q), W);
    }
    // any interval: the type holds it, and one bit fewer of i does not
    const a = randomInterval(rng);
    const m = minimalKif(a);
    const range = qiFromKif(m);
    assert.ok(qiIsZero(a) ? kifWidth(m) === 0 : a.min >= range.min && a.max <= range.max && a.step === range.step);
    if (!qiIsZero(a)) {
      const smaller = qiFromKif({ ...m, i: m.i - 1 });
      assert.ok(a.min < smaller.min || a.max > smaller.max, `i=${m.i} is minimal for ${JSON.stringify(a)}`);
      if (m.k === 1) assert.ok(a.min < 0);
    }
  }
  assert.deepEqual(minimalKif({ min: -4, max: 3, step: 1 }), { k: 1, i: 2, f: 0 });
  assert.deepEqual(minimalKif({ min: 0, max: 0.25, step: 0.25 }), { k: 0, i: -1, f: 2 });
  assert.deepEqual(minimalKif({ min: -4, max: -2, step: 2 }), { k: 1, i: 2, f: -1 });
  assert.equal(qiWidth({ min: 0, max: 0, step: 1 }), 0);
  assert.deepEqual(qiFromKif({ k: 1, i: 2, f: 1 }, 'SAT_SYM'), { min: -3.5, max: 3.5, step: 0.5 });
  assert.deepEqual(qiFromKif({ k: 0, i: 4, f: -2 }), { min: 0, max: 12, step: 4 });
});

test('constants: step is the largest power of two dividing the value; zero intervals are neutral', () => {
  assert.deepEqual(qiConst(0), { min: 0, max: 0, step: 1 });
  assert.deepEqual(qiConst(12), { min: 12, max: 12, step: 4 });
  assert.deepEqual(qiConst(-0.375), { min: -0.375, max: -0.375, step: 0.125 });
  assert.deepEqual(minimalKif(qiConst(-0.375)), { k: 1, i: -1, f: 3 });
  const a: QInterval = { min: -3, max: 5, step: 1 };
  const z: QInterval = { min: 0, max: 0, step: 2 ** -10 };
  assert.deepEqual(qiAdd(a, z), a);
  assert.deepEqual(qiMax(a, z), { min: 0, max: 5, step: 1 });
  assert.ok(qiIsZero(qiMul(a, z)));
  assert.ok(qiIsZero(qiRelu({ min: -5, max: 0, step: 1 })));
  assert.ok(!Object.is(qiNeg(z).min, -0) && !Object.is(qiNeg(z).max, -0));
  assert.ok(qiEquals({ min: 0, max: 0, step: 1 }, { min: 0, max: 0, step: 8 }));
  assert.ok(!qiEquals(a, { ...a, step: 0.5 }));
  assert.ok(qiContains(a, 2) && !qiContains(a, 2.5) && !qiContains(a, 6));
});
