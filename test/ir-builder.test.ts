import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeRng } from './util/rng.ts';
import { randomInputs, randomProgram } from './util/random-program.ts';
import { ProgramBuilder, inlineProgram } from '../src/ir/builder.ts';
import { compileProgram, interpretProgram } from '../src/ir/emulate.ts';
import { opInterval, tableInterval } from '../src/ir/interval.ts';
import { qiAddShifted, qiFromKif } from '../src/fixed/interval.ts';

test('builder computes every wire interval with opInterval and stamps the layer', () => {
  const b = new ProgramBuilder();
  b.layer = 'dense_1';
  const x = b.input(0, { k: 1, i: 2, f: 3 }, 'RND', 'SAT_SYM');
  const y = b.add(x, x, -2, true);
  assert.deepEqual(b.qint(x), qiFromKif({ k: 1, i: 2, f: 3 }, 'SAT_SYM'));
  assert.deepEqual(b.qint(y), qiAddShifted(b.qint(x), b.qint(x), -2, true));
  assert.equal(b.ops[y]!.layer, 'dense_1');
  b.layer = undefined;
  const c = b.const(0.75);
  assert.equal(b.ops[c]!.layer, undefined);
  assert.deepEqual(b.qint(c), opInterval({ kind: 'const', value: 0.75 }, []));
  assert.throws(() => b.add(x, 17), /wire 17 does not exist/);
});

test('lut interval: entries range, step = the finest step holding all entries', () => {
  assert.deepEqual(tableInterval([3, -1.5, 0.25, 2]), { min: -1.5, max: 3, step: 0.25 });
  assert.deepEqual(tableInterval([4, 8, -12]), { min: -12, max: 8, step: 4 });
  assert.deepEqual(tableInterval([0, 0]), { min: 0, max: 0, step: 1 });
});

test('inlineProgram splices a sub-program: outputs equal running the two programs one after the other', () => {
  const rng = makeRng(31);
  for (let t = 0; t < 60; t++) {
    // sub: a random program over 3 inputs of one type
    const sub = randomProgram(rng, { nIn: 3, nOut: 2 });
    const b = new ProgramBuilder();
    b.layer = 'outer';
    // outer wires: the same types sub's input ops declare (one per input index, so they fit)
    const firstType = new Map<number, { k: 0 | 1; i: number; f: number }>();
    for (const o of sub.ops) if (o.kind === 'input' && !firstType.has(o.index)) firstType.set(o.index, o.type);
    const wires: number[] = [];
    let ok = true;
    for (let j = 0; j < 3; j++) {
      const types = sub.ops.filter((o) => o.kind === 'input' && o.index === j);
      // only splice when every input op of index j declares the same type and modes
      if (types.length === 0) {
        wires.push(b.input(j, { k: 1, i: 2, f: 2 }, 'TRN', 'WRAP'));
        continue;
      }
      const o0 = types[0]!;
      if (o0.kind !== 'input' || types.some((o) => JSON.stringify(o) !== JSON.stringify(o0))) {
        ok = false;
        break;
      }
      wires.push(b.input(j, o0.type, o0.round, o0.overflow));
    }
    if (!ok) continue;
    const outs = inlineProgram(b, sub, wires);
    const p = b.build('outer', [{ name: 'x', shape: [3] }], [{ name: 'y', shape: [2] }], outs);
    assert.ok(p.ops.every((o) => o.kind === 'input' || o.layer === 'outer'));
    const x = randomInputs(rng, 3, 30);
    assert.deepEqual(compileProgram(p).run(x, 30), interpretProgram(sub, x, 30));
  }
});

test('inlineProgram rejects a wire wider than the sub-program input type', () => {
  const s = new ProgramBuilder();
  const a = s.input(0, { k: 1, i: 3, f: 0 }, 'TRN', 'WRAP');
  const sub = s.build(
    'sub',
    [{ name: 'x', shape: [1] }],
    [{ name: 'y', shape: [1] }],
    [{ wire: s.add(a, a, 1, false), shift: 0, neg: false }],
  );
  const b = new ProgramBuilder();
  const wide = b.input(0, { k: 1, i: 5, f: 0 }, 'TRN', 'WRAP');
  assert.throws(
    () => inlineProgram(b, sub, [wide]),
    /input 0 \(op 0\) is declared \[-8, 7\] step 1, but wire 0 has the wider interval \[-32, 31\] step 1/,
  );
  const fine = b.input(0, { k: 1, i: 3, f: 2 }, 'TRN', 'WRAP');
  assert.throws(() => inlineProgram(b, sub, [fine]), /wider interval \[-8, 7\.75\] step 0\.25/);
  const narrow = b.input(0, { k: 0, i: 2, f: -1 }, 'TRN', 'WRAP');
  const [o] = inlineProgram(b, sub, [narrow]);
  assert.deepEqual(b.qint(o!.wire), { min: 0, max: 6, step: 2 });
  assert.throws(() => inlineProgram(b, sub, []), /reads input 0, but only 0 input wires were given/);
});

test('inlineProgram re-indexes a lookup table when the input wire is narrower than the declared type', () => {
  const s = new ProgramBuilder();
  const a = s.input(0, { k: 1, i: 3, f: 0 }, 'TRN', 'WRAP'); // [−8, 7]
  const l = s.lut(
    a,
    Array.from({ length: 16 }, (_, j) => (j - 8) * 3),
  );
  const sub = s.build('sub', [{ name: 'x', shape: [1] }], [{ name: 'y', shape: [1] }], [{ wire: l, shift: 0, neg: false }]);
  const b = new ProgramBuilder();
  const narrow = b.input(0, { k: 0, i: 2, f: 0 }, 'TRN', 'SAT'); // [0, 3]
  const outs = inlineProgram(b, sub, [narrow]);
  const p = b.build('outer', [{ name: 'x', shape: [1] }], [{ name: 'y', shape: [1] }], outs);
  const lut = p.ops.find((o) => o.kind === 'lut') as { table: number[] };
  assert.deepEqual(lut.table, [0, 3, 6, 9]);
  const xs = Float64Array.of(0, 1, 2, 3, 2.5, -4, 9);
  // the outer input saturates to [0, 3] first; the sub-program then sees exactly those values
  const clipped = Float64Array.from(xs, (v) => Math.min(3, Math.max(0, Math.floor(v))));
  assert.deepEqual(compileProgram(p).run(xs, xs.length), interpretProgram(sub, clipped, clipped.length));
});
