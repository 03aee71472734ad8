import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { validateProgram } from '../src/ir/validate.ts';
import type { Program } from '../src/ir/types.ts';

function sample(): Program {
  const b = new ProgramBuilder();
  const x = b.input(0, { k: 1, i: 3, f: 2 }, 'TRN', 'WRAP');
  const y = b.input(1, { k: 0, i: 2, f: 0 }, 'RND', 'SAT');
  const s = b.add(x, y, 1, false); // 2
  const q = b.quant(y, { k: 0, i: 1, f: 0 }, 'TRN', 'SAT'); // 3: values 0..1
  const l = b.lut(q, [0.5, -3]); // 4
  return b.build(
    's',
    [{ name: 'x', shape: [2] }],
    [{ name: 'y', shape: [2] }],
    [
      { wire: s, shift: 0, neg: false },
      { wire: l, shift: 0, neg: true },
    ],
  );
}

const clone = (p: Program): Program => JSON.parse(JSON.stringify(p)) as Program;

test('a builder-made program validates', () => {
  validateProgram(sample());
});

test('validator names the op index and the problem', () => {
  const cases: [string, (p: Program) => void, RegExp][] = [
    [
      'operand not earlier',
      (p) => ((p.ops[2] as { b: number }).b = 2),
      /op 2 \(add\): operand 2 must be an earlier wire \(0\.\.1\)/,
    ],
    ['missing operand', (p) => ((p.ops[2] as { a: number }).a = 99), /op 2 \(add\): operand 99 must be an earlier wire/],
    ['unknown kind', (p) => ((p.ops[2] as { kind: string }).kind = 'fma'), /op 2 \(fma\): unknown op kind 'fma'/],
    [
      'wrong qint',
      (p) => (p.ops[2]!.qint = { ...p.ops[2]!.qint, max: 100 }),
      /op 2 \(add\): stored qint \[-8, 100\] step 0\.25 differs from the exact interval \[-8, 13\.75\] step 0\.25/,
    ],
    [
      'step not a power of two',
      (p) => (p.ops[0]!.qint = { ...p.ops[0]!.qint, step: 0.3 }),
      /op 0 \(input\): qint step 0\.3 is not a power of two/,
    ],
    [
      'table size',
      (p) => ((p.ops[4] as { table: number[] }).table = [1, 2, 3]),
      /op 4 \(lut\): table has 3 entries, operand wire 3 takes 2 values/,
    ],
    [
      'table entry',
      (p) => ((p.ops[4] as { table: number[] }).table = [1, NaN]),
      /op 4 \(lut\): table entry 1 is NaN, not a finite number/,
    ],
    [
      'bad rounding mode',
      (p) => ((p.ops[3] as { round: string }).round = 'ROUND'),
      /op 3 \(quant\): unknown rounding mode "ROUND"/,
    ],
    [
      'input index',
      (p) => ((p.ops[1] as { index: number }).index = 2),
      /op 1 \(input\): input index 2 out of range \(the program has 2 input elements\)/,
    ],
    ['non-integer shift', (p) => ((p.ops[2] as { shift: number }).shift = 0.5), /op 2 \(add\): shift must be an integer/],
    ['output wire', (p) => (p.out[1]!.wire = 5), /out\[1\] refers to wire 5, which does not exist/],
    ['out length', (p) => p.out.pop(), /out has 1 entries, the output tensors hold 2 elements/],
    ['version', (p) => ((p as { version: number }).version = 2), /format version 2, this hgq reads version 1/],
  ];
  for (const [what, edit, re] of cases) {
    const p = clone(sample());
    edit(p);
    assert.throws(() => validateProgram(p), re, what);
  }
});
