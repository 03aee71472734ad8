/**
 * ProgramBuilder: appends SSA ops, computing each new wire's exact interval with `opInterval`, and
 * `inlineProgram` to splice a standalone sub-program (e.g. a CMVM adder graph) into it.
 */
import type { Kif, OverflowMode, QInterval, RoundMode } from '../fixed/types.ts';
import { opInterval, operandsOf, resliceTable } from './interval.ts';
import { IR_FORMAT_VERSION, type Node, type Op, type OutputRef, type Program, type TensorSpec } from './types.ts';
import { validateProgram } from './validate.ts';

export class ProgramBuilder {
  readonly ops: Node[] = [];
  /** Stamped on every op created while set (per-layer cost reports). */
  layer: string | undefined = undefined;

  /** The exact interval of wire `w`. */
  qint(w: number): QInterval {
    const n = this.ops[w];
    if (n === undefined || !Number.isInteger(w))
      throw new RangeError(`ProgramBuilder: wire ${w} does not exist (have ${this.ops.length})`);
    return n.qint;
  }

  get size(): number {
    return this.ops.length;
  }

  /** Appends any op; its interval comes from `opInterval`. Returns the new wire. */
  push(op: Op, layer: string | undefined = this.layer): number {
    const operands = operandsOf(op);
    for (const a of operands) this.qint(a); // throws on a missing operand
    const qint = opInterval(
      op,
      operands.map((a) => this.ops[a]!.qint),
    );
    const node = { ...op, qint } as Node;
    if (layer !== undefined) node.layer = layer;
    this.ops.push(node);
    return this.ops.length - 1;
  }

  input(index: number, type: Kif, round: RoundMode = 'TRN', overflow: OverflowMode = 'WRAP', layer?: string): number {
    return this.push({ kind: 'input', index, type: { k: type.k, i: type.i, f: type.f }, round, overflow }, layer ?? this.layer);
  }
  const(value: number): number {
    return this.push({ kind: 'const', value });
  }
  copy(a: number, shift = 0): number {
    return this.push({ kind: 'copy', a, shift });
  }
  /** a + b·2^shift, or a − b·2^shift when `sub`. */
  add(a: number, b: number, shift = 0, sub = false): number {
    return this.push({ kind: 'add', a, b, shift, sub });
  }
  sub(a: number, b: number, shift = 0): number {
    return this.add(a, b, shift, true);
  }
  neg(a: number): number {
    return this.push({ kind: 'neg', a });
  }
  addc(a: number, value: number): number {
    return this.push({ kind: 'addc', a, value });
  }
  relu(a: number): number {
    return this.push({ kind: 'relu', a });
  }
  quant(a: number, type: Kif, round: RoundMode = 'TRN', overflow: OverflowMode = 'WRAP'): number {
    return this.push({ kind: 'quant', a, type: { k: type.k, i: type.i, f: type.f }, round, overflow });
  }
  /** cond < 0 ? a : b */
  mux(cond: number, a: number, b: number): number {
    return this.push({ kind: 'mux', cond, a, b });
  }
  mul(a: number, b: number): number {
    return this.push({ kind: 'mul', a, b });
  }
  /** table[(a − min)/step] over a's interval; the table needs one entry per value of a. */
  lut(a: number, table: readonly number[]): number {
    return this.push({ kind: 'lut', a, table: Array.from(table) });
  }
  min(a: number, b: number): number {
    return this.push({ kind: 'min', a, b });
  }
  max(a: number, b: number): number {
    return this.push({ kind: 'max', a, b });
  }

  /** Finishes the program (validated). `out` has one entry per flattened output element. */
  build(name: string, inputs: TensorSpec[], outputs: TensorSpec[], out: OutputRef[]): Program {
    const p: Program = {
      version: IR_FORMAT_VERSION,
      name,
      inputs: inputs.map((t) => ({ name: t.name, shape: [...t.shape] })),
      outputs: outputs.map((t) => ({ name: t.name, shape: [...t.shape] })),
      ops: this.ops.slice(),
      out: out.map((o) => ({ wire: o.wire, shift: o.shift, neg: o.neg })),
    };
    validateProgram(p);
    return p;
  }
}

function sameQint(a: QInterval, b: QInterval): boolean {
  return a.min === b.min && a.max === b.max && a.step === b.step;
}

/**
 * Splices `sub` into `b`: sub's `input` op with index j becomes wire inputWires[j] (which must hold no value
 * outside the input's declared type, i.e. its interval must lie within the input op's interval — the sub-program
 * assumed that type); every other op is appended with renumbered operands and `b.layer` stamped (or its own
 * layer when b.layer is unset). Returns sub's outputs in b's wire numbering (wire −1 stays −1).
 *
 * Since intervals are recomputed from the actual operands, a narrower input wire gives narrower (still exact)
 * intervals downstream; lookup tables are re-indexed to their narrower operands.
 */
export function inlineProgram(b: ProgramBuilder, sub: Program, inputWires: number[]): OutputRef[] {
  const map = new Int32Array(sub.ops.length).fill(-1);
  sub.ops.forEach((node, j) => {
    if (node.kind === 'input') {
      const w = inputWires[node.index];
      if (w === undefined)
        throw new RangeError(
          `inlineProgram: sub-program '${sub.name}' op ${j} reads input ${node.index}, but only ${inputWires.length} input wires were given`,
        );
      const have = b.qint(w);
      const want = node.qint;
      const inside =
        (have.min === 0 && have.max === 0) || (have.min >= want.min && have.max <= want.max && have.step % want.step === 0);
      if (!inside) {
        throw new RangeError(
          `inlineProgram: sub-program '${sub.name}' input ${node.index} (op ${j}) is declared [${want.min}, ${want.max}] step ${want.step}, ` +
            `but wire ${w} has the wider interval [${have.min}, ${have.max}] step ${have.step}; quantize the wire first or rebuild the sub-program for it`,
        );
      }
      map[j] = w;
      return;
    }
    const r = (a: number): number => map[a]!;
    let op: Op;
    switch (node.kind) {
      case 'const':
        op = { kind: 'const', value: node.value };
        break;
      case 'copy':
        op = { kind: 'copy', a: r(node.a), shift: node.shift };
        break;
      case 'add':
        op = { kind: 'add', a: r(node.a), b: r(node.b), shift: node.shift, sub: node.sub };
        break;
      case 'neg':
        op = { kind: 'neg', a: r(node.a) };
        break;
      case 'addc':
        op = { kind: 'addc', a: r(node.a), value: node.value };
        break;
      case 'relu':
        op = { kind: 'relu', a: r(node.a) };
        break;
      case 'quant':
        op = { kind: 'quant', a: r(node.a), type: { ...node.type }, round: node.round, overflow: node.overflow };
        break;
      case 'mux':
        op = { kind: 'mux', cond: r(node.cond), a: r(node.a), b: r(node.b) };
        break;
      case 'mul':
        op = { kind: 'mul', a: r(node.a), b: r(node.b) };
        break;
      case 'lut': {
        // a narrower operand (from a narrower input wire) takes the matching slice of the table
        const a = r(node.a);
        const oldQ = sub.ops[node.a]!.qint;
        const table = sameQint(b.qint(a), oldQ) ? node.table.slice() : resliceTable(node.table, oldQ, b.qint(a));
        op = { kind: 'lut', a, table };
        break;
      }
      case 'min':
        op = { kind: 'min', a: r(node.a), b: r(node.b) };
        break;
      case 'max':
        op = { kind: 'max', a: r(node.a), b: r(node.b) };
        break;
    }
    map[j] = b.push(op, b.layer ?? node.layer);
  });
  return sub.out.map((o) => ({ wire: o.wire < 0 ? -1 : map[o.wire]!, shift: o.shift, neg: o.neg }));
}
