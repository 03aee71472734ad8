/**
 * Flat bus layout of a design's ports: element 0 in the least significant bits, each element at its own
 * exact width, elements packed back to back. Zero-width elements (pruned inputs, constant-zero outputs)
 * take no bits. The same layout is written to summary.json so testbenches and users can pack/unpack.
 */
import { kifWidth, qiNeg, qiShift } from '../fixed/index.ts';
import type { Kif, OverflowMode, RoundMode } from '../fixed/types.ts';
import type { Program } from '../ir/types.ts';
import { type Fmt, fmtFromKif, fmtOf } from './fmt.ts';

export interface BusField extends Fmt {
  /** element index in the flattened input (or output) vector */
  index: number;
  /** bit offset of the field's least significant bit in the bus */
  offset: number;
}

/** An input field also knows how raw data is quantized onto it (the input op's type and modes). */
export interface InputField extends BusField {
  type: Kif | null;
  round: RoundMode;
  overflow: OverflowMode;
}

export interface BusLayout<F extends BusField = BusField> {
  /** total bus width in bits (0 when every field is empty; the port is then 1 bit wide and unused / zero) */
  width: number;
  fields: F[];
}

export function tensorSize(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Input fields. An element read by one input op gets that op's type. An element read by several input ops
 * with different types (allowed by the IR) gets the union type (widest i, finest f, signed if any is), and
 * each op quantizes the port value to its own type in hardware: exact for port values on that grid.
 */
export function inputLayout(p: Program): BusLayout<InputField> {
  const n = p.inputs.reduce((a, t) => a + tensorSize(t.shape), 0);
  const byIndex = new Map<number, { type: Kif; round: RoundMode; overflow: OverflowMode }>();
  p.ops.forEach((op, w) => {
    if (op.kind !== 'input') return;
    if (!Number.isInteger(op.index) || op.index < 0 || op.index >= n)
      throw new RangeError(`op ${w}: input index ${op.index} outside the ${n} flattened input elements`);
    if (kifWidth(op.type) <= 0) return; // a zero-width type reads nothing
    const prev = byIndex.get(op.index);
    if (!prev) byIndex.set(op.index, { type: { ...op.type }, round: op.round, overflow: op.overflow });
    else
      prev.type = {
        k: Math.max(prev.type.k, op.type.k) as 0 | 1,
        i: Math.max(prev.type.i, op.type.i),
        f: Math.max(prev.type.f, op.type.f),
      };
  });
  let offset = 0;
  const fields: InputField[] = [];
  for (let index = 0; index < n; index++) {
    const t = byIndex.get(index);
    const fmt = t ? fmtFromKif(t.type) : { w: 0, lsb: 0, signed: false };
    fields.push({ index, offset, ...fmt, type: t?.type ?? null, round: t?.round ?? 'TRN', overflow: t?.overflow ?? 'WRAP' });
    offset += fmt.w;
  }
  return { width: offset, fields };
}

/** Format of output element j: (neg ? −1 : 1) · wire · 2^shift, exact. */
export function outputFmt(p: Program, j: number): Fmt {
  const o = p.out[j]!;
  if (o.wire < 0) return { w: 0, lsb: 0, signed: false };
  let q = qiShift(p.ops[o.wire]!.qint, o.shift);
  if (o.neg) q = qiNeg(q);
  return fmtOf(q);
}

export function outputLayout(p: Program): BusLayout {
  let offset = 0;
  const fields = p.out.map((_, index) => {
    const f = outputFmt(p, index);
    const field = { index, offset, ...f };
    offset += f.w;
    return field;
  });
  return { width: offset, fields };
}

/** The layout as plain JSON for summary.json (step as a number; f = −lsb). */
export function layoutJson(l: BusLayout): object {
  return {
    width: l.width,
    lsb_first: true,
    fields: l.fields.map((x) => ({
      index: x.index,
      offset: x.offset,
      width: x.w,
      signed: x.signed,
      f: -x.lsb + 0,
      step: 2 ** x.lsb,
    })),
  };
}
