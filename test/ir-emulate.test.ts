import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeRng } from './util/rng.ts';
import { randomInputs, randomProgram } from './util/random-program.ts';
import { compileProgram, interpretProgram, floatPathExact } from '../src/ir/emulate.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { quantize } from '../src/fixed/quantize.ts';
import type { Program } from '../src/ir/types.ts';

function mismatches(a: Float64Array, b: Float64Array): number {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let j = 0; j < a.length; j++) if (!Object.is(a[j], b[j])) n++;
  return n;
}

const vec = (p: Program): number => p.inputs.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);

test('compiled emulator (WebAssembly i32x4 and float64 JavaScript paths) equals the BigInt reference interpreter on random programs', () => {
  const rng = makeRng(101);
  let total = 0;
  const modes: Record<string, number> = {};
  const kinds = new Set<string>();
  for (let t = 0; t < 400; t++) {
    const p = randomProgram(rng, { maxWidth: t % 3 === 0 ? 24 : 40 });
    for (const o of p.ops) kinds.add(o.kind === 'quant' ? `quant-${o.overflow}` : o.kind);
    const batch = 1 + (t % 16) * 3; // batches that are not multiples of the kernel's 4 lanes
    const x = randomInputs(rng, vec(p), batch);
    const ref = interpretProgram(p, x, batch);
    const em = compileProgram(p, { wasmChunkOps: 1 + (t % 7) * 5 });
    modes[em.mode] = (modes[em.mode] ?? 0) + 1;
    assert.equal(mismatches(ref, em.run(x, batch)), 0, `program ${t} (${em.mode})`);
    const js = compileProgram(p, { noWasm: true, chunkOps: 1 + (t % 9) * 4 });
    assert.equal(js.mode, 'float64');
    assert.equal(mismatches(ref, js.run(x, batch)), 0, `program ${t} (float64)`);
    total += batch;
  }
  assert.ok(
    (modes['wasm-i32x4'] ?? 0) > 350,
    `the WebAssembly kernel should take most narrow programs (${JSON.stringify(modes)})`,
  );
  assert.ok(total >= 9000);
  for (const k of [
    'input',
    'const',
    'copy',
    'add',
    'neg',
    'addc',
    'relu',
    'quant-WRAP',
    'quant-SAT',
    'quant-SAT_SYM',
    'mux',
    'mul',
    'lut',
    'min',
    'max',
  ]) {
    assert.ok(kinds.has(k), `random programs cover ${k}`);
  }
});

test('the WebAssembly kernel is exact with wires up to its 31-bit limit', () => {
  const rng = makeRng(909);
  let wasm = 0;
  for (let t = 0; t < 150; t++) {
    const p = randomProgram(rng, { maxWidth: 31, nOps: 60 });
    const x = randomInputs(rng, vec(p), 24);
    const em = compileProgram(p);
    if (em.mode === 'wasm-i32x4') wasm++;
    assert.equal(mismatches(interpretProgram(p, x, 24), em.run(x, 24)), 0, `program ${t} (${em.mode})`);
  }
  assert.ok(wasm > 100, `most 31-bit programs qualify for the kernel (${wasm}/150)`);
});

test('the WebAssembly kernel is exact across slices of a large batch', () => {
  const rng = makeRng(808);
  const p = randomProgram(rng, { nIn: 3, nOps: 60, maxWidth: 28 });
  const em = compileProgram(p);
  assert.equal(em.mode, 'wasm-i32x4');
  const batch = 40003;
  const x = randomInputs(rng, 3, batch);
  assert.equal(mismatches(em.run(x, batch), compileProgram(p, { noWasm: true }).run(x, batch)), 0);
  const head = 3000;
  assert.equal(mismatches(em.run(x.subarray(0, head * 3), head), interpretProgram(p, x.subarray(0, head * 3), head)), 0);
});

test('compiled BigInt emulator equals the reference, forced and on programs with wires wider than 52 bits', () => {
  const rng = makeRng(202);
  let wideSeen = 0;
  for (let t = 0; t < 200; t++) {
    const wide = t % 2 === 1;
    const p = randomProgram(rng, { maxWidth: wide ? 90 : 40 });
    const x = randomInputs(rng, vec(p), 30);
    const em = compileProgram(p, { forceBigInt: !wide, chunkOps: 1 + (t % 5) * 7 });
    if (wide && em.mode === 'bigint') wideSeen++;
    if (!wide) assert.equal(em.mode, 'bigint');
    assert.equal(mismatches(interpretProgram(p, x, 30), em.run(x, 30)), 0, `program ${t}`);
  }
  assert.ok(wideSeen > 15, `wide programs should take the BigInt path (${wideSeen})`);
});

test('input ops quantize exactly as src/fixed quantize for every mode, including ties, saturation and wrap', () => {
  const rng = makeRng(303);
  const modes = ['TRN', 'RND', 'RND_CONV', 'TRN_ZERO', 'RND_ZERO', 'RND_MIN_INF', 'RND_INF'] as const;
  const ovs = ['WRAP', 'SAT', 'SAT_SYM'] as const;
  for (const round of modes) {
    for (const overflow of ovs) {
      for (const t of [
        { k: 1, i: 2, f: 2 },
        { k: 0, i: 3, f: -1 },
        { k: 1, i: -2, f: 5 },
        { k: 1, i: 0, f: 0 },
        { k: 0, i: -1, f: 0 },
      ] as const) {
        const b = new ProgramBuilder();
        const w = b.input(0, t, round, overflow);
        const p = b.build('q', [{ name: 'x', shape: [1] }], [{ name: 'y', shape: [1] }], [{ wire: w, shift: 0, neg: false }]);
        const x = randomInputs(rng, 1, 400);
        const y = compileProgram(p).run(x, 400);
        for (let s = 0; s < 400; s++) {
          assert.equal(y[s], quantize(x[s]!, t, round, overflow), `${round}/${overflow} (${t.k},${t.i},${t.f}) x=${x[s]}`);
        }
      }
    }
  }
});

test('hand-computed edge cases: ties, saturation, wrap-around, zero width, negative i and f', () => {
  const b = new ProgramBuilder();
  const x = b.input(0, { k: 1, i: 6, f: 4 }, 'TRN', 'WRAP'); // step 1/16, range [-64, 64)
  const outs = [
    b.quant(x, { k: 1, i: 2, f: 1 }, 'RND', 'SAT'), // clip to [-4, 3.5], half up
    b.quant(x, { k: 1, i: 2, f: 1 }, 'RND_CONV', 'WRAP'), // ties to even, wrap mod 8
    b.quant(x, { k: 0, i: 3, f: -1 }, 'TRN', 'WRAP'), // multiples of 2 in [0, 8)
    b.quant(x, { k: 1, i: -1, f: 3 }, 'TRN', 'SAT_SYM'), // (−0.5, 0.5) step 1/8, symmetric
    b.quant(x, { k: 0, i: 0, f: 0 }, 'RND', 'SAT'), // zero width → 0
    b.relu(b.sub(x, b.const(1.5), 1)), // relu(x − 3)
    b.lut(b.quant(x, { k: 0, i: 2, f: 0 }, 'TRN', 'SAT'), [10, 20, 30, 40]),
    b.mux(b.addc(x, -1), b.const(-7), b.copy(x, -2)), // x<1 ? −7 : x/4
  ];
  const p = b.build(
    'edge',
    [{ name: 'x', shape: [1] }],
    [{ name: 'y', shape: [outs.length] }],
    outs.map((w) => ({ wire: w, shift: 0, neg: false })),
  );
  const cases: [number, number[]][] = [
    [2.75, [3, 3, 2, 0.375, 0, 0, 30, 0.6875]], // 2.75 → RND 3; RND_CONV tie 2.75→3 (even code 6); 2; sat 0.375
    [2.25, [2.5, 2, 2, 0.375, 0, 0, 30, 0.5625]], // RND tie 2.25 → 2.5; RND_CONV tie → 2 (code 4)
    [5.0, [3.5, -3, 4, 0.375, 0, 2, 40, 1.25]], // SAT at 3.5; wrap 5 → −3; 5 → 4
    [-5.25, [-4, 2.75, 2, -0.375, 0, 0, 10, -7]], // −5.25 RND_CONV exact −5.5? no: −5.25·2 = −10.5 → −10 → −5 → wrap +3... see below
    [0.03125, [0, 0, 0, 0, 0, 0, 10, -7]], // TRN input: 1/32 → 0
  ];
  // row 4 recomputed: x=−5.25: RND_CONV(−10.5) = −10 → −5 → wraps to 3 (mod 8 in [−4,4)): 3
  cases[3]![1][1] = 3;
  // TRN_SAT_SYM of −5.25 clips to −0.375; quant (0,3,−1) WRAP of −5.25 → floor(−2.625)=−3 → ·2 = −6 → mod 8 → 2
  const em = compileProgram(p);
  const ref = (xv: number): Float64Array => interpretProgram(p, Float64Array.of(xv), 1);
  for (const [xv, want] of cases) {
    assert.deepEqual(Array.from(em.run(Float64Array.of(xv), 1)), want, `x=${xv}`);
    assert.deepEqual(Array.from(ref(xv)), want, `reference x=${xv}`);
  }
});

test('non-finite inputs and wrong input sizes are rejected with the sample and element named', () => {
  const rng = makeRng(404);
  const p = randomProgram(rng, { nIn: 3 });
  const em = compileProgram(p);
  const x = new Float64Array(9).fill(1);
  x[7] = NaN;
  assert.throws(() => em.run(x, 3), /input sample 2, element 1 is NaN/);
  x[7] = -Infinity;
  assert.throws(() => em.run(x, 3), /input sample 2, element 1 is -Infinity/);
  assert.throws(() => interpretProgram(p, x, 3), /input sample 2, element 1 is -Infinity/);
  assert.throws(() => em.run(new Float64Array(8), 3), /expected 3 × 3 = 9 input values, got 8/);
});

test('outputs apply shift and sign, constant-zero outputs are 0, and -0 never appears', () => {
  const b = new ProgramBuilder();
  const x = b.input(0, { k: 1, i: 4, f: 2 }, 'TRN', 'WRAP');
  const z = b.mul(x, b.const(0));
  const p = b.build(
    'o',
    [{ name: 'x', shape: [1] }],
    [{ name: 'y', shape: [4] }],
    [
      { wire: x, shift: 2, neg: true },
      { wire: -1, shift: 0, neg: false },
      { wire: z, shift: 0, neg: true },
      { wire: x, shift: -3, neg: false },
    ],
  );
  const y = compileProgram(p).run(Float64Array.of(1.5, 0), 2);
  assert.deepEqual(Array.from(y), [-6, 0, 0, 0.1875, 0, 0, 0, 0]);
  for (const v of y) assert.ok(!Object.is(v, -0));
});

test('floatPathExact is false exactly when some wire is wider than 52 bits', () => {
  const b = new ProgramBuilder();
  const x = b.input(0, { k: 1, i: 25, f: 0 }, 'TRN', 'WRAP');
  const m = b.mul(x, x); // 51 bits
  const p1 = b.build('a', [{ name: 'x', shape: [1] }], [{ name: 'y', shape: [1] }], [{ wire: m, shift: 0, neg: false }]);
  assert.equal(floatPathExact(p1), true);
  const m2 = b.mul(m, b.input(0, { k: 1, i: 3, f: 0 }, 'TRN', 'WRAP'));
  const q = b.quant(m2, { k: 1, i: 20, f: 0 }, 'TRN', 'WRAP');
  const p2 = b.build('b', [{ name: 'x', shape: [1] }], [{ name: 'y', shape: [1] }], [{ wire: q, shift: 0, neg: false }]);
  assert.equal(floatPathExact(p2), false);
  const em = compileProgram(p2);
  assert.equal(em.mode, 'bigint');
  const xs = Float64Array.of(2 ** 25 - 1, -(2 ** 25), 12345, -7);
  assert.deepEqual(Array.from(em.run(xs, 4)), Array.from(interpretProgram(p2, xs, 4)));
});
