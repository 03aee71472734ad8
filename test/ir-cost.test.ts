import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { analyzeProgram, opCost, opDelay } from '../src/ir/cost.ts';
import { operandsOf } from '../src/ir/interval.ts';
import type { Program } from '../src/ir/types.ts';

const S4 = { k: 1 as const, i: 3, f: 0 }; // [−8, 7]

function costOf(p: Program, w: number): [number, number] {
  const n = p.ops[w]!;
  const q = operandsOf(n).map((a) => p.ops[a]!.qint);
  return [opCost(n, q), opDelay(n, q)];
}

test('per-op cost (adder bits) and delay (adder levels) follow the documented model', () => {
  const b = new ProgramBuilder();
  const x = b.input(0, S4);
  const y = b.input(1, S4);
  const w: Record<string, number> = {
    copy: b.copy(x, 3),
    c: b.const(5),
    add: b.add(x, y, 0, false), // [−16, 14]: 5 bits, all overlapping
    addShift: b.add(x, y, 2, false), // x + 4y ∈ [−40, 35]: bits 0..6, y's start at 2 → 5 adder bits
    subFine: b.sub(x, y, -2), // x − y/4 ∈ [−9.75, 9] step 1/4: −y carries from bit −2 → bits −2..4 = 7
    addZero: b.add(x, b.const(0), 0, false),
    neg: b.neg(x), // [−7, 8]: 5 bits
    addc: b.addc(x, 4), // [−4, 11]: bits 2..4 need the adder = 3
    relu: b.relu(x), // [0, 7]: 3 bits → 1.5
    qTrnWrap: b.quant(x, { k: 1, i: 1, f: 0 }, 'TRN', 'WRAP'), // bit drop: free
    qRnd: b.quant(b.copy(x, -2), { k: 1, i: 1, f: 0 }, 'RND', 'WRAP'), // rounding adder, result 2 bits
    qSat: b.quant(x, { k: 1, i: 1, f: 0 }, 'TRN', 'SAT'), // saturation: 2 bits
    qSatRnd: b.quant(b.copy(x, -2), { k: 1, i: 0, f: 0 }, 'RND', 'SAT'), // both: 1 + 1
    mux: b.mux(x, y, x),
    mul: b.mul(x, y), // 4 × 4, delay ceil(log2 4) + 1
    min: b.min(x, b.copy(y, 1)), // comparator x − 2y ∈ [−22, 23]: 6 bits, result [−16, 7]: 5 bits
    lut: b.lut(
      b.quant(b.add(x, y, 4, false), { k: 1, i: 7, f: 0 }),
      Array.from({ length: 256 }, (_, j) => j - 128),
    ),
  };
  const p = b.build('c', [{ name: 'x', shape: [2] }], [{ name: 'y', shape: [0] }], []);
  const want: Record<string, [number, number]> = {
    copy: [0, 0],
    c: [0, 0],
    add: [5, 1],
    addShift: [5, 1],
    subFine: [7, 1],
    addZero: [0, 0],
    neg: [5, 1],
    addc: [3, 1],
    relu: [1.5, 0],
    qTrnWrap: [0, 0],
    qRnd: [2, 1],
    qSat: [2, 1],
    qSatRnd: [2, 1],
    mux: [4, 1],
    mul: [16, 3],
    min: [11, 1],
    lut: [8 * 4, 1],
  };
  for (const [k, v] of Object.entries(want)) assert.deepEqual(costOf(p, w[k]!), v, k);
});

test('latency accumulates along paths; depth is the deepest output; totals and per-layer figures add up', () => {
  const b = new ProgramBuilder();
  b.layer = 'in';
  const x = b.input(0, S4);
  const y = b.input(1, S4);
  b.layer = 'l1';
  const s = b.add(x, y); // 1
  const t = b.add(s, x); // 2
  b.layer = 'l2';
  const r = b.relu(t); // 2 (relu has no delay)
  const q = b.quant(b.copy(r, -1), { k: 0, i: 4, f: 0 }, 'RND', 'WRAP'); // 3
  const m = b.mul(q, y); // 3 + ceil(log2(4)) + 1 = 6
  const p = b.build(
    'l',
    [{ name: 'x', shape: [2] }],
    [{ name: 'y', shape: [2] }],
    [
      { wire: q, shift: 0, neg: false },
      { wire: s, shift: 0, neg: false },
    ],
  );
  const a = analyzeProgram(p);
  assert.equal(a.latency[s], 1);
  assert.equal(a.latency[t], 2);
  assert.equal(a.latency[r], 2);
  assert.equal(a.latency[q], 3);
  assert.equal(a.latency[m], 6);
  assert.equal(a.depth, 3);
  assert.equal(
    a.totalCost,
    a.cost.reduce((u, v) => u + v, 0),
  );
  const layerSum = Object.values(a.perLayer).reduce((u, L) => u + L.cost, 0);
  assert.equal(layerSum, a.totalCost);
  assert.deepEqual(Object.keys(a.perLayer).sort(), ['in', 'l1', 'l2']);
  assert.equal(a.perLayer.l1!.ops, 2);
  assert.equal(a.perLayer.l1!.depth, 2);
  assert.equal(a.perLayer.l2!.depth, 4); // from relu's start (2) to mul's end (6)
  assert.equal(a.perLayer.in!.cost, 0);
});
