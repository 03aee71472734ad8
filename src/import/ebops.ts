/**
 * EBOPs of an imported HGQ2 model, computed from its stored quantizer state with HGQ2's own per-layer
 * formulas (HGQ2-SEMANTICS.md §EBOPs). No tfjs: plain typed arrays.
 *
 * HGQ2 evaluates each layer's `_compute_ebops` on the batch-1 input shape, multiplies it by
 * `ebops_factor`, and stores it (cast to uint32) in the layer's `ebops` variable; the total it logs is the
 * sum of those. Here every bit width is the integer HGQ2 uses (round-half-even of the stored variables).
 */
import type { HgqLayer, HgqModel, HgqQuantizer } from './hgq2-model.ts';
import { quantizerBits, quantizerFullBits } from './hgq2-model.ts';
import { undoLastOptimizerStep } from './last-step.ts';
import { broadcastTo, conv1d, conv1dGeometry, einsum, parseEinsum, prod } from './nd.ts';
import { planEinsumTable } from '../layers/table-einsum-plan.ts';

/**
 * How many bias additions a dense/einsum layer's EBOPs count: one per output element (HGQ2 today, and
 * the hardware: each output adds its bias once), or, in the HGQ2 releases that wrote the
 * hgq-ae checkpoints, one per *input* element (`mean(bits_bias)·prod(input shape)`, a bug HGQ2 has
 * since fixed). HGQ2-SEMANTICS.md §5.
 */
export type BiasCount = 'outputs' | 'inputs';

export interface LayerEbops {
  name: string;
  className: string;
  /** exact value of HGQ2's (current) formula on the saved state: what we report */
  ebops: number;
  /** the formula of the HGQ2 version that wrote the file (its bias count), on the saved state */
  asWritten: number;
  /**
   * the same formula on the state before the last optimizer step (last-step.ts), the state HGQ2
   * computed the stored value from; null when that step cannot be undone
   */
  atLastStep: number | null;
  /** what HGQ2 last stored in the layer's `ebops` variable (uint32), null if none */
  stored: number | null;
}

export interface ModelEbops {
  total: number;
  /** Σ floor(per-layer) — how HGQ2 sums its uint32 per-layer values */
  totalFloored: number;
  storedTotal: number | null;
  /** the bias count of the HGQ2 version that wrote the file (hgq2BiasCount) */
  writtenBiasCount: BiasCount;
  /** why `atLastStep` is null, or null when the last step was undone */
  lastStepUnavailable: string | null;
  layers: LayerEbops[];
}

/**
 * The bias count of the HGQ2 version that wrote `model`. HGQ2 began saving `ebops_factor` in every
 * layer config (base.py) after the hgq-ae checkpoints were written (none of them has it; files from
 * HGQ2 0.1.10 have it and count outputs); those checkpoints count inputs, as their stored per-layer
 * values show exactly (test/import-ebops.test.ts).
 */
export function hgq2BiasCount(model: HgqModel): BiasCount {
  const qLayers = model.layers.filter((l) => l.className.startsWith('Q'));
  return qLayers.some((l) => l.config && 'ebops_factor' in l.config) ? 'outputs' : 'inputs';
}

/** Bits of `q` broadcast to the batch-1 input shape (1, ...shape[1:]). */
function bitsOn(q: HgqQuantizer, inShape: readonly (number | null)[]): { data: Float64Array; shape: number[] } {
  const shape = [1, ...inShape.slice(1).map((d) => d ?? 1)];
  return { data: broadcastTo(quantizerBits(q), q.shape, shape), shape };
}

const sum = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j]!;
  return s;
};
const mean = (a: ArrayLike<number>): number => sum(a) / a.length;

/** The input shape a layer was built with (batch dim null), from its inbound node. */
function inputShapes(layer: HgqLayer): (number | null)[][] {
  return layer.inbound.map((r) => r.shape);
}

/**
 * HGQ2's `_compute_ebops` for one layer (before `ebops_factor`), or null for layers without EBOPs.
 * `biasCount` selects the bias term of dense/einsum layers (BiasCount); other layers have one formula.
 */
export function layerEbops(layer: HgqLayer, biasCount: BiasCount = 'outputs'): number | null {
  const c = layer.config;
  if (c?.enable_ebops === false) return null;
  const [shape] = inputShapes(layer);
  switch (layer.className) {
    case 'QDense': {
      // QDense._compute_ebops: (Σ(bits_in @ bits_kernel) + mean(bits_bias)·prod(shape[:-1])·units)
      // × parallelization_factor / n_parallel (1 by default). Older HGQ2 (dense.py @e29ad7f2): only the
      // product term scaled, bias term mean(bits_bias)·prod(shape).
      const bi = bitsOn(layer.iq!, shape!);
      const kq = layer.kq!;
      const bk = broadcastTo(quantizerBits(kq), kq.shape, layer.vars.kernel!.shape);
      const kShape = layer.vars.kernel!.shape;
      const letters = 'abcdefgh'.slice(0, bi.shape.length - 1);
      const products = einsum(parseEinsum(`${letters}x,xy->`), bi.data, bi.shape, bk, kShape).data[0]!;
      const nParallel = prod(bi.shape.slice(1, -1));
      const pf = c.parallelization_factor === undefined || c.parallelization_factor < 0 ? nParallel : c.parallelization_factor;
      const biasBits = layer.bq ? mean(quantizerBits(layer.bq)) : 0;
      if (biasCount === 'inputs') return (products * pf) / nParallel + biasBits * prod(bi.shape);
      return ((products + biasBits * prod(bi.shape.slice(0, -1)) * c.units) * pf) / nParallel;
    }
    case 'QEinsumDense':
    case 'QEinsumDenseBatchnorm': {
      // QEinsumDense._compute_ebops: einsum('<inp>,<ker>->', bits_in, bits_kernel)
      //   + mean(bits_bias)·prod(full_output_shape[1:]), times ebops_scaler. The older HGQ2 of the hgq-ae
      // checkpoints counted prod(input shape) there instead (BiasCount).
      // For the batch-norm variant the kernel quantizer acts on the fused kernel, same shape; bit widths
      // do not depend on values, so training with batch statistics does not change EBOPs.
      const eq = parseEinsum(c.equation);
      const bi = bitsOn(layer.iq!, shape!);
      const kq = layer.kq!;
      const kShape = layer.vars.kernel!.shape;
      const bk = broadcastTo(quantizerBits(kq), kq.shape, kShape);
      let e = einsum({ a: eq.a, b: eq.b, out: '' }, bi.data, bi.shape, bk, kShape).data[0]!;
      const biasAdds = biasCount === 'inputs' ? prod(bi.shape) : prod(c.output_shape as number[]);
      if (layer.bq) e += mean(quantizerBits(layer.bq)) * biasAdds;
      return e * (c.ebops_scaler ?? 1);
    }
    case 'QConv1D': {
      // QBaseConv._compute_ebops: Σ conv(bits_in, bits_kernel)·pf/n_parallel + Σ bits_bias · pf
      const bi = bitsOn(layer.iq!, shape!);
      const kq = layer.kq!;
      const kShape = layer.vars.kernel!.shape;
      const bk = broadcastTo(quantizerBits(kq), kq.shape, kShape);
      const spec = conv1dSpec(layer);
      const conv = conv1d(bi.data, bi.shape, bk, kShape, spec);
      const nParallel = conv1dGeometry(bi.shape[1]!, spec).Lout;
      const pf = c.parallelization_factor === undefined || c.parallelization_factor <= 0 ? nParallel : c.parallelization_factor;
      let e = (sum(conv.data) * pf) / nParallel;
      if (layer.bq) e += sum(quantizerBits(layer.bq)) * pf;
      return e;
    }
    case 'QDenseT':
    case 'QConvT1D':
    case 'QConvT2D':
      return tableLayerEbops(layer, shape!);
    case 'QEinsumDenseT':
      return einsumTableEbops(layer, shape!);
    case 'QAdd': {
      // QAdd._compute_ebops: 0.65·(Σ Σ_inputs bits − Σ min_inputs bits), inputs broadcast together.
      const shapes = inputShapes(layer).map((s) => [1, ...s.slice(1).map((d) => d ?? 1)]);
      const out = broadcastShapes(shapes);
      const bits = layer.iqs!.map((q, j) => broadcastTo(broadcastTo(quantizerBits(q), q.shape, shapes[j]!), shapes[j]!, out));
      let tot = 0;
      let mins = 0;
      for (let p = 0; p < prod(out); p++) {
        let m = Infinity;
        for (const b of bits) {
          tot += b[p]!;
          m = Math.min(m, b[p]!);
        }
        mins += m;
      }
      return 0.65 * (tot - mins);
    }
    case 'QSum': {
      // QSum._compute_ebops: 0.65·(Σ bits − Σ min(bits, axis=axes))
      const bi = bitsOn(layer.iq!, shape!);
      const axes = sumAxes(layer, bi.shape.length);
      return 0.65 * (sum(bi.data) - sum(reduceMin(bi.data, bi.shape, axes)));
    }
    default:
      return null;
  }
}

/**
 * QDenseT._compute_ebops on q_shape = (1, ...positions, n_in, n_out), bits = `fbits` (every bit incl. the
 * sign): per edge small = 2^(bits_in − b) if bits_in ≥ b else bits_in / b; then
 * (Σ small·bits_out·2^(b−B) + Σ bits_out)·pf / n_parallel with (B, b) = table_idxs. QConvT* evaluate it on
 * the im2col shape (1, ...output positions, kernel elements·channels).
 */
function tableLayerEbops(layer: HgqLayer, inShape: readonly (number | null)[]): number {
  const c = layer.config;
  const geo = tableGeometry(layer, inShape);
  const qShape = [1, ...geo.positions, geo.nIn, geo.nOut];
  const bitsIn = broadcastTo(quantizerFullBits(layer.iq!), layer.iq!.shape, qShape);
  const bitsOut = broadcastTo(quantizerFullBits(layer.toq!), layer.toq!.shape, qShape);
  const [B, b] = tableIdxs(c.table_idxs);
  const nParallel = prod(geo.positions);
  const pfRaw = c.parallelization_factor === undefined ? -1 : Number(c.parallelization_factor);
  const pf = pfRaw < 0 ? nParallel : pfRaw;
  return (tableEbopsFromBits(bitsIn, bitsOut, B, b) * pf) / nParallel;
}

/** QEinsumDenseT._compute_ebops: the table formula on the batch-1 pre-sum shape, ·pf / n_parallel (_einsum_free0_size). */
function einsumTableEbops(layer: HgqLayer, inShape: readonly (number | null)[]): number {
  const c = layer.config;
  const os = c.output_shape;
  const plan = planEinsumTable(
    String(c.equation),
    typeof os === 'number' ? [os] : os,
    inShape.slice(1).map((d) => d ?? 1),
    `layer '${layer.name}'`,
  );
  const qShape = [1, ...plan.presumShape];
  const bitsIn = broadcastTo(quantizerFullBits(layer.iq!), layer.iq!.shape, qShape);
  const bitsOut = broadcastTo(quantizerFullBits(layer.toq!), layer.toq!.shape, qShape);
  const [B, b] = tableIdxs(c.table_idxs);
  const pfRaw = c.parallelization_factor === undefined ? -1 : Number(c.parallelization_factor);
  const pf = pfRaw < 0 ? plan.nParallel : pfRaw;
  return (tableEbopsFromBits(bitsIn, bitsOut, B, b) * pf) / plan.nParallel;
}

/** Σ small·bits_out·2^(b−B) + Σ bits_out over the edges (the formula in one place; tfjs layers mirror it). */
export function tableEbopsFromBits(bitsIn: ArrayLike<number>, bitsOut: ArrayLike<number>, B: number, b: number): number {
  let large = 0;
  let outs = 0;
  for (let j = 0; j < bitsIn.length; j++) {
    const bi = bitsIn[j]!;
    const small = bi >= b ? 2 ** (bi - b) : bi / b;
    large += small * bitsOut[j]!;
    outs += bitsOut[j]!;
  }
  return large * 2 ** (b - B) + outs;
}

/** HGQ2's table_idxs: an int n means (n, n). */
export function tableIdxs(v: unknown): [number, number] {
  if (v === undefined || v === null) return [6, 5];
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2) return [Number(v[0]), Number(v[1])];
  throw new Error(`table_idxs ${JSON.stringify(v)} must be an integer or a pair of integers`);
}

/** Geometry of a table layer: output positions (conv) or leading per-sample axes (dense), n_in, n_out. */
export function tableGeometry(
  layer: HgqLayer,
  inShape: readonly (number | null)[],
): { positions: number[]; nIn: number; nOut: number; conv: TableConvSpec | null } {
  const c = layer.config;
  const per = inShape.slice(1).map((d) => d ?? 1);
  const nOut = Number(c.n_out ?? c.filters);
  if (layer.className === 'QDenseT') return { positions: per.slice(0, -1), nIn: per.at(-1)!, nOut, conv: null };
  const conv = tableConvSpec(layer);
  const spatial = per.slice(0, -1);
  if (spatial.length !== conv.kernelSize.length)
    throw new Error(`layer '${layer.name}': input shape [${per}] does not match a ${conv.kernelSize.length}-D convolution`);
  const positions = spatial.map((n, a) => convOut(n, conv.kernelSize[a]!, conv.strides[a]!, conv.padding));
  return { positions, nIn: per.at(-1)! * prod(conv.kernelSize), nOut, conv };
}

export interface TableConvSpec {
  kernelSize: number[];
  strides: number[];
  padding: 'valid' | 'same';
}

function convOut(n: number, k: number, s: number, padding: 'valid' | 'same'): number {
  return padding === 'valid' ? Math.floor((n - k) / s) + 1 : Math.ceil(n / s);
}

export function tableConvSpec(layer: HgqLayer): TableConvSpec {
  const c = layer.config;
  const rank = layer.className === 'QConvT2D' ? 2 : 1;
  const tuple = (v: unknown): number[] => (Array.isArray(v) ? v.map(Number) : new Array<number>(rank).fill(Number(v ?? 1)));
  const padding = String(c.padding ?? 'valid').toLowerCase();
  if (padding !== 'valid' && padding !== 'same')
    throw new Error(`layer '${layer.name}': padding '${c.padding}' is not supported (valid, same)`);
  if ((c.data_format ?? 'channels_last') !== 'channels_last')
    throw new Error(`layer '${layer.name}': data_format ${c.data_format} is not supported (channels_last only)`);
  if (Number(c.groups ?? 1) !== 1) throw new Error(`layer '${layer.name}': groups=${c.groups} is not supported`);
  if (tuple(c.dilation_rate).some((d) => d !== 1))
    throw new Error(`layer '${layer.name}': dilation_rate ${JSON.stringify(c.dilation_rate)} is not supported (1 only)`);
  const kernelSize = tuple(c.kernel_size);
  const strides = tuple(c.strides);
  if (kernelSize.length !== rank || strides.length !== rank)
    throw new Error(`layer '${layer.name}': kernel_size/strides must have ${rank} entries`);
  return { kernelSize, strides, padding };
}

export function conv1dSpec(layer: HgqLayer): {
  kernelSize: number;
  stride: number;
  dilation: number;
  padding: 'valid' | 'same' | 'causal';
} {
  const c = layer.config;
  const one = (v: unknown) => (Array.isArray(v) ? Number(v[0]) : Number(v ?? 1));
  const padding = String(c.padding ?? 'valid').toLowerCase();
  if (padding !== 'valid' && padding !== 'same' && padding !== 'causal')
    throw new Error(`layer '${layer.name}': padding '${c.padding}' is not supported`);
  if ((c.data_format ?? 'channels_last') !== 'channels_last')
    throw new Error(`layer '${layer.name}': data_format ${c.data_format} is not supported (channels_last only)`);
  if ((c.groups ?? 1) !== 1) throw new Error(`layer '${layer.name}': groups=${c.groups} is not supported`);
  return { kernelSize: one(c.kernel_size), stride: one(c.strides), dilation: one(c.dilation_rate), padding };
}

export function sumAxes(layer: HgqLayer, ndim: number): number[] {
  const c = layer.config;
  const raw = c.axes ?? c.axis ?? -1;
  const axes = (Array.isArray(raw) ? raw : [raw]).map((a: number) => (a < 0 ? a + ndim : a));
  return [...new Set<number>(axes)].sort((a, b) => a - b);
}

export function broadcastShapes(shapes: readonly (readonly number[])[]): number[] {
  const n = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(n).fill(1);
  for (const s of shapes) {
    const pad = n - s.length;
    s.forEach((d, j) => {
      const o = out[pad + j]!;
      if (o !== 1 && d !== 1 && o !== d) throw new Error(`shapes [${shapes.map((x) => `[${x}]`).join(', ')}] do not broadcast`);
      out[pad + j] = o === 1 ? d : o;
    });
  }
  return out;
}

/** Reduce over `axes` (keepdims) with `op`. */
export function reduceAxes(
  data: ArrayLike<number>,
  shape: readonly number[],
  axes: readonly number[],
  init: number,
  op: (acc: number, v: number) => number,
): { data: Float64Array; shape: number[] } {
  const outShape = shape.map((d, j) => (axes.includes(j) ? 1 : d));
  const out = new Float64Array(prod(outShape)).fill(init);
  const ix = new Array<number>(shape.length).fill(0);
  const ost: number[] = [];
  let acc = 1;
  for (let d = outShape.length - 1; d >= 0; d--) {
    ost[d] = acc;
    acc *= outShape[d]!;
  }
  for (let j = 0; j < data.length; j++) {
    let o = 0;
    for (let d = 0; d < shape.length; d++) if (!axes.includes(d)) o += ix[d]! * ost[d]!;
    out[o] = op(out[o]!, data[j]!);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++ix[d]! < shape[d]!) break;
      ix[d] = 0;
    }
  }
  return { data: out, shape: outShape };
}

function reduceMin(data: ArrayLike<number>, shape: readonly number[], axes: readonly number[]): Float64Array {
  return reduceAxes(data, shape, axes, Infinity, Math.min).data;
}

/**
 * EBOPs of every layer and the total, from the saved state (HGQ2's current formulas), next to what the
 * file's HGQ2 version computed: on the saved state, and on the state of the last training step, which
 * is where the stored per-layer values come from.
 */
export function modelEbops(model: HgqModel): ModelEbops {
  const written = hgq2BiasCount(model);
  const undone = undoLastOptimizerStep(model);
  const before = 'model' in undone ? undone.model : null;
  const layers: LayerEbops[] = [];
  for (const layer of model.layers) {
    const e = layerEbops(layer);
    if (e === null) continue;
    const factor = layer.config.ebops_factor ?? 1;
    const st = layer.vars.ebops;
    const prev = before ? layerEbops(before.byName.get(layer.name)!, written) : null;
    layers.push({
      name: layer.name,
      className: layer.className,
      ebops: e * factor,
      asWritten: layerEbops(layer, written)! * factor,
      atLastStep: prev === null ? null : prev * factor,
      stored: st ? Number(st.data[0]) : null,
    });
  }
  const total = layers.reduce((a, l) => a + l.ebops, 0);
  const totalFloored = layers.reduce((a, l) => a + Math.floor(l.ebops), 0);
  const stored = layers.every((l) => l.stored !== null) ? layers.reduce((a, l) => a + l.stored!, 0) : null;
  return {
    total,
    totalFloored,
    storedTotal: stored,
    writtenBiasCount: written,
    lastStepUnavailable: 'reason' in undone ? undone.reason : null,
    layers,
  };
}

/** The EBOPs an HGQ2 checkpoint's file name carries ('...-ebops=13285.keras'), or null. */
export function ebopsFromFileName(path: string): number | null {
  const m = /ebops=(\d+(?:\.\d+)?)/.exec(path.split('/').pop() ?? '');
  return m ? Number(m[1]) : null;
}
