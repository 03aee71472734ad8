/**
 * A decoded HGQ2 model (hgq2-model.ts) → our tfjs-layers functional model with the same weights and quantizer
 * state, so that it predicts, costs (EBOPs) and trains like the HGQ2 checkpoint. Semantics: HGQ2-SEMANTICS.md.
 *
 * Layer mapping: InputLayer → tf.input; QDense, QConv1D, QAdd → src/layers (QDense, QConv1D, QAdd);
 * QEinsumDense(Batchnorm) → einsum.ts; QDenseT, QConvT1D/2D → table-dense.ts; QEinsumDenseT → table-einsum.ts;
 * QSum → sum.ts; Reshape → tfjs Reshape; GetItem → getitem.ts.
 * Quantizers are configured by `hgq2QuantizerOptions` and loaded with the stored raw values.
 *
 * One structural difference: HGQ2's QAdd broadcasts (e.g. [32,16] + [1,16] in the particle model), ours
 * adds equal shapes. A narrower input is repeated first by a tfjs Concatenate of copies (an exact rewiring),
 * and its input quantizer's stored (k, i, f) are repeated the same way, so inference and EBOPs are unchanged
 * (HGQ2 computes QAdd's EBOPs on the broadcast shape too). Only retraining differs: the copies then get
 * separate bit widths.
 */
import * as tf from '@tensorflow/tfjs';
import { QLayer } from '../layers/base.ts';
import { QDense } from '../layers/dense.ts';
import { QConv1D } from '../layers/conv.ts';
import { QAdd } from '../layers/merge.ts';
import { QEinsumDense, QEinsumDenseBatchnorm } from '../layers/einsum.ts';
import { QSum } from '../layers/sum.ts';
import { GetItem } from '../layers/getitem.ts';
import { QConvT1D, QConvT2D, QDenseT } from '../layers/table-dense.ts';
import { QEinsumDenseT, type QEinsumDenseTArgs } from '../layers/table-einsum.ts';
import { tableConvSpec, tableIdxs } from './ebops.ts';
import type { Quantizer, QuantizerOptions } from '../quantizer/index.ts';
import type { HgqLayer, HgqModel, HgqQuantizer } from './hgq2-model.ts';
import { hgq2QuantizerOptions, hgq2QuantizerValues } from './hgq2-to-hgq.ts';
import { broadcastTo, prod } from './nd.ts';

export class ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportError';
  }
}

type Sym = tf.SymbolicTensor;

/**
 * tfjs names must match /^[A-Za-z0-9][-A-Za-z0-9._/]*$/ (Keras allows e.g. '_M1'): drop leading characters
 * that cannot start a name, replace the others, and keep names unique.
 */
export function tfjsLayerNames(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const n of names) {
    let t = n.replace(/[^-A-Za-z0-9._/]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'layer';
    if (used.has(t) || (names.includes(t) && t !== n)) {
      let k = 1;
      while (used.has(`${t}_${k}`) || names.includes(`${t}_${k}`)) k++;
      t = `${t}_${k}`;
    }
    used.add(t);
    out.set(n, t);
  }
  return out;
}

/** Build our model from a decoded HGQ2 model. Throws an ImportError naming the layer and the file. */
export function buildHgqModel(decoded: HgqModel): tf.LayersModel {
  const file = decoded.path;
  const fail = (layer: HgqLayer | null, what: string): never => {
    throw new ImportError(`${file}: ${layer ? `layer '${layer.name}' (${layer.className}): ` : ''}${what}`);
  };
  const outputs = new Map<string, Sym>();
  const inputs: Sym[] = [];
  /** our layer per HGQ2 layer, with the HGQ2 layer, to load the state once everything is built */
  const built: { src: HgqLayer; ours: tf.layers.Layer }[] = [];
  const tfName = tfjsLayerNames(decoded.layers.map((l) => l.name));

  for (const name of decoded.inputs) {
    const L = decoded.byName.get(name)!;
    const bs = L.config.batch_shape ?? L.config.batch_input_shape;
    if (!Array.isArray(bs) || bs.slice(1).some((d: unknown) => typeof d !== 'number'))
      fail(L, `input shape ${JSON.stringify(bs)} must be fully known apart from the batch axis`);
    if (L.config.dtype && !String(L.config.dtype).startsWith('float'))
      fail(L, `input dtype ${L.config.dtype} is not supported (float inputs only)`);
    const x = tf.input({ shape: bs.slice(1), name: tfName.get(name)!, dtype: 'float32' });
    outputs.set(name, x);
    inputs.push(x);
  }

  const pending = decoded.layers.filter((l) => l.className !== 'InputLayer');
  for (const l of decoded.layers)
    if (l.className === 'InputLayer' && !decoded.inputs.includes(l.name))
      fail(l, 'an InputLayer that is not a model input is not supported');
  while (pending.length) {
    const idx = pending.findIndex((l) => l.inbound.every((r) => outputs.has(r.layer)));
    if (idx < 0) fail(null, `layers ${pending.map((l) => `'${l.name}'`).join(', ')} cannot be reached from the model inputs`);
    const L = pending.splice(idx, 1)[0]!;
    for (const r of L.inbound)
      if (r.node !== 0 || r.tensor !== 0)
        fail(
          L,
          `takes output ${r.tensor} of call ${r.node} of '${r.layer}' (only single-output, single-call layers are supported)`,
        );
    const ins = L.inbound.map((r) => outputs.get(r.layer)!);
    const { layer, y } = makeLayer(L, tfName.get(L.name)!, ins, fail);
    outputs.set(L.name, y);
    built.push({ src: L, ours: layer });
  }
  const model = tf.model({ inputs, outputs: decoded.outputs.map((n) => outputs.get(n)!), name: modelName(file) });
  for (const b of built) loadState(b.src, b.ours, fail);
  return model;
}

function modelName(path: string): string {
  const base = path.split('/').pop() ?? 'model';
  return base.replace(/\.keras$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';
}

const ACTS = new Set(['linear', 'relu']);

/** A Keras activation as saved: a name, or {class_name: 'function', config: 'tanh'}; null = linear. */
function activationName(a: any): string {
  if (a === null || a === undefined) return 'linear';
  if (typeof a === 'string') return a;
  if (typeof a.config === 'string') return a.config;
  return a?.config?.name ?? JSON.stringify(a);
}

function activationOf(L: HgqLayer, fail: (l: HgqLayer, w: string) => never): 'linear' | 'relu' {
  const name = activationName(L.config.activation);
  if (!ACTS.has(name)) fail(L, `activation '${name}' is not supported (linear, relu)`);
  return name as 'linear' | 'relu';
}

/** The common HGQ2 layer options: β (stored value), EBOPs switch and factor. */
function common(
  L: HgqLayer,
  name: string,
  fail: (l: HgqLayer, w: string) => never,
): { name: string; beta0: number; enableEbops: boolean; ebopsFactor: number } {
  const c = L.config;
  const beta = L.vars.beta ? Number(L.vars.beta.data[0]) : 0;
  if (!Number.isFinite(beta) || beta < 0) fail(L, `stored β ${beta} is not a finite non-negative number`);
  return { name, beta0: beta, enableEbops: c.enable_ebops !== false, ebopsFactor: Number(c.ebops_factor ?? 1) };
}

function qOpts(q: HgqQuantizer | null): QuantizerOptions | null {
  return q ? hgq2QuantizerOptions(q) : null;
}

function one(v: unknown): number {
  return Array.isArray(v) ? Number(v[0]) : Number(v ?? 1);
}

/** QEinsumDenseT's options from its HGQ2 config and decoded quantizers. */
function einsumTableArgs(L: HgqLayer, name: string, fail: (l: HgqLayer, w: string) => never): QEinsumDenseTArgs {
  const c = L.config;
  return {
    ...common(L, name, fail),
    equation: String(c.equation),
    outputShape: c.output_shape,
    nHl: Number(c.n_hl ?? 1),
    dHl: Number(c.d_hl ?? 8),
    subnnActivation: activationName(c.subnn_activation),
    activation: activationOf(L, fail),
    biasAxes: c.bias_axes ?? null,
    normalizeAxes: c.normalize_axes ?? null,
    batchNorm: c.batch_norm === true,
    bnCenter: c.bn_center !== false,
    bnScale: c.bn_scale !== false,
    bnMomentum: Number(c.bn_momentum ?? 0.99),
    bnEpsilon: Number(c.bn_epsilon ?? 1e-3),
    tableIdxs: tableIdxs(c.table_idxs),
    parallelizationFactor: c.parallelization_factor === undefined ? -1 : Number(c.parallelization_factor),
    iqConf: qOpts(L.iq),
    toqConf: qOpts(L.toq ?? null),
  };
}

function makeLayer(
  L: HgqLayer,
  name: string,
  ins: Sym[],
  fail: (l: HgqLayer | null, w: string) => never,
): { layer: tf.layers.Layer; y: Sym } {
  const c = L.config;
  const apply = (layer: tf.layers.Layer, x: Sym | Sym[]) => {
    try {
      return layer.apply(x) as Sym;
    } catch (e) {
      return fail(L, (e as Error).message);
    }
  };
  const construct = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      return fail(L, (e as Error).message);
    }
  };
  /** What QDense and QConv share: activation, bias, parallelization and the three quantizers. */
  const kernelLayerArgs = () => ({
    activation: activationOf(L, fail),
    useBias: c.use_bias !== false,
    parallelizationFactor: c.parallelization_factor === undefined ? -1 : Number(c.parallelization_factor),
    iqConf: qOpts(L.iq),
    kqConf: qOpts(L.kq),
    bqConf: qOpts(L.bq),
  });
  switch (L.className) {
    case 'QDense': {
      if (c.lora_rank) fail(L, `lora_rank=${c.lora_rank} is not supported`);
      const layer = construct(
        () =>
          new QDense({
            ...common(L, name, fail),
            units: Number(c.units),
            ...kernelLayerArgs(),
          }),
      );
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'QEinsumDense':
    case 'QEinsumDenseBatchnorm': {
      if (c.lora_rank) fail(L, `lora_rank=${c.lora_rank} is not supported`);
      const base = {
        ...common(L, name, fail),
        equation: String(c.equation),
        outputShape: c.output_shape,
        biasAxes: c.bias_axes ?? null,
        activation: activationOf(L, fail),
        ebopsScaler: Number(c.ebops_scaler ?? 1),
        iqConf: qOpts(L.iq),
        kqConf: qOpts(L.kq),
        bqConf: qOpts(L.bq),
      };
      const layer = construct(() =>
        L.className === 'QEinsumDense'
          ? new QEinsumDense(base)
          : new QEinsumDenseBatchnorm({
              ...base,
              normalizeAxes: c.normalize_axes ?? null,
              momentum: Number(c.momentum ?? 0.99),
              epsilon: Number(c.epsilon ?? 1e-3),
              center: c.center !== false,
              scale: c.scale !== false,
            }),
      );
      if (c.synchronized) fail(L, 'synchronized batch norm is not supported');
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'QConv1D': {
      const padding = String(c.padding ?? 'valid').toLowerCase();
      if (padding !== 'valid' && padding !== 'same') fail(L, `padding '${c.padding}' is not supported (valid, same)`);
      if (one(c.dilation_rate) !== 1) fail(L, `dilation_rate ${JSON.stringify(c.dilation_rate)} is not supported (1 only)`);
      if (Number(c.groups ?? 1) !== 1) fail(L, `groups=${c.groups} is not supported (1 only)`);
      if ((c.data_format ?? 'channels_last') !== 'channels_last')
        fail(L, `data_format ${c.data_format} is not supported (channels_last only)`);
      const layer = construct(
        () =>
          new QConv1D({
            ...common(L, name, fail),
            filters: Number(c.filters),
            kernelSize: one(c.kernel_size),
            strides: one(c.strides),
            padding: padding as 'valid' | 'same',
            ...kernelLayerArgs(),
          }),
      );
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'QEinsumDenseT': {
      const layer = construct(() => new QEinsumDenseT(einsumTableArgs(L, name, fail)));
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'QDenseT':
    case 'QConvT1D':
    case 'QConvT2D': {
      const base = {
        ...common(L, name, fail),
        nHl: Number(c.n_hl ?? 1),
        dHl: Number(c.d_hl ?? 8),
        subnnActivation: activationName(c.subnn_activation),
        activation: activationOf(L, fail),
        useBias: c.use_bias !== false,
        batchNorm: c.batch_norm === true,
        bnCenter: c.bn_center !== false,
        bnScale: c.bn_scale !== false,
        bnMomentum: Number(c.bn_momentum ?? 0.99),
        bnEpsilon: Number(c.bn_epsilon ?? 1e-3),
        tableIdxs: construct(() => tableIdxs(c.table_idxs)),
        parallelizationFactor: c.parallelization_factor === undefined ? -1 : Number(c.parallelization_factor),
        iqConf: qOpts(L.iq),
        toqConf: qOpts(L.toq ?? null),
      };
      let layer: QDenseT;
      if (L.className === 'QDenseT') layer = construct(() => new QDenseT({ ...base, nOut: Number(c.n_out) }));
      else {
        const spec = construct(() => tableConvSpec(L));
        const args = {
          ...base,
          filters: Number(c.filters ?? c.n_out),
          kernelSize: spec.kernelSize,
          strides: spec.strides,
          padding: spec.padding,
        };
        layer = construct(() => (L.className === 'QConvT1D' ? new QConvT1D(args) : new QConvT2D(args)));
      }
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'Flatten': {
      const layer = construct(() => tf.layers.flatten({ name }));
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'QAdd': {
      // broadcast narrower inputs to the common shape by repetition (see the file comment)
      const shapes = ins.map((x) => x.shape.slice(1) as number[]);
      const rank = Math.max(...shapes.map((s) => s.length));
      if (shapes.some((s) => s.length !== rank))
        fail(L, `inputs of different ranks ([${shapes.map((s) => `[${s}]`).join(', ')}]) are not supported`);
      const out = shapes[0]!.map((_, a) => Math.max(...shapes.map((s) => s[a]!)));
      for (const s of shapes)
        if (s.some((d, a) => d !== 1 && d !== out[a]))
          fail(L, `input shapes ${shapes.map((x) => `[${x}]`).join(' and ')} do not broadcast`);
      const tiledIns = ins.map((x, j) => {
        let t = x;
        shapes[j]!.forEach((d, a) => {
          if (d === out[a]) return;
          const copies = new Array<Sym>(out[a]!).fill(t);
          t = tf.layers.concatenate({ axis: a + 1, name: `${name}_broadcast${j}_${a + 1}` }).apply(copies) as Sym;
        });
        return t;
      });
      const layer = construct(() => new QAdd({ ...common(L, name, fail), iqConf: (L.iqs ?? []).map((q) => qOpts(q)) }));
      return { layer, y: apply(layer, tiledIns) };
    }
    case 'QSum': {
      const layer = construct(
        () =>
          new QSum({
            ...common(L, name, fail),
            axes: c.axes ?? c.axis ?? -1,
            scale: Number(c.scale ?? 1),
            keepdims: c.keepdims === true,
            iqConf: qOpts(L.iq),
          }),
      );
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'Reshape': {
      const layer = construct(() => tf.layers.reshape({ targetShape: c.target_shape, name }));
      return { layer, y: apply(layer, ins[0]!) };
    }
    case 'GetItem': {
      if (L.callArgs.length !== 1) fail(L, `expected one index argument, got ${L.callArgs.length}`);
      const layer = construct(() => new GetItem({ name, key: L.callArgs[0] }));
      return { layer, y: apply(layer, ins[0]!) };
    }
    default:
      return fail(L, `class ${L.className} is not supported by hgq import`);
  }
}

/** Write `values` (row-major, shape `from`) into `v`, broadcasting size-1 axes of `from` to the variable's shape. */
function writeVar(
  v: tf.LayerVariable,
  values: ArrayLike<number | bigint>,
  from: number[],
  what: string,
  fail: (w: string) => never,
): void {
  const to = v.shape as number[];
  const data = Float64Array.from(values as ArrayLike<number>, Number);
  if (data.length !== prod(from)) fail(`${what}: ${data.length} stored values for shape [${from}]`);
  let out: Float64Array;
  if (from.length === to.length && from.every((d, a) => d === to[a])) out = data;
  else {
    try {
      out = broadcastTo(data, from, to);
    } catch {
      fail(`${what}: stored shape [${from}] does not fit our variable of shape [${to}]`);
    }
  }
  const t = tf.tensor(Float32Array.from(out), to, 'float32');
  v.write(t);
  t.dispose();
}

function loadQuantizer(q: Quantizer, src: HgqQuantizer, what: string, fail: (w: string) => never): void {
  const vals = hgq2QuantizerValues(src);
  for (const w of q.weights) {
    const v = w.variable as unknown as tf.LayerVariable;
    if (w.name === 'i_decay_speed') {
      if (vals.iDecaySpeed !== undefined) writeVar(v, [vals.iDecaySpeed], [], `${what} i_decay_speed`, fail);
      continue;
    }
    const data = (vals as unknown as Record<string, ArrayLike<number> | undefined>)[w.name];
    if (!data) fail(`${what}: no stored ${w.name}`);
    writeVar(v, data!, vals.shape, `${what} ${w.name}`, fail);
  }
}

function weight(layer: tf.layers.Layer, name: string, fail: (w: string) => never): tf.LayerVariable {
  const v = layer.weights.find((w) => w.originalName === `${layer.name}/${name}`);
  return v ?? fail(`our layer has no weight '${name}'`);
}

function loadState(L: HgqLayer, layer: tf.layers.Layer, fail0: (l: HgqLayer, w: string) => never): void {
  const fail = (w: string): never => fail0(L, w);
  if (!(layer instanceof QLayer)) return; // Reshape: no state
  const ql = layer as QLayer & { kq?: Quantizer; bq?: Quantizer | null };
  const set = (name: string, key: string) => {
    const t = L.vars[key];
    if (!t) fail(`the checkpoint has no ${key}`);
    writeVar(weight(layer, name, fail), t!.data, t!.shape, key, fail);
  };
  if (L.vars.beta) set('beta', 'beta');
  switch (L.className) {
    case 'QDense':
    case 'QConv1D':
    case 'QEinsumDense':
    case 'QEinsumDenseBatchnorm':
      set('kernel', 'kernel');
      if (L.bq) set('bias', 'bias');
      if (L.className === 'QEinsumDenseBatchnorm') {
        set('bn_gamma', 'gamma');
        set('moving_mean', 'moving_mean');
        set('moving_variance', 'moving_variance');
      }
      loadQuantizer(ql.iqs[0]!, L.iq!, 'input quantizer', fail);
      loadQuantizer(ql.kq!, L.kq!, 'kernel quantizer', fail);
      if (L.bq) loadQuantizer(ql.bq!, L.bq, 'bias quantizer', fail);
      return;
    case 'QSum':
      loadQuantizer(ql.iqs[0]!, L.iq!, 'input quantizer', fail);
      return;
    case 'QDenseT':
    case 'QConvT1D':
    case 'QConvT2D':
    case 'QEinsumDenseT': {
      // the same sub-network, batch norm and table output quantizer fields on both classes
      const t = layer as QDenseT | QEinsumDenseT;
      const net = L.subnet!;
      const put = (
        v: tf.LayerVariable | null | undefined,
        src: { data: ArrayLike<number | bigint>; shape: number[] } | null,
        what: string,
      ) => {
        if (!v || !src) {
          if (v || src) fail(`${what}: the checkpoint and our layer disagree on whether it exists`);
          return;
        }
        writeVar(v, src.data, src.shape, what, fail);
      };
      net.hidden.forEach((h, j) => {
        put(t.hiddenKernels[j], h.kernel, `sub-network layer ${j} kernel`);
        put(t.hiddenBiases[j], h.bias, `sub-network layer ${j} bias`);
      });
      put(t.outKernel, net.out.kernel, 'sub-network output kernel');
      put(t.outBias, net.out.bias, 'sub-network output bias');
      if (net.bn) {
        put(t.bnGamma, net.bn.gamma, 'batch norm gamma');
        put(t.bnBeta, net.bn.beta, 'batch norm beta');
        put(t.movingMean, net.bn.movingMean, 'batch norm moving mean');
        put(t.movingVariance, net.bn.movingVariance, 'batch norm moving variance');
      }
      loadQuantizer(ql.iqs[0]!, L.iq!, 'input quantizer', fail);
      loadQuantizer(t.toq, L.toq!, 'table output quantizer', fail);
      return;
    }
    case 'QAdd':
      // an input quantizer whose input was repeated to the common shape gets its values repeated (writeVar)
      (L.iqs ?? []).forEach((q, j) => loadQuantizer(ql.iqs[j]!, q, `input quantizer ${j}`, fail));
      return;
    case 'GetItem':
      return;
  }
}

export interface ImportedLayerEbops {
  name: string;
  className: string;
  /** this layer's EBOPs from its current state (our differentiable formula, float32) */
  ebops: number;
}

/**
 * EBOPs of a model as HGQ2 reports them: each layer's value cast to an integer (HGQ2 stores it as uint32),
 * summed. Our per-layer values are float32 sums of integer bit products (×0.65 for adders, a multiple of
 * 0.05), so a 0.01 margin absorbs float32 rounding before the cast.
 */
export function hgq2StyleEbops(model: tf.LayersModel): { total: number; exact: number; layers: ImportedLayerEbops[] } {
  const layers: ImportedLayerEbops[] = [];
  for (const l of model.layers) {
    if (!(l instanceof QLayer) || !l.enableEbops) continue;
    layers.push({ name: l.name, className: l.getClassName(), ebops: l.hgqEbops() });
  }
  return {
    total: layers.reduce((s, l) => s + Math.floor(l.ebops + 0.01), 0),
    exact: layers.reduce((s, l) => s + l.ebops, 0),
    layers,
  };
}
