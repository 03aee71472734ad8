/**
 * CMVM exactness: the emitted adder graph computes W·x exactly for every input in the declared intervals
 * (random values and interval corners), over thousands of random matrices: sizes 1×1 to 64×64, 1–12 bit
 * entries, signed, fractional with mixed steps, sparse, zero rows/columns, all-zero, a single nonzero,
 * duplicated/negated rows, zero-width and mixed inputs, arrival latencies, and every delay constraint.
 * The delay bound is checked against an independent computation, and the reported figures against the IR.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { minimalKif, qiFromKif } from '../src/fixed/interval.ts';
import type { QInterval } from '../src/fixed/types.ts';
import { analyzeProgram } from '../src/ir/cost.ts';
import { compileProgram } from '../src/ir/emulate.ts';
import { validateProgram } from '../src/ir/validate.ts';
import { evalCmvmProgram } from '../src/cmvm/check.ts';
import { solveCmvm, type CmvmInput, type CmvmOptions } from '../src/cmvm/solve.ts';
import { nafWeight } from './util/naf.ts';
import { makeRng, type Rng } from './util/rng.ts';

/** Finish time of the plain tree that repeatedly adds the two earliest terms (optimal; Golumbic 1976). */
function plainTreeFinish(arrivals: number[]): number {
  const a = arrivals.slice();
  while (a.length > 1) {
    a.sort((x, y) => x - y);
    const t = Math.max(a.shift()!, a.shift()!) + 1;
    a.push(t);
  }
  return a[0]!;
}

/** Digits of a dyadic number: the NAF weight of its odd part. */
function dyadicWeight(v: number): number {
  if (v === 0) return 0;
  let m = Math.abs(v);
  while (!Number.isInteger(m)) m *= 2;
  return nafWeight(m);
}

interface Case {
  W: number[][];
  inputs: CmvmInput[];
  /** the values each input may take (inside the declared interval) */
  ranges: QInterval[];
  opts: CmvmOptions;
  label: string;
}

function randomEntry(rng: Rng, bits: number, kind: string): number {
  const mag = rng.int(0, 2 ** bits - 1);
  switch (kind) {
    case 'unsigned':
      return mag;
    case 'signed':
      return rng.chance(0.5) ? -mag : mag;
    case 'fractional': // mixed steps: each entry its own number of fraction bits
      return ((rng.chance(0.5) ? -1 : 1) * mag) / 2 ** rng.int(0, 6);
    case 'large-exp': // entries that are multiples of big powers of two, or tiny
      return (rng.chance(0.5) ? -1 : 1) * mag * 2 ** rng.int(-10, 10);
    case 'pow2':
      return rng.chance(0.5) ? 0 : (rng.chance(0.5) ? -1 : 1) * 2 ** rng.int(-3, bits);
    default:
      throw new Error(kind);
  }
}

function randomInput(rng: Rng): { input: CmvmInput; range: QInterval } {
  const r = rng.next();
  if (r < 0.05) {
    const q = { min: 0, max: 0, step: 2 ** -rng.int(0, 3) };
    return { input: { qint: q }, range: q };
  }
  if (r < 0.45) {
    const q = { min: -128, max: 127, step: 1 };
    return { input: { qint: q }, range: q };
  }
  const k = rng.int(0, 1) as 0 | 1;
  const f = rng.int(-2, 6);
  const i = rng.int(Math.max(-f + (k ? 0 : 1), -2), 8);
  const full = qiFromKif({ k, i, f });
  let q = full;
  if (rng.chance(0.4)) {
    // a narrower interval inside the type (e.g. a calibrated range)
    const n = (full.max - full.min) / full.step;
    const a = rng.int(0, n);
    const b = rng.int(a, n);
    q = { min: full.min + a * full.step, max: full.min + b * full.step, step: full.step };
    if (q.min === q.max) q = { min: q.min, max: q.min + full.step, step: full.step };
  }
  // arrival times: mostly none, some whole adder levels, some fractional (e.g. a faster carry chain upstream)
  const latency = rng.chance(0.2) ? (rng.chance(0.5) ? rng.int(0, 5) : rng.int(0, 20) / 4) : undefined;
  return { input: latency === undefined ? { qint: q } : { qint: q, latency }, range: q };
}

function randomCase(rng: Rng, nOut: number, nIn: number): Case {
  const bits = rng.int(1, 12);
  const kind = rng.pick(['unsigned', 'signed', 'fractional', 'large-exp', 'pow2']);
  const density = rng.pick([1, 1, 0.7, 0.3, 0.1]);
  const W = Array.from({ length: nOut }, () =>
    Array.from({ length: nIn }, () => (rng.chance(density) ? randomEntry(rng, bits, kind) : 0)),
  );
  const shape = rng.next();
  if (shape < 0.05)
    for (const row of W) row.fill(0); // all zero
  else if (shape < 0.1) {
    for (const row of W) row.fill(0);
    W[rng.int(0, nOut - 1)]![rng.int(0, nIn - 1)] = randomEntry(rng, bits, 'signed') || 3;
  } else if (shape < 0.2 && nOut > 1) {
    W[rng.int(0, nOut - 1)]!.fill(0); // a zero row
    const c = rng.int(0, nIn - 1);
    for (const row of W) row[c] = 0; // a zero column
  } else if (shape < 0.3 && nOut > 1) {
    // duplicated and negated rows (their difference rows vanish in the decomposition)
    const src = W[rng.int(0, nOut - 1)]!;
    W[rng.int(0, nOut - 1)] = src.slice();
    W[rng.int(0, nOut - 1)] = src.map((v) => -v + 0);
  }
  const ins = Array.from({ length: nIn }, () => randomInput(rng));
  const opts: CmvmOptions = {
    dc: rng.pick([-1, -1, 0, 1, 2, 3]),
    method: rng.chance(0.8) ? 'wmc' : 'mc',
    decompose: rng.pick(['auto', 'auto', false, true] as const),
    objective: rng.chance(0.8) ? 'adders' : 'cost',
  };
  return {
    W,
    inputs: ins.map((x) => x.input),
    ranges: ins.map((x) => x.range),
    opts,
    label: `${nOut}×${nIn} ${bits}-bit ${kind} density ${density}`,
  };
}

/** Random inputs plus interval corners: all-min, all-max, each input alone at an end, random corners. */
function testVectors(rng: Rng, ranges: QInterval[], nRandom: number): number[][] {
  const pick = (q: QInterval): number => q.min + rng.int(0, (q.max - q.min) / q.step) * q.step;
  const xs: number[][] = [ranges.map((q) => q.min), ranges.map((q) => q.max)];
  for (let c = 0; c < ranges.length && c < 16; c++) {
    xs.push(ranges.map((q, j) => (j === c ? q.max : q.min)));
    xs.push(ranges.map((q, j) => (j === c ? q.min : q.max)));
  }
  for (let k = 0; k < 8; k++) xs.push(ranges.map((q) => (rng.chance(0.5) ? q.min : q.max)));
  for (let k = 0; k < nRandom; k++) xs.push(ranges.map(pick));
  return xs;
}

/** Exact W·x (the test keeps every product and sum well inside 53 bits). */
function reference(W: number[][], x: number[]): number[] {
  return W.map((row) => row.reduce((s, w, c) => s + w * x[c]!, 0) + 0);
}

function checkCase(cs: Case, rng: Rng): void {
  const { W, inputs, ranges, opts, label } = cs;
  const r = solveCmvm(W, inputs, opts);
  const p = r.program;
  const what = `${label} opts ${JSON.stringify(opts)}`;
  validateProgram(p);
  // contract: one input op per column first, typed by minimalKif, TRN/WRAP
  inputs.forEach((x, c) => {
    const op = p.ops[c]!;
    assert.equal(op.kind, 'input', what);
    if (op.kind !== 'input') return;
    assert.equal(op.index, c);
    assert.deepEqual(op.type, minimalKif(x.qint));
    assert.equal(op.round, 'TRN');
    assert.equal(op.overflow, 'WRAP');
  });
  assert.equal(p.ops.filter((o) => o.kind === 'input').length, inputs.length);
  assert.ok(
    p.ops.every((o) => o.kind === 'input' || o.kind === 'add'),
    what,
  );
  assert.equal(r.adders, p.ops.filter((o) => o.kind === 'add').length, `${what}: adders`);
  const an = analyzeProgram(p);
  assert.ok(Math.abs(r.cost - an.totalCost) < 1e-9, `${what}: cost ${r.cost} vs IR ${an.totalCost}`);
  W.forEach((row, o) => {
    if (row.every((v, c) => v === 0 || (ranges[c]!.max === 0 && ranges[c]!.min === 0)))
      assert.equal(p.out[o]!.wire, -1, `${what}: zero row ${o}`);
  });

  // exactness, through the IR emulator and through the independent evaluator (which also checks intervals)
  const xs = testVectors(rng, ranges, 12);
  const emu = compileProgram(p);
  const flat = new Float64Array(xs.length * inputs.length);
  xs.forEach((x, s) => flat.set(x, s * inputs.length));
  const y = emu.run(flat, xs.length);
  xs.forEach((x, s) => {
    const ref = reference(W, x);
    const mine = evalCmvmProgram(p, x);
    for (let o = 0; o < W.length; o++) {
      const got = y[s * W.length + o]!;
      if (got !== ref[o] || mine[o] !== ref[o])
        assert.fail(`${what}: output ${o} on x=${JSON.stringify(x)}: emulator ${got}, evaluator ${mine[o]}, W·x ${ref[o]}`);
    }
  });

  // the delay constraint, recomputed independently: plain tree over CSD digits = ceil(log2 Σ 2^arrival)
  const lat = new Float64Array(p.ops.length);
  p.ops.forEach((op, j) => {
    if (op.kind === 'input') lat[j] = inputs[op.index]!.latency ?? 0;
    else if (op.kind === 'add') lat[j] = Math.max(lat[op.a]!, lat[op.b]!) + 1;
  });
  if ((opts.dc ?? -1) >= 0) {
    W.forEach((row, o) => {
      const w = p.out[o]!.wire;
      if (w < 0) return;
      const arrivals: number[] = [];
      row.forEach((v, c) => {
        if (ranges[c]!.min === 0 && ranges[c]!.max === 0) return;
        for (let d = dyadicWeight(v); d > 0; d--) arrivals.push(inputs[c]!.latency ?? 0);
      });
      const plain = plainTreeFinish(arrivals);
      assert.ok(lat[w]! <= plain + opts.dc!, `${what}: output ${o} finishes at ${lat[w]}, bound ${plain} + dc ${opts.dc}`);
    });
  }
  const latest = Math.max(0, ...p.out.map((o) => (o.wire < 0 ? 0 : lat[o.wire]!)));
  assert.equal(r.latency, latest, `${what}: latency`);
}

test('W·x is exact on random and corner inputs for thousands of small random matrices', () => {
  const rng = makeRng(20261127);
  for (let k = 0; k < 2500; k++) {
    const nOut = rng.int(1, rng.chance(0.7) ? 4 : 8);
    const nIn = rng.int(1, rng.chance(0.7) ? 4 : 8);
    checkCase(randomCase(rng, nOut, nIn), rng);
  }
});

test('W·x is exact for medium and large random matrices (up to 64×64)', () => {
  const rng = makeRng(7);
  for (let k = 0; k < 60; k++) checkCase(randomCase(rng, rng.int(9, 20), rng.int(9, 20)), rng);
  for (const [nOut, nIn] of [
    [32, 32],
    [64, 64],
    [1, 64],
    [64, 1],
    [48, 17],
  ] as const) {
    checkCase(randomCase(rng, nOut, nIn), rng);
  }
});

test('edge cases: 1×1, all-zero, zero-width inputs, a single nonzero, negative and fractional entries', () => {
  const rng = makeRng(3);
  const s8 = { qint: { min: -128, max: 127, step: 1 } };
  const cases: Array<[number[][], CmvmInput[]]> = [
    [[[1]], [s8]],
    [[[-1]], [s8]],
    [[[0]], [s8]],
    [[[3]], [{ qint: { min: 0, max: 0, step: 1 } }]],
    [
      [
        [0, 0],
        [0, 0],
      ],
      [s8, s8],
    ],
    [
      [
        [0, 0, 0],
        [0, -0.375, 0],
      ],
      [s8, s8, s8],
    ],
    [
      [
        [5, 7],
        [-5, -7],
        [5, 7],
      ],
      [s8, s8],
    ],
    [
      [
        [2 ** 20, 2 ** -20],
        [-(2 ** -20), 3 * 2 ** 20],
      ],
      [{ qint: { min: -1, max: 1, step: 2 ** -8 } }, { qint: { min: 0, max: 3, step: 1 } }],
    ],
    [[[255, 255, 255, 255]], [s8, s8, s8, s8]],
    [
      [
        [1, 1],
        [1, -1],
      ],
      [{ qint: { min: 5, max: 5, step: 1 } }, { qint: { min: -0.5, max: 0, step: 0.5 } }],
    ],
  ];
  for (const [W, inputs] of cases) {
    for (const dc of [-1, 0, 2]) {
      checkCase({ W, inputs, ranges: inputs.map((x) => x.qint), opts: { dc }, label: JSON.stringify(W) }, rng);
    }
  }
  // an all-zero matrix needs no adders; a single power-of-two entry is a wire with a shift
  assert.equal(
    solveCmvm(
      [
        [0, 0],
        [0, 0],
      ],
      [s8, s8],
    ).adders,
    0,
  );
  const one = solveCmvm(
    [
      [0, 0],
      [0, -4],
    ],
    [s8, s8],
  );
  assert.equal(one.adders, 0);
  assert.deepEqual(one.program.out[1], { wire: 1, shift: 2, neg: true });
  assert.equal(one.program.out[0]!.wire, -1);
});

test('bad arguments are rejected with a clear message', () => {
  const s8 = { qint: { min: -128, max: 127, step: 1 } };
  assert.throws(() => solveCmvm([[1, 2], [3]], [s8, s8]), /row 1 has 1 entries, expected 2/);
  assert.throws(() => solveCmvm([[1, NaN]], [s8, s8]), /W\[0\]\[1\] = NaN is not a finite number/);
  assert.throws(() => solveCmvm([[1]], [s8], { dc: -2 }), /dc must be an integer/);
  assert.throws(() => solveCmvm([[1]], [{ qint: { min: 1, max: 0, step: 1 } }]), /input 0 has an invalid interval/);
});
