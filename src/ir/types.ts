/**
 * The fixed-point dataflow IR (docs/ir.md §1): a list of SSA operations over scalar wires.
 * Wire n is the result of ops[n]; operands always refer to earlier wires. Every wire carries its
 * exact QInterval, which fixes its width in hardware. This file is the contract between trace/,
 * cmvm/, the emulator and backends/: pure data, no behaviour.
 */
import type { Kif, OverflowMode, QInterval, RoundMode } from '../fixed/types.ts';

export const IR_FORMAT_VERSION = 1;

export type OpKind = Op['kind'];

export type Op =
  /** Input element `index` of the flattened input vector, quantized to `type` (the port's type in hardware). */
  | { kind: 'input'; index: number; type: Kif; round: RoundMode; overflow: OverflowMode }
  /** A constant (an exact dyadic number). */
  | { kind: 'const'; value: number }
  /** a · 2^shift: free in hardware (rewiring). */
  | { kind: 'copy'; a: number; shift: number }
  /** a + b·2^shift, or a − b·2^shift when `sub`. shift may be negative. */
  | { kind: 'add'; a: number; b: number; shift: number; sub: boolean }
  /** −a */
  | { kind: 'neg'; a: number }
  /** a + value (value an exact dyadic constant). */
  | { kind: 'addc'; a: number; value: number }
  /** max(a, 0) */
  | { kind: 'relu'; a: number }
  /** a quantized to `type` with the given rounding and overflow modes (docs/fixed-point.md §2–3). */
  | { kind: 'quant'; a: number; type: Kif; round: RoundMode; overflow: OverflowMode }
  /** cond < 0 ? a : b (select on cond's sign bit). */
  | { kind: 'mux'; cond: number; a: number; b: number }
  /** a · b, both variables. */
  | { kind: 'mul'; a: number; b: number }
  /** table[(a − qint(a).min) / qint(a).step]; the table has one exact entry per value a can take. */
  | { kind: 'lut'; a: number; table: number[] }
  | { kind: 'min'; a: number; b: number }
  | { kind: 'max'; a: number; b: number };

/** An op with the exact interval of its result, and the model layer it came from (for per-layer reports). */
export type Node = Op & { qint: QInterval; layer?: string };

/** An output element: (neg ? −1 : 1) · wire · 2^shift; wire −1 is the constant 0 (a pruned output). */
export interface OutputRef {
  wire: number;
  shift: number;
  neg: boolean;
}

/** A named model input or output tensor; elements are laid out flat, tensors one after another. */
export interface TensorSpec {
  name: string;
  shape: number[];
}

export interface Program {
  version: typeof IR_FORMAT_VERSION;
  name: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  ops: Node[];
  /** One entry per flattened output element, in the order of `outputs`. */
  out: OutputRef[];
}
