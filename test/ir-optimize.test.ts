import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeRng } from './util/rng.ts';
import { randomInputs, randomProgram } from './util/random-program.ts';
import { optimizeProgram } from '../src/ir/optimize.ts';
import { compileProgram, interpretProgram } from '../src/ir/emulate.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { validateProgram } from '../src/ir/validate.ts';

test('optimizeProgram preserves every output exactly on 200 random programs, and never grows them', () => {
  const rng = makeRng(77);
  let before = 0;
  let after = 0;
  for (let t = 0; t < 200; t++) {
    const p = randomProgram(rng);
    const q = optimizeProgram(p);
    validateProgram(q);
    assert.ok(q.ops.length <= p.ops.length, `program ${t} grew`);
    before += p.ops.length;
    after += q.ops.length;
    const x = randomInputs(rng, p.inputs[0]!.shape[0]!, 40);
    assert.deepEqual(compileProgram(q).run(x, 40), interpretProgram(p, x, 40), `program ${t}`);
    // idempotent in effect: optimizing again changes nothing observable
    assert.deepEqual(compileProgram(optimizeProgram(q)).run(x, 40), interpretProgram(p, x, 40));
  }
  assert.ok(after < before * 0.8, `random programs carry dead and foldable ops (${before} → ${after})`);
});

test('dead ops go, constants fold, trivial ops collapse, lookups re-index', () => {
  const b = new ProgramBuilder();
  const x = b.input(0, { k: 1, i: 3, f: 0 }, 'TRN', 'WRAP');
  b.input(1, { k: 1, i: 3, f: 0 }, 'TRN', 'WRAP'); // unused port stays
  b.add(x, x, 3, false); // dead
  const c = b.add(b.const(3), b.const(1.5), 1, true); // 3 − 3 = 0
  const s = b.add(x, c, 0, false); // x + 0 → x
  const r = b.relu(b.quant(s, { k: 0, i: 3, f: 0 }, 'TRN', 'SAT')); // relu of non-negative → quant
  const m = b.mul(r, b.const(-0.25)); // → neg(copy(r, −2))
  const q = b.quant(x, { k: 1, i: 3, f: 0 }, 'RND', 'SAT'); // identity
  const sel = b.mux(b.const(1), q, x); // cond ≥ 0 → x
  const mm = b.max(b.relu(x), b.const(-4)); // relu ≥ 0 > −4 → relu(x)
  const lut = b.lut(
    b.quant(b.mux(b.const(2), x, b.relu(x)), { k: 1, i: 3, f: 0 }),
    Array.from({ length: 16 }, (_, j) => j),
  );
  const p = b.build(
    't',
    [{ name: 'x', shape: [2] }],
    [{ name: 'y', shape: [4] }],
    [
      { wire: m, shift: 0, neg: false },
      { wire: sel, shift: 1, neg: false },
      { wire: mm, shift: 0, neg: false },
      { wire: lut, shift: 0, neg: false },
    ],
  );
  const o = optimizeProgram(p);
  const kinds = o.ops.map((n) => n.kind).sort();
  assert.deepEqual(kinds, ['input', 'input', 'lut', 'quant', 'relu'].sort());
  // the negated, shifted product folds into the output reference
  assert.equal(o.out[0]!.neg, true);
  assert.equal(o.out[0]!.shift, -2);
  // the lookup's operand narrows from [−8, 7] (the mux) to relu(x) in [0, 7]: its table keeps entries 8..15
  const l = o.ops.find((n) => n.kind === 'lut') as { table: number[] };
  assert.deepEqual(l.table, [8, 9, 10, 11, 12, 13, 14, 15]);
  const xs = Float64Array.from({ length: 64 }, (_, j) => (j % 32) - 16);
  assert.deepEqual(compileProgram(o).run(xs, 32), interpretProgram(p, xs, 32));
});
