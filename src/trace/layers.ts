/**
 * Per-layer tracing: each handler reproduces the layer's inference semantics on wires, reading the
 * layer's exact export (src/layers: `exportQuantized()`). HGQ layers share the frame input quantizer(s)
 * → computation → output quantizer; plain tfjs layers that only move elements (flatten, reshape,
 * concatenate, dropout) are rewiring.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ConstExport, LayerExport, QLayer, QuantizerExport } from '../layers/base.ts';
import type { TableExport } from '../layers/table.ts';
import type { TableLayerExport } from '../layers/table-dense.ts';
import type { EinsumMatmulView } from '../layers/einsum.ts';
import type { Kif } from '../fixed/types.ts';
import { matVec, plainSum } from './matvec.ts';
import { isRaw, prod, TraceError, type Tracer, type Val } from './tracer.ts';
import { emitLookups, type PendingLookup } from './shared-tables.ts';

export type Handler = (t: Tracer, layer: tf.layers.Layer, ins: Val[]) => Val[];

const who = (layer: tf.layers.Layer): string => `${layer.getClassName()} '${layer.name}'`;

/** The common frame of HGQ layers: quantize inputs, compute, quantize the output. */
function qlayer(body: (t: Tracer, ex: LayerExport, ins: Val[], name: string) => Val): Handler {
  return (t, layer, ins) => {
    const name = who(layer);
    const q = layer as unknown as QLayer;
    if (typeof q.exportQuantized !== 'function') throw new TraceError(`${name}: has no exportQuantized(); not an HGQ layer`);
    const ex = q.exportQuantized();
    if (ex.inputQuantizers.length !== ins.length)
      throw new TraceError(`${name}: export has ${ex.inputQuantizers.length} input quantizers for ${ins.length} inputs`);
    const qins = ins.map((v, j) => {
      const iq = ex.inputQuantizers[j];
      return iq ? t.quantize(v, iq, name) : v;
    });
    let y = body(t, ex, qins, name);
    if (ex.outputQuantizer) y = t.quantize(y, ex.outputQuantizer, name);
    return [y];
  };
}

/** Balanced tree of a binary op over wires (left to right pairs, as the adder trees elsewhere). */
function reduceTree(ws: number[], f: (a: number, b: number) => number): number {
  let level = ws.slice();
  while (level.length > 1) {
    const next: number[] = [];
    for (let j = 0; j + 1 < level.length; j += 2) next.push(f(level[j]!, level[j + 1]!));
    if (level.length % 2) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/**
 * y = act(W·x + b) at every position: `cols[p]` lists the input elements of position p (−2 = padding zero);
 * `biasAt(p, o)` is the bias of unit o there. Returns wires in position-major, unit-minor order.
 */
function affine(
  t: Tracer,
  x: Val,
  cols: ArrayLike<number>[],
  kernel: ConstExport,
  biasAt: ((p: number, o: number) => number) | null,
  activation: string,
  name: string,
): Int32Array {
  if (activation !== 'relu' && activation !== 'linear')
    throw new TraceError(`${name}: activation '${activation}' is not supported (linear, relu)`);
  const units = kernel.shape[kernel.shape.length - 1]!;
  const nIn = kernel.values.length / units;
  const W: number[][] = Array.from({ length: units }, (_, o) =>
    Array.from({ length: nIn }, (_, c) => kernel.values[c * units + o]!),
  );
  const xs = cols.map((idx) => {
    if (idx.length !== nIn) throw new TraceError(`${name}: ${idx.length} inputs per position, kernel expects ${nIn}`);
    return Array.from(idx, (j) => (j < 0 ? t.zero() : x.el[j]!));
  });
  const ys = matVec(t.b, W, xs, t.opts, (w) => t.latency(w));
  const out = new Int32Array(cols.length * units);
  ys.forEach((refs, p) => {
    refs.forEach((r, o) => {
      const bv = biasAt ? biasAt(p, o) : 0;
      let w: number;
      if (r.wire < 0) w = bv === 0 ? t.zero() : t.b.const(bv);
      else {
        w = t.ref(r);
        if (bv !== 0) w = t.b.addc(w, bv);
      }
      if (activation === 'relu') w = t.b.relu(w);
      out[p * units + o] = w;
    });
  });
  return out;
}

const dense = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const kernel = ex['kernel'] as ConstExport;
  const bias = (ex['bias'] as ConstExport | null) ?? null;
  const nIn = kernel.shape[0]!;
  const positions = x!.el.length / nIn;
  if (!Number.isInteger(positions))
    throw new TraceError(`${name}: input of ${x!.el.length} elements is not a multiple of the kernel's ${nIn} inputs`);
  const cols = Array.from({ length: positions }, (_, p) => Array.from({ length: nIn }, (_, c) => p * nIn + c));
  const el = affine(t, x!, cols, kernel, bias ? (_p, o) => bias.values[o]! : null, String(ex['activation'] ?? 'linear'), name);
  return { shape: [...ex.outputShape], el };
});

/** QEinsumDense(Batchnorm): the layer's own dense view (input/output index maps per position, folded kernel and broadcast bias). */
const einsum = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const mm = ex['matmul'] as EinsumMatmulView | null;
  if (!mm)
    throw new TraceError(
      `${name}: equation '${String(ex['equation'])}' has grouped (batch-like) letters shared by input and kernel; only equations that are a dense layer at every position are supported`,
    );
  const cols = Array.from({ length: mm.positions }, (_, p) => mm.inputIndex.subarray(p * mm.nIn, (p + 1) * mm.nIn));
  const bias = mm.bias;
  const ys = affine(
    t,
    x!,
    cols,
    mm.kernel,
    bias ? (p, o) => bias.values[mm.outputIndex[p * mm.units + o]!]! : null,
    String(ex['activation'] ?? 'linear'),
    name,
  );
  const el = new Int32Array(prod(ex.outputShape));
  for (let j = 0; j < ys.length; j++) el[mm.outputIndex[j]!] = ys[j]!;
  return { shape: [...ex.outputShape], el };
});

/** Input element indices per output position and window tap (−2 outside the input: zero or ignored padding). */
function windows(inShape: number[], ks: number[], strides: number[], pads: number[][], outSpatial: number[]): number[][][] {
  const rank = ks.length;
  const C = inShape[rank]!;
  const nOut = prod(outSpatial);
  const nTap = prod(ks);
  const res: number[][][] = [];
  const o = new Array<number>(rank).fill(0);
  for (let p = 0; p < nOut; p++) {
    const taps: number[][] = [];
    const d = new Array<number>(rank).fill(0);
    for (let k = 0; k < nTap; k++) {
      let idx = 0;
      let inside = true;
      for (let a = 0; a < rank; a++) {
        const pos = o[a]! * strides[a]! - pads[a]![0]! + d[a]!;
        if (pos < 0 || pos >= inShape[a]!) inside = false;
        idx = idx * inShape[a]! + pos;
      }
      taps.push(Array.from({ length: C }, (_, c) => (inside ? idx * C + c : -2)));
      for (let a = rank - 1; a >= 0; a--) {
        if (++d[a]! < ks[a]!) break;
        d[a] = 0;
      }
    }
    res.push(taps);
    for (let a = rank - 1; a >= 0; a--) {
      if (++o[a]! < outSpatial[a]!) break;
      o[a] = 0;
    }
  }
  return res;
}

const conv = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const kernel = ex['kernel'] as ConstExport;
  const bias = (ex['bias'] as ConstExport | null) ?? null;
  const ks = ex['kernelSize'] as number[];
  const strides = ex['strides'] as number[];
  const pads = ex['pads'] as number[][];
  const inShape = ex.inputShapes[0]!;
  const outSpatial = ex.outputShape.slice(0, -1);
  if ((ex['dilation'] as number[] | undefined)?.some((d) => d !== 1))
    throw new TraceError(`${name}: dilated convolution is not supported`);
  const win = windows(inShape, ks, strides, pads, outSpatial);
  const cols = win.map((taps) => taps.flat());
  const el = affine(t, x!, cols, kernel, bias ? (_p, o) => bias.values[o]! : null, String(ex['activation'] ?? 'linear'), name);
  return { shape: [...ex.outputShape], el };
});

/** Exact division of a wire by a power of two (as the layer divides by the window's element count). */
function divPow2(t: Tracer, w: number, n: number, name: string): number {
  const e = Math.log2(n);
  if (!Number.isInteger(e)) {
    throw new TraceError(
      `${name}: average over ${n} elements is not a division by a power of two, so the model's float result is not an exact fixed-point value; use window sizes (or 'valid' padding) with power-of-two element counts`,
    );
  }
  return e === 0 ? w : t.b.copy(w, -e);
}

const pool = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const inShape = ex.inputShapes[0]!;
  const rank = inShape.length - 1;
  const C = inShape[rank]!;
  const op = ex['op'] as 'max' | 'avg';
  const outSpatial = ex.outputShape.slice(0, -1);
  const win = windows(inShape, ex['poolSize'] as number[], ex['strides'] as number[], ex['pads'] as number[][], outSpatial);
  const el = new Int32Array(win.length * C);
  win.forEach((taps, p) => {
    for (let c = 0; c < C; c++) {
      const ws = taps
        .map((tap) => tap[c]!)
        .filter((j) => j >= 0)
        .map((j) => x!.el[j]!);
      const w =
        op === 'max'
          ? reduceTree(ws, (a, b) => t.b.max(a, b))
          : divPow2(
              t,
              reduceTree(ws, (a, b) => t.b.add(a, b)),
              ws.length,
              name,
            );
      el[p * C + c] = w;
    }
  });
  return { shape: [...ex.outputShape], el };
});

const globalPool = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const inShape = ex.inputShapes[0]!;
  const C = inShape[inShape.length - 1]!;
  const n = x!.el.length / C;
  const op = ex['op'] as 'max' | 'avg';
  const el = new Int32Array(C);
  for (let c = 0; c < C; c++) {
    const ws = Array.from({ length: n }, (_, p) => x!.el[p * C + c]!);
    el[c] =
      op === 'max'
        ? reduceTree(ws, (a, b) => t.b.max(a, b))
        : divPow2(
            t,
            reduceTree(ws, (a, b) => t.b.add(a, b)),
            n,
            name,
          );
  }
  return { shape: [...ex.outputShape], el };
});

/** x·c as signed-digit shifts and adds of one wire (a constant multiply), exact. */
function mulConst(t: Tracer, w: number, c: number): number {
  return t.ref(plainSum(t.b, [c], [w]));
}

/** QBatchNormalization in inference: y = x·scale[c] + offset[c] per channel (last axis), both quantized constants. */
const batchnorm = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const scale = ex['scale'] as ConstExport;
  const offset = ex['offset'] as ConstExport;
  const C = scale.values.length;
  const el = x!.el.map((w, j) => {
    const c = j % C;
    const y = mulConst(t, w, scale.values[c]!);
    const o = offset.values[c]!;
    return o === 0 ? y : t.b.addc(y, o);
  });
  return { shape: [...ex.outputShape], el };
});

/** Elementwise merges, folded left to right as the layer does. */
const merge = qlayer((t, ex, ins, name) => {
  for (const v of ins) t.requireWires(v, name);
  const op = ex['op'] as string;
  const f: Record<string, (a: number, b: number) => number> = {
    add: (a, b) => t.b.add(a, b),
    subtract: (a, b) => t.b.sub(a, b),
    multiply: (a, b) => t.b.mul(a, b),
    maximum: (a, b) => t.b.max(a, b),
    minimum: (a, b) => t.b.min(a, b),
  };
  const g = f[op];
  if (!g) throw new TraceError(`${name}: merge op '${op}' is not supported (${Object.keys(f).join(', ')})`);
  if (op === 'subtract' && ins.length !== 2)
    throw new TraceError(`${name}: subtract takes exactly two inputs, got ${ins.length}`);
  const n = ins[0]!.el.length;
  for (const v of ins)
    if (v.el.length !== n) throw new TraceError(`${name}: inputs of different sizes (broadcasting merges are not supported)`);
  const el = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    let w = ins[0]!.el[j]!;
    for (let k = 1; k < ins.length; k++) w = g(w, ins[k]!.el[j]!);
    el[j] = w;
  }
  return { shape: [...ex.outputShape], el };
});

/** QFlatten / QReshape / QConcatenate / GetItem: rewiring after the (optional) input quantizers. */
const qshape = qlayer((_t, ex, ins, name) => {
  const op = ex['op'] as string;
  if (op === 'reshape') return { shape: [...ex.outputShape], el: ins[0]!.el };
  if (op === 'gather') {
    const idx = ex['indices'] as Int32Array;
    return { shape: [...ex.outputShape], el: Int32Array.from(idx, (j) => ins[0]!.el[j]!) };
  }
  if (op === 'concatenate') return { shape: [...ex.outputShape], el: concatAlong(ins, ex['axis'] as number) };
  throw new TraceError(`${name}: shape op '${op}' is not supported`);
});

/** QSum: sum over per-sample axes, times a power-of-two scale. */
const qsum = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const axes = ex['axes'] as number[];
  const scale = ex['scale'] as number;
  const shape = ex.inputShapes[0]!;
  const outN = prod(ex.outputShape);
  const groups: number[][] = Array.from({ length: outN }, () => []);
  const idx = new Array<number>(shape.length).fill(0);
  for (let j = 0; j < x!.el.length; j++) {
    let o = 0;
    for (let a = 0; a < shape.length; a++) if (!axes.includes(a)) o = o * shape[a]! + idx[a]!;
    groups[o]!.push(x!.el[j]!);
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  const e = Math.log2(scale);
  if (!Number.isInteger(e)) throw new TraceError(`${name}: scale ${scale} is not a power of two`);
  const el = Int32Array.from(groups, (ws) => {
    const s = reduceTree(ws, (a, b) => t.b.add(a, b));
    return e === 0 ? s : t.b.copy(s, e);
  });
  return { shape: [...ex.outputShape], el };
});

interface TableSet {
  tables: TableExport[];
  index: Int32Array;
}

/** Lookup of wire w in table T: a lut op indexed over w's own interval (a subset of T's input domain). */
function lookup(t: Tracer, w: number, T: TableExport, name: string): number {
  const l = lookupOf(t, w, T, name);
  return typeof l === 'number' ? l : t.b.lut(l.a, l.table);
}

/** The lut op `lookup` would emit, or the constant wire when the table is constant on w's values. */
function lookupOf(t: Tracer, w: number, T: TableExport, name: string): number | PendingLookup {
  const q = t.b.qint(w);
  const at = (v: number): number => {
    const k = (v - T.min) / T.step;
    if (!Number.isInteger(k) || k < 0 || k >= T.values.length)
      throw new TraceError(
        `${name}: value ${v} is outside the table's input domain (min ${T.min}, step ${T.step}, ${T.values.length} entries)`,
      );
    return T.values[k]!;
  };
  if (q.min === q.max) return t.b.const(at(q.min));
  const n = Math.round((q.max - q.min) / q.step) + 1;
  const table = Array.from({ length: n }, (_, j) => at(q.min + j * q.step));
  if (table.every((v) => v === table[0])) return t.b.const(table[0]!);
  return { a: w, table };
}

const unaryLut = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  const ts = ex as unknown as TableSet;
  return { shape: [...ex.outputShape], el: x!.el.map((w, j) => lookup(t, w, ts.tables[ts.index[j]!]!, name)) };
});

/** QSoftmax (stable): d = max − x → exp table → Σ → inverse table → e·r, per group along the last axis. */
const softmax = qlayer((t, ex, [x], name) => {
  t.requireWires(x!, name);
  if (ex['stable'] !== true) throw new TraceError(`${name}: only the stable softmax (stable: true) can be traced`);
  const exp = ex['exp'] as TableSet & { inputQuantizer: QuantizerExport };
  const inv = ex['inv'] as TableSet & { inputQuantizer: QuantizerExport };
  const L = ex.inputShapes[0]![ex.inputShapes[0]!.length - 1]!;
  const groups = x!.el.length / L;
  const el = new Int32Array(x!.el.length);
  const qOne = (w: number, q: QuantizerExport, j: number): number => {
    const v: Val = { shape: [1], el: Int32Array.of(w) };
    const one: QuantizerExport = {
      shape: [1],
      k: q.k.subarray(j, j + 1),
      i: q.i.subarray(j, j + 1),
      f: q.f.subarray(j, j + 1),
      round: q.round,
      overflow: q.overflow,
    };
    return t.quantize(v, one, name).el[0]!;
  };
  for (let g = 0; g < groups; g++) {
    const xs = Array.from(x!.el.subarray(g * L, (g + 1) * L));
    const m = reduceTree(xs, (a, b) => t.b.max(a, b));
    const es = xs.map((w, j) => {
      const d = qOne(t.b.sub(m, w), exp.inputQuantizer, g * L + j);
      return lookup(t, d, exp.tables[exp.index[g * L + j]!]!, name);
    });
    const s = qOne(
      reduceTree(es, (a, b) => t.b.add(a, b)),
      inv.inputQuantizer,
      g,
    );
    const r = lookup(t, s, inv.tables[inv.index[g]!]!, name);
    es.forEach((e, j) => (el[g * L + j] = t.b.mul(e, r)));
  }
  return { shape: [...ex.outputShape], el };
});

/**
 * HGQ-LUT table layers (QDenseT, QConvT1D/2D, QEinsumDenseT): every live edge (position p, input i, output o) quantizes the
 * input it reads to its own type, looks it up in its table (a lut op over that type's values; a constant when
 * the input has zero bits), and each output sums its edges with an exact adder tree. Edges whose table output
 * has zero bits were dropped by the export (edgeTable −1).
 */
const tableSum: Handler = (t, layer, [x]) => {
  const name = who(layer);
  const q = layer as unknown as QLayer;
  const ex = q.exportQuantized() as LayerExport & TableLayerExport;
  const iq = ex.inputQuantizers[0];
  if (!iq)
    throw new TraceError(`${name}: the input quantizer is disabled; table layers need it (it defines each table's domain)`);
  const { nIn, nOut } = ex;
  const P = prod(ex.positions);
  if (iq.k.length !== P * nIn * nOut)
    throw new TraceError(`${name}: input quantizer covers ${iq.k.length} edges, expected ${P * nIn * nOut}`);
  const qIndex = (e: number) => (ex.quantizerIndex ? ex.quantizerIndex[e]! : e);
  const quantized = new Map<string, number>();
  const edgeInput = (src: number, e: number): number => {
    const j = qIndex(e);
    const type: Kif = { k: iq.k[j]! ? 1 : 0, i: iq.i[j]!, f: iq.f[j]! };
    if (src < 0 || type.k + type.i + type.f <= 0) return t.zero();
    const key = `${src}|${type.k},${type.i},${type.f}`;
    let w = quantized.get(key);
    if (w === undefined) {
      const el = x!.el[src]!;
      w = isRaw(el) ? t.rawInputOfType(-1 - el, type, iq.round, iq.overflow) : t.b.quant(el, type, iq.round, iq.overflow);
      quantized.set(key, w);
    }
    return w;
  };
  // every edge's term: a constant wire, or (−1 − j) for pending lookup j (emitted together, so that tables
  // reading the same wire can share one lut op)
  const terms: number[][] = [];
  const pending: PendingLookup[] = [];
  for (let p = 0; p < P; p++) {
    for (let o = 0; o < nOut; o++) {
      const ts: number[] = [];
      for (let i = 0; i < nIn; i++) {
        const e = (p * nIn + i) * nOut + o;
        const T = ex.edgeTable[e]!;
        if (T < 0) continue;
        const l = lookupOf(t, edgeInput(ex.inputIndex[p * nIn + i]!, e), ex.tables[T]!, name);
        if (typeof l === 'number') ts.push(l);
        else {
          ts.push(-1 - pending.length);
          pending.push(l);
        }
      }
      terms.push(ts);
    }
  }
  const looked = emitLookups(t.b, pending, t.opts.shareTables ?? false);
  const el = new Int32Array(P * nOut);
  for (let p = 0; p < P; p++) {
    for (let o = 0; o < nOut; o++) {
      const ts = terms[p * nOut + o]!.map((w) => (w < 0 ? looked[-1 - w]! : w));
      let y = ts.length ? reduceTree(ts, (a, b) => t.b.add(a, b)) : t.zero();
      if (ex.activation === 'relu') y = t.b.relu(y);
      el[ex.outputIndex ? ex.outputIndex[p * nOut + o]! : p * nOut + o] = y;
    }
  }
  let out: Val = { shape: [...ex.outputShape], el };
  if (ex.outputQuantizer) out = t.quantize(out, ex.outputQuantizer, name);
  return [out];
};

// ---- plain tfjs layers ----

function outShapeOf(layer: tf.layers.Layer): number[] {
  const s = layer.outputShape as (number | null)[];
  return s.slice(1).map((d) => {
    if (d === null) throw new TraceError(`${who(layer)}: output shape has an unknown dimension`);
    return d;
  });
}

const rewire: Handler = (_t, layer, [x]) => [{ shape: outShapeOf(layer), el: x!.el }];

/** Concatenation of per-sample tensors along per-sample axis `axis`. */
function concatAlong(ins: Val[], axis: number): Int32Array {
  const outer = prod(ins[0]!.shape.slice(0, axis));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const v of ins) {
      const inner = prod(v.shape.slice(axis));
      for (let j = 0; j < inner; j++) out.push(v.el[o * inner + j]!);
    }
  }
  return Int32Array.from(out);
}

const concatenate: Handler = (_t, layer, ins) => {
  const rank = ins[0]!.shape.length;
  let axis = (layer as unknown as { axis: number }).axis ?? -1;
  axis = axis < 0 ? rank + axis : axis - 1; // Keras counts the batch axis
  if (axis < 0 || axis >= rank)
    throw new TraceError(`${who(layer)}: axis ${(layer as unknown as { axis: number }).axis} out of range for rank ${rank + 1}`);
  return [{ shape: outShapeOf(layer), el: concatAlong(ins, axis) }];
};

const activation: Handler = (t, layer, [x]) => {
  const act = String(layer.getConfig()['activation'] ?? 'linear');
  if (act === 'linear') return [x!];
  if (act !== 'relu')
    throw new TraceError(
      `${who(layer)}: activation '${act}' is not supported by the tracer (linear, relu; use a QUnaryFunctionLUT layer for other functions)`,
    );
  t.requireWires(x!, who(layer));
  return [{ shape: [...x!.shape], el: x!.el.map((w) => t.b.relu(w)) }];
};

const identity: Handler = (_t, _layer, [x]) => [x!];

export const LAYER_HANDLERS: Record<string, Handler> = {
  InputLayer: identity,
  QDense: dense,
  QBatchNormDense: dense,
  QConv1D: conv,
  QConv2D: conv,
  QEinsumDense: einsum,
  QEinsumDenseBatchnorm: einsum,
  QBatchNormalization: batchnorm,
  QAdd: merge,
  QSubtract: merge,
  QMultiply: merge,
  QMaximum: merge,
  QMinimum: merge,
  QFlatten: qshape,
  QReshape: qshape,
  QConcatenate: qshape,
  GetItem: qshape,
  QSum: qsum,
  QUnaryFunctionLUT: unaryLut,
  QSoftmax: softmax,
  QDenseT: tableSum,
  QConvT1D: tableSum,
  QConvT2D: tableSum,
  QEinsumDenseT: tableSum,
  QMaxPooling1D: pool,
  QMaxPooling2D: pool,
  QAveragePooling1D: pool,
  QAveragePooling2D: pool,
  QGlobalMaxPooling1D: globalPool,
  QGlobalMaxPooling2D: globalPool,
  QGlobalAveragePooling1D: globalPool,
  QGlobalAveragePooling2D: globalPool,
  Flatten: rewire,
  Reshape: rewire,
  Dropout: identity,
  Concatenate: concatenate,
  Activation: activation,
};

export function supportedLayers(): string[] {
  return Object.keys(LAYER_HANDLERS).sort();
}
