/**
 * The IR's cost and latency model — the one place it is defined (trace reports, CMVM, backends' pipelining).
 *
 * Cost is in adder bits, a proxy for FPGA LUTs (one LUT6 + carry per adder bit). Delay is in adder levels
 * (one carry-chain add = 1). Per op, with W(x) the width of the smallest type holding interval x
 * (`qiWidth`), r the result:
 *
 *  - input, const, copy: cost 0, delay 0 (ports, constants and shifts are wiring).
 *  - Any op whose result is a constant (including zero-width wires): cost 0, delay 0 (folded by synthesis).
 *  - add/sub: the bits that need a full adder: from the lowest bit where both operands have bits (below it
 *    the finer operand passes through; for a − b with the finer b, from b's lowest bit, since −b carries
 *    through them) up to r's top bit. A zero operand makes it a wire (cost 0) or, for 0 − b, a negation.
 *    Delay 1.
 *  - neg: W(r), delay 1. addc: like add with the constant's lowest set bit, delay 1 (0 if the constant is 0).
 *  - relu: 0.5·W(r) (each bit ANDed with the inverted sign; a dual-output LUT6 does two), delay 0: one
 *    LUT level, absorbed by the next adder's LUTs in practice.
 *  - quant: dropping bits with TRN and WRAP is wiring (0). A rounding adder when bits are dropped with any
 *    other rounding mode: W(r). A saturation (SAT/SAT_SYM on an operand that can leave the range): compare +
 *    select, W(r). Delay 1 if either is present, else 0.
 *  - mux: W(r) (one LUT per bit), delay 1.
 *  - min/max: a comparator W(a − b) plus a select W(r), delay 1.
 *  - mul: W(a)·W(b), delay ceil(log2(min(W(a), W(b)))) + 1 (a tree of partial products).
 *  - lut: W(r)·max(1, 2^(n−6)) for a table of 2^n entries (LUT6 ROM per output bit), delay 1.
 *
 * Latency of a wire = max latency of its operands + its op's delay; inputs are at 0.
 */
import { ceilLog2, minimalKif, qiFromKif, qiIsZero, qiSub, qiWidth } from '../fixed/interval.ts';
import { doubleToDyadic } from '../fixed/quantize.ts';
import type { QInterval } from '../fixed/types.ts';
import { operandsOf } from './interval.ts';
import type { Node, Program } from './types.ts';

function lsb(q: QInterval): number {
  return Math.round(Math.log2(q.step));
}
/** Index of q's top bit (sign bit when signed). */
function msb(q: QInterval): number {
  const t = minimalKif(q);
  return t.k + t.i - 1;
}

function isConst(q: QInterval): boolean {
  return q.min === q.max;
}

/** Whether a quant op needs a rounding adder / a saturation stage. */
export function quantNeeds(node: Node & { kind: 'quant' }, a: QInterval): { round: boolean; saturate: boolean } {
  const t = node.type;
  if (t.k + t.i + t.f <= 0 || qiIsZero(a)) return { round: false, saturate: false };
  const range = qiFromKif(t, node.overflow);
  const round = node.round !== 'TRN' && a.step < 2 ** -t.f;
  const saturate = node.overflow !== 'WRAP' && (a.min < range.min || a.max > range.max);
  return { round, saturate };
}

/** Cost in adder bits of one op; `q` are its operands' intervals (operandsOf order). */
export function opCost(node: Node, q: readonly QInterval[]): number {
  const r = node.qint;
  if (node.kind === 'input' || node.kind === 'const' || node.kind === 'copy' || isConst(r)) return 0;
  const Wr = qiWidth(r);
  switch (node.kind) {
    case 'add': {
      const [a, b] = q as [QInterval, QInterval];
      if (qiIsZero(b)) return 0;
      if (qiIsZero(a)) return node.sub ? Wr : 0;
      const la = lsb(a);
      const lb = lsb(b) + node.shift;
      const start = node.sub && lb < la ? lb : Math.max(la, lb);
      return Math.max(0, msb(r) - start + 1);
    }
    case 'neg':
      return Wr;
    case 'addc': {
      if (node.value === 0) return 0;
      const lc = doubleToDyadic(node.value).e;
      return Math.max(0, msb(r) - Math.max(lsb(q[0]!), lc) + 1);
    }
    case 'relu':
      return 0.5 * Wr;
    case 'quant': {
      const need = quantNeeds(node, q[0]!);
      return (need.round ? Wr : 0) + (need.saturate ? Wr : 0);
    }
    case 'mux':
      return Wr;
    case 'min':
    case 'max':
      return qiWidth(qiSub(q[0]!, q[1]!)) + Wr;
    case 'mul':
      return qiWidth(q[0]!) * qiWidth(q[1]!);
    case 'lut': {
      const n = ceilLog2(node.table.length);
      return Wr * Math.max(1, 2 ** (n - 6));
    }
  }
}

/** Delay in adder levels of one op. */
export function opDelay(node: Node, q: readonly QInterval[]): number {
  const r = node.qint;
  if (node.kind === 'input' || node.kind === 'const' || node.kind === 'copy' || isConst(r)) return 0;
  switch (node.kind) {
    case 'add':
      return qiIsZero(q[1]!) || (qiIsZero(q[0]!) && !node.sub) ? 0 : 1;
    case 'addc':
      return node.value === 0 ? 0 : 1;
    case 'neg':
    case 'mux':
    case 'min':
    case 'max':
    case 'lut':
      return 1;
    case 'relu':
      return 0;
    case 'quant': {
      const need = quantNeeds(node, q[0]!);
      return need.round || need.saturate ? 1 : 0;
    }
    case 'mul': {
      const w = Math.min(qiWidth(q[0]!), qiWidth(q[1]!));
      return w === 0 ? 0 : ceilLog2(w) + 1;
    }
  }
}

export interface LayerAnalysis {
  cost: number;
  ops: number;
  /** latency span of the layer's ops: max latency − min start latency (start = latency − delay) */
  depth: number;
}

export interface ProgramAnalysis {
  /** per wire: adder levels from the inputs to this wire's result */
  latency: Float64Array;
  /** per wire: cost of its op */
  cost: Float64Array;
  totalCost: number;
  /** max latency over the outputs (0 when there are none) */
  depth: number;
  /** per `layer` tag (ops without one under "") */
  perLayer: Record<string, LayerAnalysis>;
}

/** Cost and latency of every op, totals, per layer. Dead ops count (run `optimizeProgram` first to drop them). */
export function analyzeProgram(p: Program): ProgramAnalysis {
  const n = p.ops.length;
  const latency = new Float64Array(n);
  const cost = new Float64Array(n);
  const perLayer: Record<string, LayerAnalysis & { start: number; end: number }> = {};
  let totalCost = 0;
  for (let j = 0; j < n; j++) {
    const node = p.ops[j]!;
    const ops = operandsOf(node);
    const q = ops.map((a) => p.ops[a]!.qint);
    const c = opCost(node, q);
    const d = opDelay(node, q);
    let start = 0;
    for (const a of ops) start = Math.max(start, latency[a]!);
    latency[j] = start + d;
    cost[j] = c;
    totalCost += c;
    const key = node.layer ?? '';
    const L = (perLayer[key] ??= { cost: 0, ops: 0, depth: 0, start: Infinity, end: -Infinity });
    L.cost += c;
    L.ops++;
    L.start = Math.min(L.start, start);
    L.end = Math.max(L.end, start + d);
  }
  let depth = 0;
  for (const o of p.out) if (o.wire >= 0) depth = Math.max(depth, latency[o.wire]!);
  const layers: Record<string, LayerAnalysis> = {};
  for (const [k, L] of Object.entries(perLayer)) layers[k] = { cost: L.cost, ops: L.ops, depth: L.end - L.start };
  return { latency, cost, totalCost, depth, perLayer: layers };
}
