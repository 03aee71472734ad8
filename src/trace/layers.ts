/**
 * Per-layer tracing: each handler reproduces the layer's inference semantics on wires, reading the
 * layer's exact export (src/layers: `exportQuantized()`). HGQ layers share the frame input quantizer(s)
 * → computation → output quantizer; plain tfjs layers that only move elements (flatten, reshape,
 * concatenate, dropout) are rewiring.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ConstExport, LayerExport, QLayer } from '../layers/base.ts';
import { matVec } from './matvec.ts';
import { prod, TraceError, type Tracer, type Val } from './tracer.ts';

export type Handler = (t: Tracer, layer: tf.layers.Layer, ins: Val[]) => Val[];

const who = (layer: tf.layers.Layer): string => `${layer.getClassName()} '${layer.name}'`;

/** The common frame of HGQ layers: quantize inputs, compute, quantize the output. */
function qlayer(body: (t: Tracer, ex: LayerExport, ins: Val[], name: string) => Val): Handler {
  return (t, layer, ins) => {
    const name = who(layer);
    const q = layer as unknown as QLayer;
    if (typeof q.exportQuantized !== 'function') throw new TraceError(`${name}: has no exportQuantized(); not an HGQ layer`);
    const ex = q.exportQuantized();
    if (ex.inputQuantizers.length !== ins.length) throw new TraceError(`${name}: export has ${ex.inputQuantizers.length} input quantizers for ${ins.length} inputs`);
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

/** y = act(W·x + b) over the last axis, at every position of the leading axes. */
function affine(t: Tracer, x: Val, cols: number[][] /* per output position: input elements (−2 = padding zero) */, kernel: ConstExport, bias: ConstExport | null, activation: string, name: string): Int32Array {
  const units = kernel.shape[kernel.shape.length - 1]!;
  const nIn = kernel.values.length / units;
  const W: number[][] = Array.from({ length: units }, (_, o) => Array.from({ length: nIn }, (_, c) => kernel.values[c * units + o]!));
  const xs = cols.map((idx) => {
    if (idx.length !== nIn) throw new TraceError(`${name}: ${idx.length} inputs per position, kernel expects ${nIn}`);
    return idx.map((j) => (j < 0 ? t.zero() : x.el[j]!));
  });
  const ys = matVec(t.b, W, xs, t.opts);
  const out = new Int32Array(cols.length * units);
  ys.forEach((refs, p) => {
    refs.forEach((r, o) => {
      const bv = bias ? bias.values[o]! : 0;
      let w: number;
      if (r.wire < 0) w = bv === 0 ? t.zero() : t.b.const(bv);
      else {
        w = t.ref(r);
        if (bv !== 0) w = t.b.addc(w, bv);
      }
      if (activation === 'relu') w = t.b.relu(w);
      else if (activation !== 'linear') throw new TraceError(`${name}: activation '${activation}' is not supported (linear, relu)`);
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
  if (!Number.isInteger(positions)) throw new TraceError(`${name}: input of ${x!.el.length} elements is not a multiple of the kernel's ${nIn} inputs`);
  const cols = Array.from({ length: positions }, (_, p) => Array.from({ length: nIn }, (_, c) => p * nIn + c));
  const el = affine(t, x!, cols, kernel, bias, String(ex['activation'] ?? 'linear'), name);
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
  if ((ex['dilation'] as number[] | undefined)?.some((d) => d !== 1)) throw new TraceError(`${name}: dilated convolution is not supported`);
  const win = windows(inShape, ks, strides, pads, outSpatial);
  const cols = win.map((taps) => taps.flat());
  const el = affine(t, x!, cols, kernel, bias, String(ex['activation'] ?? 'linear'), name);
  return { shape: [...ex.outputShape], el };
});

/** Exact division of a wire by a power of two (as the layer divides by the window's element count). */
function divPow2(t: Tracer, w: number, n: number, name: string): number {
  const e = Math.log2(n);
  if (!Number.isInteger(e)) {
    throw new TraceError(`${name}: average over ${n} elements is not a division by a power of two, so the model's float result is not an exact fixed-point value; use window sizes (or 'valid' padding) with power-of-two element counts`);
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
      const ws = taps.map((tap) => tap[c]!).filter((j) => j >= 0).map((j) => x!.el[j]!);
      const w = op === 'max' ? reduceTree(ws, (a, b) => t.b.max(a, b)) : divPow2(t, reduceTree(ws, (a, b) => t.b.add(a, b)), ws.length, name);
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
    el[c] = op === 'max' ? reduceTree(ws, (a, b) => t.b.max(a, b)) : divPow2(t, reduceTree(ws, (a, b) => t.b.add(a, b)), n, name);
  }
  return { shape: [...ex.outputShape], el };
});

// ---- plain tfjs layers ----

function outShapeOf(layer: tf.layers.Layer): number[] {
  const s = layer.outputShape as (number | null)[];
  return s.slice(1).map((d) => {
    if (d === null) throw new TraceError(`${who(layer)}: output shape has an unknown dimension`);
    return d;
  });
}

const rewire: Handler = (_t, layer, [x]) => [{ shape: outShapeOf(layer), el: x!.el }];

const concatenate: Handler = (_t, layer, ins) => {
  const rank = ins[0]!.shape.length;
  let axis = (layer as unknown as { axis: number }).axis ?? -1;
  axis = axis < 0 ? rank + axis : axis - 1; // Keras counts the batch axis
  if (axis < 0 || axis >= rank) throw new TraceError(`${who(layer)}: axis ${(layer as unknown as { axis: number }).axis} out of range for rank ${rank + 1}`);
  const outer = prod(ins[0]!.shape.slice(0, axis));
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const v of ins) {
      const inner = prod(v.shape.slice(axis));
      for (let j = 0; j < inner; j++) out.push(v.el[o * inner + j]!);
    }
  }
  return [{ shape: outShapeOf(layer), el: Int32Array.from(out) }];
};

const activation: Handler = (t, layer, [x]) => {
  const act = String(layer.getConfig()['activation'] ?? 'linear');
  if (act === 'linear') return [x!];
  if (act !== 'relu') throw new TraceError(`${who(layer)}: activation '${act}' is not supported by the tracer (linear, relu; use a QUnaryFunctionLUT layer for other functions)`);
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
