/**
 * Reference forward pass of an imported HGQ2 model in inference mode, on plain typed arrays (no tfjs),
 * with the quantizers applied through src/fixed's exact `quantize`. Tests compare our imported tfjs
 * model against this. Semantics: HGQ2-SEMANTICS.md; arithmetic between quantizers is exact (float64
 * on dyadic values), i.e. what the hardware computes.
 */
import { quantize, roundToStep } from '../fixed/quantize.ts';
import type { Kif } from '../fixed/types.ts';
import type { HgqLayer, HgqModel, HgqQuantizer } from './hgq2-model.ts';
import type { H5Data } from './keras-archive.ts';
import { quantizerKif } from './hgq2-model.ts';
import { conv1dSpec, sumAxes, broadcastShapes, reduceAxes } from './ebops.ts';
import { broadcastIndex, conv1d, einsum, parseEinsum, prod, strides } from './nd.ts';

export interface Tensor {
  data: Float64Array;
  /** full shape including the batch dimension */
  shape: number[];
}

export interface ForwardOptions {
  /** false: skip every quantizer (a float model, batch norm still folded as HGQ2 folds it). Default true. */
  quantize?: boolean;
  /** keep every layer's output in the result (default false) */
  keepAll?: boolean;
}

export interface ForwardResult {
  outputs: Tensor[];
  /** layer name → output, when keepAll */
  layers: Map<string, Tensor>;
}

/** Keras' backend epsilon(): HGQ2's batch-norm fold uses it, not the layer's `epsilon` option. */
export const KERAS_EPSILON = 1e-7;

/**
 * Apply an HGQ2 quantizer in inference mode (FixedPointQuantizerKBI/KIF.call with training=False).
 * Trainable WRAP quantizers of weights (bias quantizers here) only round: HGQ2 returns
 * round(x, f) for them, without wrapping and without zeroing.
 */
export function applyQuantizer(q: HgqQuantizer, x: Tensor): Tensor {
  const { k, i, f } = quantizerKif(q);
  const ix = broadcastIndex(q.shape, x.shape);
  const out = new Float64Array(x.data.length);
  const roundOnly = q.overflowMode === 'WRAP' && q.trainable && q.isWeight && (q.qType === 'kif' || q.roundMode === 'RND');
  const types: Kif[] = Array.from(k, (kk, p) => ({ k: kk as 0 | 1, i: i[p]!, f: f[p]! }));
  for (let j = 0; j < out.length; j++) {
    const p = ix[j]!;
    const v = x.data[j]!;
    out[j] = roundOnly ? roundToStep(v, f[p]!, q.roundMode) : quantize(v, types[p]!, q.roundMode, q.overflowMode);
  }
  return { data: out, shape: x.shape };
}

const f32 = Math.fround;

/**
 * HGQ2's fused kernel and bias of QEinsumDenseBatchnorm (before their quantizers), computed in float32
 * exactly as TensorFlow does in eager mode: scaler = γ / sqrt(var + ε); kernel·scaler along the
 * normalized (last) axis; bias + (−mean·scaler).
 */
export function fuseBatchnorm(layer: HgqLayer): { kernel: Float64Array; bias: Float64Array; kShape: number[] } {
  const K = layer.vars.kernel!;
  const gamma = layer.vars.gamma!.data;
  const mean = layer.vars.moving_mean!.data;
  const vari = layer.vars.moving_variance!.data;
  const beta = layer.vars.bias!.data;
  const C = K.shape.at(-1)!;
  if (gamma.length !== C)
    throw new Error(`layer '${layer.name}': batch-norm size ${gamma.length} is not the kernel's last axis ${C}`);
  const eps = f32(KERAS_EPSILON);
  const scaler = new Float64Array(C);
  for (let c = 0; c < C; c++) scaler[c] = f32(Number(gamma[c]) / f32(Math.sqrt(f32(Number(vari[c]) + eps))));
  const kernel = new Float64Array(K.data.length);
  for (let j = 0; j < kernel.length; j++) kernel[j] = f32(Number(K.data[j]) * scaler[j % C]!);
  const bias = new Float64Array(C);
  for (let c = 0; c < C; c++) bias[c] = f32(Number(beta[c]) + f32(-Number(mean[c]) * scaler[c]!));
  return { kernel, bias, kShape: K.shape };
}

function activation(layer: HgqLayer, x: Tensor): Tensor {
  const a = layer.config.activation ?? 'linear';
  if (a === 'linear' || a === null) return x;
  if (a === 'relu') return { data: x.data.map((v) => (v > 0 ? v : 0)), shape: x.shape };
  throw new Error(`layer '${layer.name}': activation '${a}' is not supported (linear, relu)`);
}

function addBias(x: Tensor, bias: ArrayLike<number>): Tensor {
  const C = x.shape.at(-1)!;
  if (bias.length !== C) throw new Error(`bias of size ${bias.length} for last axis ${C}`);
  return { data: x.data.map((v, j) => v + bias[j % C]!), shape: x.shape };
}

const asF64 = (a: H5Data): Float64Array => Float64Array.from(a as ArrayLike<number | bigint>, Number);

function getItem(layer: HgqLayer, x: Tensor): Tensor {
  const key = layer.callArgs[0];
  const items: any[] = Array.isArray(key) ? key : [key];
  if (items.length > x.shape.length)
    throw new Error(`layer '${layer.name}': ${items.length} indices for a rank-${x.shape.length} tensor`);
  const ranges = x.shape.map((n, d) => {
    const it = items[d];
    if (it === undefined) return { start: 0, step: 1, count: n, drop: false };
    if (typeof it === 'number') {
      const s = it < 0 ? it + n : it;
      if (s < 0 || s >= n) throw new Error(`layer '${layer.name}': index ${it} out of range for axis ${d} of size ${n}`);
      return { start: s, step: 1, count: 1, drop: true };
    }
    if (it?.class_name !== '__slice__') throw new Error(`layer '${layer.name}': unsupported index ${JSON.stringify(it)}`);
    const { start, stop, step } = it.config;
    const st = step ?? 1;
    if (st <= 0) throw new Error(`layer '${layer.name}': slice step ${st} is not supported`);
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
    const a = start === null || start === undefined ? 0 : clamp(start);
    const b = stop === null || stop === undefined ? n : clamp(stop);
    return { start: a, step: st, count: Math.max(0, Math.ceil((b - a) / st)), drop: false };
  });
  if (ranges[0]!.count !== x.shape[0] || ranges[0]!.start !== 0)
    throw new Error(`layer '${layer.name}': slicing the batch axis is not supported`);
  const outShape = ranges.map((r) => r.count);
  const st = strides(x.shape);
  const out = new Float64Array(prod(outShape));
  const idx = new Array<number>(outShape.length).fill(0);
  for (let j = 0; j < out.length; j++) {
    let o = 0;
    for (let d = 0; d < idx.length; d++) o += (ranges[d]!.start + idx[d]! * ranges[d]!.step) * st[d]!;
    out[j] = x.data[o]!;
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d]! < outShape[d]!) break;
      idx[d] = 0;
    }
  }
  return { data: out, shape: ranges.filter((r) => !r.drop).map((r) => r.count) };
}

function reshape(layer: HgqLayer, x: Tensor): Tensor {
  const target: number[] = layer.config.target_shape;
  const B = x.shape[0]!;
  const n = prod(x.shape.slice(1));
  const known = prod(target.filter((d) => d !== -1));
  const shape = target.map((d) => (d === -1 ? n / known : d));
  if (prod(shape) !== n) throw new Error(`layer '${layer.name}': cannot reshape [${x.shape.slice(1)}] to [${target}]`);
  return { data: x.data, shape: [B, ...shape] };
}

/** One layer in inference mode. */
export function layerForward(layer: HgqLayer, xs: Tensor[], opt: ForwardOptions = {}): Tensor {
  const doQ = opt.quantize !== false;
  const q = (qz: HgqQuantizer | null, t: Tensor) => (qz && doQ ? applyQuantizer(qz, t) : t);
  const qw = (qz: HgqQuantizer | null, data: Float64Array, shape: number[]) => q(qz, { data, shape }).data;
  const x = xs[0]!;
  switch (layer.className) {
    case 'InputLayer':
      return x;
    case 'QDense': {
      const xi = q(layer.iq, x);
      const K = layer.vars.kernel!;
      const kq = qw(layer.kq, asF64(K.data), K.shape);
      const lead = 'abcdefgh'.slice(0, xi.shape.length - 1);
      let y: Tensor = einsum(parseEinsum(`${lead}x,xy->${lead}y`), xi.data, xi.shape, kq, K.shape);
      if (layer.bq) y = addBias(y, qw(layer.bq, asF64(layer.vars.bias!.data), layer.vars.bias!.shape));
      return activation(layer, y);
    }
    case 'QEinsumDense':
    case 'QEinsumDenseBatchnorm': {
      const eq = parseEinsum(layer.config.equation);
      if (eq.out.at(-1) !== eq.b.at(-1) || (layer.config.bias_axes ?? eq.out.at(-1)) !== eq.out.at(-1)) {
        throw new Error(
          `layer '${layer.name}': equation ${layer.config.equation} with bias_axes ${layer.config.bias_axes} is not supported (the output's last axis must be the kernel's last axis and the bias axis)`,
        );
      }
      const xi = q(layer.iq, x);
      let kernel: Float64Array;
      let bias: Float64Array | null;
      let kShape: number[];
      if (layer.className === 'QEinsumDenseBatchnorm') ({ kernel, bias, kShape } = fuseBatchnorm(layer));
      else {
        kernel = asF64(layer.vars.kernel!.data);
        kShape = layer.vars.kernel!.shape;
        bias = layer.vars.bias ? asF64(layer.vars.bias.data) : null;
      }
      const kq = qw(layer.kq, kernel, kShape);
      let y: Tensor = einsum(eq, xi.data, xi.shape, kq, kShape);
      if (bias) y = addBias(y, qw(layer.bq, bias, [bias.length]));
      return activation(layer, y);
    }
    case 'QConv1D': {
      const xi = q(layer.iq, x);
      const K = layer.vars.kernel!;
      const kq = qw(layer.kq, asF64(K.data), K.shape);
      let y: Tensor = conv1d(xi.data, xi.shape, kq, K.shape, conv1dSpec(layer));
      if (layer.bq) y = addBias(y, qw(layer.bq, asF64(layer.vars.bias!.data), layer.vars.bias!.shape));
      return activation(layer, y);
    }
    case 'QAdd': {
      const qs = xs.map((t, j) => q(layer.iqs?.[j] ?? null, t));
      const shape = broadcastShapes(qs.map((t) => t.shape));
      const out = new Float64Array(prod(shape));
      for (const t of qs) {
        const ix = broadcastIndex(t.shape, shape);
        for (let j = 0; j < out.length; j++) out[j] += t.data[ix[j]!]!;
      }
      return { data: out, shape };
    }
    case 'QSum': {
      const xi = q(layer.iq, x);
      const axes = sumAxes(layer, xi.shape.length);
      if (axes.includes(0)) throw new Error(`layer '${layer.name}': summing over the batch axis is not supported`);
      const r = reduceAxes(xi.data, xi.shape, axes, 0, (a, v) => a + v);
      const scale = Number(layer.config.scale ?? 1);
      const data = r.data.map((v) => v * scale);
      const shape = layer.config.keepdims ? r.shape : r.shape.filter((_, d) => !axes.includes(d));
      return { data, shape };
    }
    case 'Reshape':
      return reshape(layer, x);
    case 'GetItem':
      return getItem(layer, x);
    default:
      throw new Error(`layer '${layer.name}': class ${layer.className} has no reference implementation`);
  }
}

/**
 * Run the model on `inputs` (one tensor per model input, in `model.inputs` order, batch first).
 * Inputs are first rounded to float32, as Keras feeds them.
 */
export function referenceForward(model: HgqModel, inputs: Tensor[], opt: ForwardOptions = {}): ForwardResult {
  if (inputs.length !== model.inputs.length)
    throw new Error(`${model.path}: the model has ${model.inputs.length} inputs, got ${inputs.length}`);
  const values = new Map<string, Tensor>();
  model.inputs.forEach((name, j) => {
    const t = inputs[j]!;
    const want = model.byName.get(name)!.config.batch_shape as (number | null)[];
    const ok = want.length === t.shape.length && want.every((d, k) => d === null || d === t.shape[k]);
    if (!ok) throw new Error(`${model.path}: input '${name}' expects shape [${want.map((d) => d ?? 'batch')}], got [${t.shape}]`);
    if (t.data.length !== prod(t.shape))
      throw new Error(`${model.path}: input '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    for (const v of t.data) if (!Number.isFinite(v)) throw new Error(`${model.path}: input '${name}' contains ${v}`);
    values.set(name, { data: t.data.map(Math.fround), shape: t.shape });
  });
  const pending = model.layers.filter((l) => l.className !== 'InputLayer');
  while (pending.length) {
    const idx = pending.findIndex((l) => l.inbound.every((r) => values.has(r.layer)));
    if (idx < 0)
      throw new Error(`${model.path}: layers ${pending.map((l) => l.name).join(', ')} cannot be reached from the inputs`);
    const layer = pending.splice(idx, 1)[0]!;
    values.set(
      layer.name,
      layerForward(
        layer,
        layer.inbound.map((r) => values.get(r.layer)!),
        opt,
      ),
    );
  }
  const outputs = model.outputs.map((n) => values.get(n)!);
  return { outputs, layers: opt.keepAll ? values : new Map() };
}

/**
 * The range [lo, hi] (per element of one sample) that the input quantizer(s) reading each model input
 * accept without wrapping or clipping: lo = −k·2^i, hi = 2^i − 2^−f. Inputs drawn inside it exercise
 * the model the way its training data did.
 */
export function inputRanges(
  model: HgqModel,
): { name: string; shape: number[]; lo: Float64Array; hi: Float64Array; step: Float64Array }[] {
  return model.inputs.map((name) => {
    const shape = (model.byName.get(name)!.config.batch_shape as (number | null)[]).slice(1) as number[];
    const n = prod(shape);
    const lo = new Float64Array(n).fill(-Infinity);
    const hi = new Float64Array(n).fill(Infinity);
    const step = new Float64Array(n).fill(0);
    for (const l of model.layers) {
      l.inbound.forEach((r, j) => {
        if (r.layer !== name) return;
        const q = l.iqs ? l.iqs[j]! : l.iq;
        if (!q) return;
        const { k, i, f } = quantizerKif(q);
        const ix = broadcastIndex(q.shape, [1, ...shape]);
        for (let e = 0; e < n; e++) {
          const p = ix[e]!;
          const w = k[p]! + i[p]! + f[p]!;
          const h = w <= 0 ? 0 : 2 ** i[p]! - 2 ** -f[p]!;
          const m = w <= 0 ? 0 : -k[p]! * 2 ** i[p]!;
          lo[e] = Math.max(lo[e]!, m);
          hi[e] = Math.min(hi[e]!, h);
          step[e] = Math.max(step[e]!, w <= 0 ? 0 : 2 ** -f[p]!);
        }
      });
    }
    for (let e = 0; e < n; e++)
      if (!Number.isFinite(lo[e]!) || lo[e]! > hi[e]!) {
        lo[e] = 0;
        hi[e] = 0;
      }
    return { name, shape, lo, hi, step };
  });
}
