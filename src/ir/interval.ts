/**
 * The exact result interval of each IR op from its operands' intervals. Every rule is one of src/fixed's
 * QInterval functions; this file only maps op kinds to them.
 */
import {
  qiAdd,
  qiAddShifted,
  qiConst,
  qiFromKif,
  qiMax,
  qiMin,
  qiMul,
  qiNeg,
  qiQuantize,
  qiRelu,
  qiShift,
  qiUnion,
} from '../fixed/interval.ts';
import type { QInterval } from '../fixed/types.ts';
import type { Op, OpKind } from './types.ts';

/** The fields of each op kind that hold operand wires, in a fixed order (mux: cond, a, b). */
const OPERAND_FIELDS: Record<OpKind, readonly ('cond' | 'a' | 'b')[]> = {
  input: [],
  const: [],
  copy: ['a'],
  neg: ['a'],
  addc: ['a'],
  relu: ['a'],
  quant: ['a'],
  lut: ['a'],
  add: ['a', 'b'],
  mul: ['a', 'b'],
  min: ['a', 'b'],
  max: ['a', 'b'],
  mux: ['cond', 'a', 'b'],
};

/** The operand wires of an op, in a fixed order (mux: cond, a, b). */
export function operandsOf(op: Op): number[] {
  const wires = op as unknown as Record<'cond' | 'a' | 'b', number>;
  return OPERAND_FIELDS[op.kind].map((f) => wires[f]);
}

/** Renumbers the op's operand wires in place: each wire w becomes r(w). */
export function remapOperands(op: Op, r: (w: number) => number): void {
  const wires = op as unknown as Record<'cond' | 'a' | 'b', number>;
  for (const f of OPERAND_FIELDS[op.kind]) wires[f] = r(wires[f]);
}

/** The interval of a table's entries: their union, so the step is the finest one holding every entry. */
export function tableInterval(table: readonly number[]): QInterval {
  if (table.length === 0) throw new RangeError('lookup table is empty');
  let q = qiConst(table[0]!);
  for (let j = 1; j < table.length; j++) q = qiUnion(q, qiConst(table[j]!));
  return q;
}

/**
 * The exact interval of `op`'s result; `qints` are its operands' intervals in `operandsOf` order.
 * Input ops: the interval of their type under their overflow mode (a SAT_SYM port never holds the most
 * negative code).
 */
export function opInterval(op: Op, qints: readonly QInterval[]): QInterval {
  const q = (j: number): QInterval => {
    const v = qints[j];
    if (v === undefined)
      throw new RangeError(`opInterval: ${op.kind} needs ${operandsOf(op).length} operand interval(s), got ${qints.length}`);
    return v;
  };
  switch (op.kind) {
    case 'input':
      return qiFromKif(op.type, op.overflow);
    case 'const':
      return qiConst(op.value);
    case 'copy':
      return qiShift(q(0), op.shift);
    case 'add':
      return qiAddShifted(q(0), q(1), op.shift, op.sub);
    case 'neg':
      return qiNeg(q(0));
    case 'addc':
      return qiAdd(q(0), qiConst(op.value));
    case 'relu':
      return qiRelu(q(0));
    case 'quant':
      return qiQuantize(q(0), op.type, op.round, op.overflow);
    case 'mux':
      return qiUnion(q(1), q(2));
    case 'mul':
      return qiMul(q(0), q(1));
    case 'lut':
      return tableInterval(op.table);
    case 'min':
      return qiMin(q(0), q(1));
    case 'max':
      return qiMax(q(0), q(1));
  }
}

/** Number of values a wire of interval q can take (a lookup table's required length). */
export function intervalSize(q: QInterval): number {
  return q.min === q.max ? 1 : (q.max - q.min) / q.step + 1;
}

/** Re-index a table built for operand interval `oldQ` to the (narrower) interval `newQ`. */
export function resliceTable(table: readonly number[], oldQ: QInterval, newQ: QInterval): number[] {
  const n = intervalSize(newQ);
  const out = new Array<number>(n);
  for (let j = 0; j < n; j++) {
    const v = newQ.min === newQ.max ? newQ.min : newQ.min + j * newQ.step;
    const idx = oldQ.min === oldQ.max ? 0 : (v - oldQ.min) / oldQ.step;
    // values off the old grid or range cannot occur (the new interval over-approximates a subset of the
    // old values); give them a neighbouring entry so the result interval does not widen
    const k = Math.min(table.length - 1, Math.max(0, Math.round(idx)));
    out[j] = table[k]!;
  }
  return out;
}
