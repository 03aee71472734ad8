/**
 * Program simplification that preserves every output value exactly:
 *  - constant folding: an op whose operands are all constants, or whose exact interval is a single value,
 *    becomes a const;
 *  - algebraic rewrites: add of a zero wire → copy (or neg), add of a constant → addc, addc 0 / copy 0 /
 *    identity quant / relu of a non-negative wire / mux with a known-sign condition / disjoint min-max →
 *    the operand itself, copy of copy → one copy, neg of neg → the operand, mul by ±2^k → copy (+ neg);
 *  - common subexpressions (identical op on identical operands) are shared;
 *  - dead-op elimination: ops the outputs do not depend on are dropped (input ops are kept: they are the
 *    program's ports), wires renumbered; copies and negations feeding outputs fold into the output's
 *    shift and sign.
 * Intervals are recomputed, so they can only get narrower; lookup tables are re-indexed to the narrower
 * operand interval.
 */
import { qiFromKif } from '../fixed/interval.ts';
import { doubleToDyadic } from '../fixed/quantize.ts';
import type { QInterval } from '../fixed/types.ts';
import { ProgramBuilder } from './builder.ts';
import { dyadicToNumber, evalOp, type Dyadic } from './emulate.ts';
import { operandsOf, remapOperands, resliceTable } from './interval.ts';
import type { Node, Op, OutputRef, Program } from './types.ts';
import { validateProgram } from './validate.ts';

function isConstQ(q: QInterval): boolean {
  return q.min === q.max;
}

function sameQ(a: QInterval, b: QInterval): boolean {
  return a.min === b.min && a.max === b.max && a.step === b.step;
}

/** Returns a new, valid, equivalent program (see the file comment). */
export function optimizeProgram(p: Program): Program {
  validateProgram(p);
  const simplified = simplify(p);
  return eliminateDead(simplified);
}

function simplify(p: Program): Program {
  const b = new ProgramBuilder();
  const map = new Int32Array(p.ops.length).fill(-1);
  const cse = new Map<string, number>();
  const bq = (w: number): QInterval => b.qint(w);
  const kindOf = (w: number): Node => b.ops[w]!;
  const emit = (op: Op, layer: string | undefined): number => {
    const key = JSON.stringify(op);
    const hit = cse.get(key);
    if (hit !== undefined) return hit;
    const w = b.push(op, layer);
    // an op whose exact interval is one value is that constant
    const q = b.qint(w);
    if (op.kind !== 'const' && op.kind !== 'input' && isConstQ(q)) {
      b.ops.pop();
      return emit({ kind: 'const', value: q.min }, layer);
    }
    cse.set(key, w);
    return w;
  };
  p.ops.forEach((node, j) => {
    const layer = node.layer;
    if (node.kind === 'input') {
      map[j] = emit(
        { kind: 'input', index: node.index, type: { ...node.type }, round: node.round, overflow: node.overflow },
        layer,
      );
      return;
    }
    const olds = operandsOf(node);
    const ops = olds.map((a) => map[a]!);
    const qs = ops.map(bq);
    // all operands constant: evaluate exactly
    if (ops.length > 0 && ops.every((w) => kindOf(w).kind === 'const')) {
      const vals: Dyadic[] = ops.map((w) => doubleToDyadic((kindOf(w) as { value: number }).value));
      const r = dyadicToNumber(
        evalOp(
          node,
          vals,
          olds.map((a) => p.ops[a]!.qint),
        ),
      );
      if (r !== null) {
        map[j] = emit({ kind: 'const', value: r }, layer);
        return;
      }
    }
    map[j] = rewrite(node, ops, qs, p, b, emit, layer);
  });
  const out = p.out.map((o) => ({ wire: o.wire < 0 ? -1 : map[o.wire]!, shift: o.shift, neg: o.neg }));
  return b.build(p.name, p.inputs, p.outputs, out);
}

function rewrite(
  node: Node,
  ops: number[],
  qs: QInterval[],
  p: Program,
  b: ProgramBuilder,
  emit: (op: Op, layer: string | undefined) => number,
  layer: string | undefined,
): number {
  const isZero = (q: QInterval): boolean => q.min === 0 && q.max === 0;
  const constVal = (w: number): number | undefined => {
    const n = b.ops[w]!;
    return n.kind === 'const' ? n.value : undefined;
  };
  switch (node.kind) {
    case 'copy': {
      const a = ops[0]!;
      if (node.shift === 0) return a;
      const an = b.ops[a]!;
      if (an.kind === 'copy')
        return an.shift + node.shift === 0 ? an.a : emit({ kind: 'copy', a: an.a, shift: an.shift + node.shift }, layer);
      return emit({ kind: 'copy', a, shift: node.shift }, layer);
    }
    case 'add': {
      const [a, c] = ops as [number, number];
      const [qa, qc] = qs as [QInterval, QInterval];
      if (isZero(qc)) return a;
      if (isZero(qa)) {
        const sh = node.shift === 0 ? c : emit({ kind: 'copy', a: c, shift: node.shift }, layer);
        return node.sub ? emit({ kind: 'neg', a: sh }, layer) : sh;
      }
      const cv = constVal(c);
      if (cv !== undefined) {
        const v = (node.sub ? -cv : cv) * 2 ** node.shift;
        if (Number.isFinite(v) && v !== 0) return emit({ kind: 'addc', a, value: v }, layer);
      }
      const av = constVal(a);
      if (av !== undefined && !node.sub) {
        const sh = node.shift === 0 ? c : emit({ kind: 'copy', a: c, shift: node.shift }, layer);
        return emit({ kind: 'addc', a: sh, value: av }, layer);
      }
      return emit({ kind: 'add', a, b: c, shift: node.shift, sub: node.sub }, layer);
    }
    case 'neg': {
      const an = b.ops[ops[0]!]!;
      if (an.kind === 'neg') return an.a;
      return emit({ kind: 'neg', a: ops[0]! }, layer);
    }
    case 'addc':
      if (node.value === 0) return ops[0]!;
      return emit({ kind: 'addc', a: ops[0]!, value: node.value }, layer);
    case 'relu':
      if (qs[0]!.min >= 0) return ops[0]!;
      return emit({ kind: 'relu', a: ops[0]! }, layer);
    case 'quant': {
      const q = qs[0]!;
      const t = node.type;
      if (t.k + t.i + t.f > 0) {
        const range = qiFromKif(t, node.overflow);
        if (q.min >= range.min && q.max <= range.max && q.step >= 2 ** -t.f) return ops[0]!;
      }
      return emit({ kind: 'quant', a: ops[0]!, type: { ...t }, round: node.round, overflow: node.overflow }, layer);
    }
    case 'mux': {
      const [c, a, d] = ops as [number, number, number];
      if (qs[0]!.min >= 0) return d;
      if (qs[0]!.max < 0) return a;
      if (a === d) return a;
      return emit({ kind: 'mux', cond: c, a, b: d }, layer);
    }
    case 'mul': {
      const [a, c] = ops as [number, number];
      for (const [x, y] of [
        [a, c],
        [c, a],
      ] as const) {
        const v = constVal(y);
        if (v === undefined) continue;
        const { m, e } = doubleToDyadic(v);
        if (m === 1n || m === -1n) {
          const sh = e === 0 ? x : emit({ kind: 'copy', a: x, shift: e }, layer);
          return m === -1n ? emit({ kind: 'neg', a: sh }, layer) : sh;
        }
      }
      return emit({ kind: 'mul', a, b: c }, layer);
    }
    case 'lut': {
      const a = ops[0]!;
      const oldQ = p.ops[node.a]!.qint;
      const table = sameQ(qs[0]!, oldQ) ? node.table.slice() : resliceTable(node.table, oldQ, qs[0]!);
      return emit({ kind: 'lut', a, table }, layer);
    }
    case 'min':
    case 'max': {
      const [a, c] = ops as [number, number];
      const [qa, qc] = qs as [QInterval, QInterval];
      if (a === c) return a;
      const aBelow = qa.max <= qc.min;
      const cBelow = qc.max <= qa.min;
      if (node.kind === 'min' ? aBelow : cBelow) return a;
      if (node.kind === 'min' ? cBelow : aBelow) return c;
      return emit({ kind: node.kind, a, b: c }, layer);
    }
    case 'const':
      return emit({ kind: 'const', value: node.value }, layer);
    case 'input':
      throw new Error('unreachable');
  }
}

/** Drops ops the outputs do not need (inputs stay), folds output copies/negations, renumbers. */
function eliminateDead(p: Program): Program {
  // fold copy/neg chains into the outputs
  const out: OutputRef[] = p.out.map((o) => {
    let { wire, shift, neg } = o;
    for (;;) {
      if (wire < 0) break;
      const n = p.ops[wire]!;
      if (n.kind === 'copy') {
        shift += n.shift;
        wire = n.a;
      } else if (n.kind === 'neg') {
        neg = !neg;
        wire = n.a;
      } else if (n.kind === 'const' && n.value === 0) {
        wire = -1;
      } else break;
    }
    return wire < 0 ? { wire: -1, shift: 0, neg: false } : { wire, shift, neg };
  });
  const live = new Uint8Array(p.ops.length);
  for (const o of out) if (o.wire >= 0) live[o.wire] = 1;
  for (let j = p.ops.length - 1; j >= 0; j--) {
    const n = p.ops[j]!;
    if (n.kind === 'input') live[j] = 1;
    if (!live[j]) continue;
    for (const a of operandsOf(n)) live[a] = 1;
  }
  const map = new Int32Array(p.ops.length).fill(-1);
  const b = new ProgramBuilder();
  p.ops.forEach((n, j) => {
    if (!live[j]) return;
    const r = (a: number): number => map[a]!;
    const { qint: _q, layer, ...op } = n;
    const o = op as Op;
    remapOperands(o, r);
    map[j] = b.push(o, layer);
  });
  return b.build(
    p.name,
    p.inputs,
    p.outputs,
    out.map((o) => ({ wire: o.wire < 0 ? -1 : map[o.wire]!, shift: o.shift, neg: o.neg })),
  );
}
