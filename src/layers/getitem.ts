/**
 * GetItem: basic slicing `x[:, a:b:s, i, ...]` as a layer. Named after the Keras operation HGQ2 models store
 * for `x[...]` (class `GetItem`, keras.src.ops.numpy), so an imported model reads the same. An exact
 * pass-through (no arithmetic, no EBOPs); like the other pass-throughs its input quantizer is off by default.
 *
 * `key` has one entry per axis starting with the batch axis (which must be taken whole), as in Python:
 * a slice `{start, stop, step}` (null = default, negative start/stop count from the end, step ≥ 1), or an
 * integer index (the axis is dropped). Missing trailing entries take the whole axis. Keras' serialized form
 * `{class_name: '__slice__', config: {start, stop, step}}` is accepted too.
 *
 * Built from slice / pad / reshape only (wasm has no StridedSlice or Gather gradient), so it trains on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { QLayer, type QLayerArgs, type Shape } from './base.ts';

export interface SliceSpec {
  start?: number | null;
  stop?: number | null;
  step?: number | null;
}
export type KeyEntry = SliceSpec | number | null | { class_name: '__slice__'; config: SliceSpec };

export interface GetItemArgs extends QLayerArgs {
  key: KeyEntry[] | KeyEntry;
}

/** One axis after resolving the key against its size. */
interface AxisSel {
  start: number;
  step: number;
  count: number;
  drop: boolean;
}

export class GetItem extends QLayer {
  static className = 'GetItem';
  readonly key: (SliceSpec | number)[];

  constructor(args: GetItemArgs) {
    super({ enableIq: false, ...args });
    const raw = Array.isArray(args?.key) ? args.key : [args?.key];
    this.key = raw.map((e, a) => this.normEntry(e, a));
    if (!this.key.length) this.fail('key must have at least one entry (the batch axis)');
    const b = this.key[0]!;
    if (typeof b === 'number' || (b.start ?? 0) !== 0 || b.stop != null || (b.step ?? 1) !== 1) {
      this.fail(`the batch axis must be taken whole (':' as the first key entry), got ${JSON.stringify(b)}`);
    }
  }

  private normEntry(e: unknown, a: number): SliceSpec | number {
    if (e === null || e === undefined) return { start: null, stop: null, step: null };
    if (typeof e === 'number') {
      if (!Number.isInteger(e)) this.fail(`key entry ${a}: index ${e} is not an integer`);
      return e;
    }
    if (typeof e === 'object') {
      const o = e as Record<string, unknown>;
      const cfg = (o['class_name'] === '__slice__' ? o['config'] : o) as Record<string, unknown> | undefined;
      if (o['class_name'] !== undefined && o['class_name'] !== '__slice__')
        this.fail(
          `key entry ${a}: ${String(o['class_name'])} is not supported (only slices and integer indices; no newaxis, Ellipsis or index arrays)`,
        );
      const num = (v: unknown, what: string): number | null => {
        if (v === null || v === undefined) return null;
        if (typeof v !== 'number' || !Number.isInteger(v))
          this.fail(`key entry ${a}: slice ${what} must be an integer or null, got ${JSON.stringify(v)}`);
        return v;
      };
      const s = { start: num(cfg?.['start'], 'start'), stop: num(cfg?.['stop'], 'stop'), step: num(cfg?.['step'], 'step') };
      if (s.step !== null && s.step < 1) this.fail(`key entry ${a}: slice step ${s.step} is not supported (steps must be ≥ 1)`);
      for (const k of Object.keys(cfg ?? {}))
        if (!['start', 'stop', 'step'].includes(k)) this.fail(`key entry ${a}: unknown slice field '${k}'`);
      return s;
    }
    return this.fail(`key entry ${a}: expected a slice {start, stop, step}, an integer or null, got ${JSON.stringify(e)}`);
  }

  protected ownArgNames(): string[] {
    return ['key'];
  }

  /** Python slice semantics per axis (batch axis included, size unused there). */
  private selection(shape: Shape): AxisSel[] {
    if (this.key.length > shape.length) this.fail(`key has ${this.key.length} entries for an input of rank ${shape.length}`);
    return shape.map((n, a) => {
      if (a === 0) return { start: 0, step: 1, count: -1, drop: false };
      if (n === null) this.fail(`axis ${a} must have a known size`);
      const e = this.key[a] ?? { start: null, stop: null, step: null };
      if (typeof e === 'number') {
        const s = e < 0 ? e + n : e;
        if (s < 0 || s >= n) this.fail(`index ${e} is out of range for axis ${a} of size ${n}`);
        return { start: s, step: 1, count: 1, drop: true };
      }
      const step = e.step ?? 1;
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
      const start = e.start == null ? 0 : clamp(e.start);
      const stop = e.stop == null ? n : clamp(e.stop);
      return { start, step, count: Math.max(0, Math.ceil((stop - start) / step)), drop: false };
    });
  }

  protected buildLayer([s]: Shape[]): void {
    const sel = this.selection(s!);
    if (sel.some((x, a) => a > 0 && x.count === 0))
      this.fail(`the key selects no elements of axis ${sel.findIndex((x, a) => a > 0 && x.count === 0)} (input [${s}])`);
  }

  protected forward([x]: tf.Tensor[]): tf.Tensor {
    const sel = this.selection(x!.shape);
    let y = x!;
    sel.forEach((r, a) => {
      if (a === 0) return;
      const n = y.shape[a]!;
      const span = r.count * r.step;
      const begin = y.shape.map((_, j) => (j === a ? r.start : 0));
      const size = y.shape.map((d, j) => (j === a ? Math.min(span, n - r.start) : d));
      y = tf.slice(y, begin, size);
      if (r.step > 1) {
        if (size[a]! < span)
          y = tf.pad(y, y.shape.map((_, j) => (j === a ? [0, span - size[a]!] : [0, 0])) as [number, number][]);
        const split = [...y.shape.slice(0, a), r.count, r.step, ...y.shape.slice(a + 1)];
        y = tf.reshape(y, split);
        y = tf.slice(
          y,
          split.map(() => 0),
          split.map((d, j) => (j === a + 1 ? 1 : d)),
        );
        y = tf.reshape(y, [...split.slice(0, a + 1), ...split.slice(a + 2)]);
      }
    });
    const out = this.computeOutputShape(x!.shape) as number[];
    return tf.reshape(y, out);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    const sel = this.selection(s);
    return sel.flatMap((r, a) => (a === 0 ? [s[0] ?? null] : r.drop ? [] : [r.count]));
  }

  ebopsTensor(): tf.Scalar {
    return tf.scalar(0);
  }

  /** For output element j (per sample, row-major), the per-sample flat input index it copies. */
  indexMap(): Int32Array {
    const shape = this.builtInputShapes[0]!;
    const sel = this.selection(shape).slice(1);
    const dims = shape.slice(1) as number[];
    const st: number[] = [];
    let acc = 1;
    for (let a = dims.length - 1; a >= 0; a--) {
      st[a] = acc;
      acc *= dims[a]!;
    }
    const counts = sel.map((r) => r.count);
    const n = counts.reduce((p, c) => p * c, 1);
    const out = new Int32Array(n);
    const idx = new Array<number>(counts.length).fill(0);
    for (let j = 0; j < n; j++) {
      let o = 0;
      for (let a = 0; a < idx.length; a++) o += (sel[a]!.start + idx[a]! * sel[a]!.step) * st[a]!;
      out[j] = o;
      for (let a = idx.length - 1; a >= 0; a--) {
        if (++idx[a]! < counts[a]!) break;
        idx[a] = 0;
      }
    }
    return out;
  }

  protected exportLayer(): Record<string, unknown> {
    return { op: 'gather', indices: this.indexMap() };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), key: this.key as unknown as tf.serialization.ConfigDictValue };
  }
}

tf.serialization.registerClass(GetItem);
