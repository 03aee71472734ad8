/** The tracer's state: the program under construction, per-sample tensors as wires, raw model inputs. */
import type { Kif, OverflowMode, RoundMode } from '../fixed/types.ts';
import { ProgramBuilder } from '../ir/builder.ts';
import { opDelay } from '../ir/cost.ts';
import { operandsOf } from '../ir/interval.ts';
import type { OutputRef } from '../ir/types.ts';
import type { QuantizerExport } from '../layers/base.ts';
import type { CmvmMethod } from './matvec.ts';

/** Per-sample tensor: wires (≥ 0) or raw model-input elements (−1 − global input index), row-major. */
export interface Val {
  shape: number[];
  el: Int32Array;
}

export class TraceError extends Error {}

export function isRaw(e: number): boolean {
  return e < 0;
}

export const prod = (s: readonly number[]): number => s.reduce((a, d) => a * d, 1);

export class Tracer {
  readonly b = new ProgramBuilder();
  private zeroWire = -1;
  /** raw input element → its input op wire and the type key it was created with */
  private rawWires = new Map<number, { wire: number; key: string; owner: string }>();
  constructor(readonly opts: { cmvm: CmvmMethod; dc: number; effort?: number; threads?: number; shareTables?: boolean }) {}

  private lat = new Float64Array(256);
  private latDone = 0;

  /** Arrival time of wire w in adder levels (the IR latency model), computed incrementally. */
  latency(w: number): number {
    const ops = this.b.ops;
    if (this.lat.length < ops.length) {
      const grown = new Float64Array(Math.max(ops.length, this.lat.length * 2));
      grown.set(this.lat);
      this.lat = grown;
    }
    for (; this.latDone < ops.length; this.latDone++) {
      const node = ops[this.latDone]!;
      const args = operandsOf(node);
      let start = 0;
      for (const a of args) start = Math.max(start, this.lat[a]!);
      this.lat[this.latDone] =
        start +
        opDelay(
          node,
          args.map((a) => ops[a]!.qint),
        );
    }
    return this.lat[w]!;
  }

  zero(): number {
    if (this.zeroWire < 0) this.zeroWire = this.b.push({ kind: 'const', value: 0 }, undefined);
    return this.zeroWire;
  }

  /** Materializes (−1)^neg·wire·2^shift as one wire (wire −1 = 0). */
  ref(o: OutputRef): number {
    if (o.wire < 0) return this.zero();
    let w = o.wire;
    if (o.shift !== 0) w = this.b.copy(w, o.shift);
    if (o.neg) w = this.b.neg(w);
    return w;
  }

  /** Quantizes every element of `v` to the quantizer's per-element types. Raw elements become input ops. */
  quantize(v: Val, q: QuantizerExport, who: string): Val {
    const n = v.el.length;
    if (q.k.length !== n)
      throw new TraceError(`${who}: quantizer covers ${q.k.length} elements, the tensor has ${n} (shape [${v.shape}])`);
    const out = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      const t: Kif = { k: q.k[j]! ? 1 : 0, i: q.i[j]!, f: q.f[j]! };
      const e = v.el[j]!;
      if (t.k + t.i + t.f <= 0) out[j] = this.zero();
      else if (isRaw(e)) out[j] = this.rawInput(-1 - e, t, q.round, q.overflow, who);
      else out[j] = this.b.quant(e, t, q.round, q.overflow);
    }
    return { shape: [...v.shape], el: out };
  }

  /**
   * Input element `index` quantized to `t` as one more input op when other ops read it with other types (the
   * IR allows it: table layers quantize one input per edge, each edge its own type). Same type → same wire.
   */
  rawInputOfType(index: number, t: Kif, round: RoundMode, overflow: OverflowMode): number {
    const key = `${index}|${t.k},${t.i},${t.f},${round},${overflow}`;
    let w = this.typedRaw.get(key);
    if (w === undefined) {
      const had = this.rawWires.get(index);
      w = had && had.key === key.slice(key.indexOf('|') + 1) ? had.wire : this.b.input(index, t, round, overflow);
      this.typedRaw.set(key, w);
    }
    return w;
  }
  private typedRaw = new Map<string, number>();

  private rawInput(index: number, t: Kif, round: RoundMode, overflow: OverflowMode, who: string): number {
    const key = `${t.k},${t.i},${t.f},${round},${overflow}`;
    const had = this.rawWires.get(index);
    if (had) {
      if (had.key === key) return had.wire;
      throw new TraceError(
        `${who}: model input element ${index} is quantized by two different quantizers (${had.owner}: ${had.key}; ${who}: ${key}); ` +
          'the program has one input type per element — give the input a single quantizing layer (e.g. a QDense/identity layer with the input quantizer) and branch after it',
      );
    }
    const wire = this.b.input(index, t, round, overflow);
    this.rawWires.set(index, { wire, key, owner: who });
    return wire;
  }

  /** Fails when a raw (unquantized) element reaches arithmetic. */
  requireWires(v: Val, who: string): void {
    if (v.el.some(isRaw)) {
      throw new TraceError(
        `${who}: reads unquantized model input; the first layer that computes on an input needs its input quantizer enabled (enableIq) so the input has a fixed-point type`,
      );
    }
  }
}
