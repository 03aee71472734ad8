/**
 * Bridge between a tfjs-layers HGQ model (the public API and reference) and the wasm engine: describe the model
 * for the engine (weights, bit parameters, quantizer configs, β, Adam hyper-parameters and state), and copy the
 * state back so callbacks, β schedules, checkpoints, calibration and save/load keep working on the tfjs model.
 */
import * as tf from '@tensorflow/tfjs';
import { QBatchNormDense, QDense } from '../layers/dense.ts';
import { QConv1D, QConv2D } from '../layers/conv.ts';
import {
  QAveragePooling1D,
  QAveragePooling2D,
  QGlobalAveragePooling1D,
  QGlobalAveragePooling2D,
  QGlobalMaxPooling1D,
  QGlobalMaxPooling2D,
  QMaxPooling1D,
  QMaxPooling2D,
} from '../layers/pooling.ts';
import { QAdd, QMaximum, QMinimum, QMultiply, QSubtract } from '../layers/merge.ts';
import { QBatchNormalization } from '../layers/batchnorm.ts';
import { QConcatenate } from '../layers/shape.ts';
import { QConvT1D, QConvT2D, QDenseT } from '../layers/table-dense.ts';
import type { QLayer } from '../layers/base.ts';
import type { Quantizer } from '../quantizer/index.ts';
import { createEngine } from './engine.ts';
import { createGraphEngine } from './graph.ts';
import type {
  DenseDesc,
  EngineOptions,
  GraphLayerDesc,
  GraphModelDesc,
  KbiDesc,
  KernelDesc,
  KifDesc,
  ModelDesc,
  TableDesc,
  TrainEngine,
} from './types.ts';

export type EngineLoss = ModelDesc['loss'];

interface Binding {
  /** engine parameter name → the tfjs variable holding it */
  vars: Map<string, tf.LayerVariable>;
  /** the engine layer index of each layer with a β */
  layers: Array<{ index: number; layer: QLayer }>;
}

/** Why the engine cannot train this model (naming the first unsupported layer), or null when it can. */
export function engineUnsupported(model: tf.LayersModel): string | null {
  try {
    planOf(model);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Layers that only reshape: free on the engine's row-major (batch, features) rows. */
const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'QFlatten', 'QReshape']);
const CONV = [QConv1D, QConv2D];
const POOL = [QMaxPooling1D, QMaxPooling2D, QAveragePooling1D, QAveragePooling2D];
const GLOBAL_POOL = [QGlobalMaxPooling1D, QGlobalMaxPooling2D, QGlobalAveragePooling1D, QGlobalAveragePooling2D];
const MERGES = [QAdd, QSubtract, QMultiply, QMaximum, QMinimum];
const SUPPORTED =
  'QDense, QDenseT (on (batch, features)), QConvT1D/2D, QBatchNormDense, QBatchNormalization, QConv1D/2D, QMaxPooling1D/2D, QAveragePooling1D/2D, their global forms, QAdd, QSubtract, QMultiply, QMaximum, QMinimum, QConcatenate, Flatten, Reshape';

type Conv = QConv1D | QConv2D;
interface PlanNode {
  layer: QLayer;
  from: number[];
}
/** The model as engine nodes in topological order; chain = plain QDense layers one after another (the fast path). */
interface Plan {
  nodes: PlanNode[];
  chain: boolean;
  inputs: number;
}

const isAny = (l: unknown, cs: ReadonlyArray<abstract new (...a: never[]) => unknown>) => cs.some((c) => l instanceof c);
const inShapeOf = (l: QLayer): (number | null)[] =>
  (l as unknown as { builtInputShapes: (number | null)[][] }).builtInputShapes[0]!;

function planOf(model: tf.LayersModel): Plan {
  if (model.inputs.length !== 1 || model.outputs.length !== 1)
    throw new Error('the engine trains single-input, single-output models');
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (layers.length === 0) throw new Error('the model has no layers');
  const out = model.outputs[0]!.shape;
  if (out.length !== 2)
    throw new Error(`the model's output has rank ${out.length}; the wasm engine trains (batch, outputs) models`);
  const index = new Map<tf.layers.Layer, number>();
  const nodes: PlanNode[] = [];
  for (const l of layers) {
    const what = `layer '${l.name}' (${l.getClassName()})`;
    if (l.inboundNodes.length !== 1)
      throw new Error(`${what} is used ${l.inboundNodes.length} times; the wasm engine needs each layer applied once`);
    const inbound = (l.inboundNodes[0]?.inboundLayers ?? []) as tf.layers.Layer[];
    if (inbound.length === 0) throw new Error(`${what} has no input`);
    const from = inbound.map((p) => {
      const j = index.get(p);
      if (j !== undefined) return j;
      if (p.getClassName() === 'InputLayer') return -1;
      throw new Error(`${what} takes its input from '${p.name}', which the wasm engine has not placed before it`);
    });
    if (PASS_THROUGH.has(l.getClassName())) {
      const q = l as unknown as { iqs?: (Quantizer | null)[]; oq?: Quantizer | null };
      if (q.iqs?.some((x) => x) || q.oq)
        throw new Error(`${what} quantizes; the wasm engine supports reshapes without quantizers`);
      index.set(l, from[0]!);
      continue;
    }
    const ql = l as unknown as QLayer;
    const supported =
      l instanceof QDenseT ||
      l instanceof QDense ||
      isAny(l, CONV) ||
      isAny(l, POOL) ||
      isAny(l, GLOBAL_POOL) ||
      isAny(l, MERGES) ||
      l instanceof QBatchNormalization ||
      l instanceof QConcatenate;
    if (!supported) throw new Error(`${what} is not supported by the wasm engine yet (supported: ${SUPPORTED})`);
    if (!l.trainable) throw new Error(`${what} is frozen (trainable = false); the wasm engine trains every layer`);
    if (ql.oq) checkQuantizer(ql.oq, 'kif', [0], `${what} output quantizer`);
    if (l instanceof QDenseT) {
      if (from.length !== 1) throw new Error(`${what} takes ${from.length} inputs`);
      checkTable(l, what);
    } else if (isAny(l, MERGES) || l instanceof QConcatenate) {
      ql.iqs.forEach((q, j) => {
        if (q) checkQuantizer(q, 'kif', [0], `${what} input quantizer ${j}`);
      });
    } else {
      if (from.length !== 1) throw new Error(`${what} takes ${from.length} inputs`);
      const inShape = inShapeOf(ql);
      // a QDense on (batch, ...positions, features) is a 1×…×1 convolution (same EBOPs); QBatchNormDense needs rank 2
      if (l instanceof QBatchNormDense && (!inShape || inShape.length !== 2))
        throw new Error(
          `${what} takes inputs of rank ${inShape?.length}; the wasm engine supports (batch, features) for batch-norm dense layers (add a Flatten before it)`,
        );
      if (l instanceof QDense && inShape?.length === 2 && l.parallelizationFactor > 1)
        throw new Error(
          `${what} has parallelizationFactor ${l.parallelizationFactor}; the wasm engine supports the default (fully parallel)`,
        );
      if (ql.iqs[0]) checkQuantizer(ql.iqs[0], 'kif', [0], `${what} input quantizer`);
      else if ((l instanceof QDense || isAny(l, CONV)) && ql.enableEbops && ql.getBeta() > 0)
        throw new Error(`${what} counts EBOPs without an input quantizer; the wasm engine needs the input quantizer for EBOPs`);
      if (l instanceof QDense || isAny(l, CONV) || l instanceof QBatchNormalization) {
        const w = l as unknown as QDense | Conv;
        checkQuantizer(w.kq, 'kbi', [], `${what} kernel quantizer`);
        if (w.bq) checkQuantizer(w.bq, 'kbi', [], `${what} bias quantizer`);
      }
    }
    index.set(l, nodes.length);
    nodes.push({ layer: ql, from });
  }
  if (nodes.length === 0) throw new Error('the model has no trainable layer');
  const outLayer = (model.outputs[0] as unknown as { sourceLayer: tf.layers.Layer }).sourceLayer;
  if (index.get(outLayer) !== nodes.length - 1)
    throw new Error(
      `the model's output must come from its last layer ('${nodes[nodes.length - 1]!.layer.name}') for the wasm engine`,
    );
  const chain = nodes.every(
    (n, j) =>
      !n.layer.oq &&
      n.layer instanceof QDense &&
      !(n.layer instanceof QBatchNormDense) &&
      inShapeOf(n.layer).length === 2 &&
      n.from.length === 1 &&
      n.from[0] === j - 1,
  );
  const inputs = (model.inputs[0]!.shape.slice(1) as number[]).reduce((a, d) => a * d, 1);
  return { nodes, chain, inputs };
}

const TABLE_SUBNN = new Set(['linear', 'relu', 'tanh', 'sigmoid']);

/** What the engine's table node takes: (batch, features) input, a built-in sub-network activation, quantizers shared over the batch. */
function checkTable(l: QDenseT, what: string): void {
  const conv = l instanceof QConvT1D || l instanceof QConvT2D;
  if (!conv && l.positions.length > 0)
    throw new Error(
      `${what} takes inputs of rank ${l.positions.length + 2}; the wasm engine supports QDenseT on (batch, features)`,
    );
  if (!TABLE_SUBNN.has(l.subnnActivation))
    throw new Error(
      `${what} has sub-network activation '${l.subnnActivation}'; the wasm engine supports linear, relu, tanh, sigmoid`,
    );
  if (l.activation !== 'relu' && l.activation !== 'linear')
    throw new Error(`${what} has activation ${l.activation}; the wasm engine supports relu and linear`);
  const tableQ = (q: Quantizer, type: 'kif' | 'kbi', name: string) => {
    const c = q.config;
    if (c.qType !== type)
      throw new Error(`${what} ${name} is ${c.qType.toUpperCase()}; the wasm engine supports ${type.toUpperCase()} here`);
    if (c.roundMode !== 'RND') throw new Error(`${what} ${name} rounds with ${c.roundMode}; the wasm engine supports RND`);
    if (type === 'kbi' && c.overflowMode === 'WRAP')
      throw new Error(`${what} ${name} uses WRAP; the wasm engine supports SAT and SAT_SYM for the table output quantizer`);
    if (q.paramShape[0] !== 1)
      throw new Error(`${what} ${name} has bit widths per sample; the wasm engine needs the batch axis homogeneous`);
  };
  if (l.iqs[0]) tableQ(l.iqs[0], 'kif', 'input quantizer');
  tableQ(l.toq, 'kbi', 'table output quantizer');
}

/**
 * Each (edge, position) entry's parameter index, in the engine's order e·P + p (e = i·n_out + o), of a quantizer on
 * the edge shape [batch, ...positions, n_in, n_out] (its parameters broadcast over the axes where they have size 1).
 */
function tableEdgeIndex(q: Quantizer, positions: number[], nIn: number, nOut: number): Int32Array {
  const ps = q.paramShape;
  const full = [1, ...positions, nIn, nOut];
  const P = positions.reduce((a, d) => a * d, 1);
  const coords = new Array<number>(full.length).fill(0);
  return Int32Array.from({ length: nIn * nOut * P }, (_, j) => {
    const e = Math.floor(j / P);
    let p = j % P;
    coords[full.length - 2] = Math.floor(e / nOut);
    coords[full.length - 1] = e % nOut;
    for (let a = full.length - 3; a >= 1; a--) {
      coords[a] = p % full[a]!;
      p = Math.floor(p / full[a]!);
    }
    let idx = 0;
    for (let a = 0; a < full.length; a++) idx = idx * ps[a]! + (ps[a]! > 1 ? coords[a]! : 0);
    return idx;
  });
}

/** A QDenseT's description: sub-network weights, batch norm and both quantizers bound to their variables. */
function tableDesc(vb: VariableBinder, l: QDenseT, from: number[], pre: string, beta: number): TableDesc {
  const iq = l.iqs[0] ?? null;
  const bind = (name: string, v: tf.LayerVariable | null) => (v ? vb.bindVar(name, v) : null);
  return {
    type: 'table',
    from,
    nIn: l.nIn,
    nOut: l.nOut,
    nHl: l.nHl,
    dHl: l.dHl,
    subnnActivation: l.subnnActivation as TableDesc['subnnActivation'],
    activation: l.activation as TableDesc['activation'],
    hiddenKernels: l.hiddenKernels.map((v, h) => vb.bindVar(`${pre}.hidden${h}.kernel`, v)),
    hiddenBiases: l.hiddenBiases.map((v, h) => vb.bindVar(`${pre}.hidden${h}.bias`, v)),
    outKernel: vb.bindVar(`${pre}.out.kernel`, l.outKernel),
    outBias: bind(`${pre}.out.bias`, l.outBias),
    batchNorm: l.batchNorm
      ? {
          gamma: bind(`${pre}.bn.gamma`, l.bnGamma),
          beta: bind(`${pre}.bn.beta`, l.bnBeta),
          movingMean: vb.bindVar(`${pre}.movingMean`, l.movingMean!),
          movingVariance: vb.bindVar(`${pre}.movingVariance`, l.movingVariance!),
          momentum: l.bnMomentum,
          epsilon: l.bnEpsilon,
        }
      : null,
    iq: vb.kif(iq, `${pre}.iq`),
    iqIndex: iq ? tableEdgeIndex(iq, l.positions, l.nIn, l.nOut) : undefined,
    toq: vb.kbi(l.toq, `${pre}.toq`),
    toqIndex: tableEdgeIndex(l.toq, l.positions, l.nIn, l.nOut),
    conv:
      l instanceof QConvT1D || l instanceof QConvT2D
        ? {
            inShape: inShapeOf(l).slice(1) as number[],
            kernelSize: [...l.kernelSize],
            strides: [...l.strides],
            padding: l.padding,
          }
        : null,
    tableIdxs: [...l.tableIdxs],
    pfScale:
      l.parallelizationFactor < 0
        ? 1
        : l.parallelizationFactor /
          Math.max(
            1,
            l.positions.reduce((a, d) => a * d, 1),
          ),
    beta,
  };
}

function checkQuantizer(q: Quantizer, type: 'kif' | 'kbi', axes: number[], what: string): void {
  const c = q.config;
  if (c.qType !== type)
    throw new Error(`${what} is ${c.qType.toUpperCase()}; the wasm engine supports ${type.toUpperCase()} here`);
  if (c.roundMode !== 'RND') throw new Error(`${what} rounds with ${c.roundMode}; the wasm engine supports RND`);
  if (type === 'kbi' && c.overflowMode === 'WRAP')
    throw new Error(`${what} uses WRAP; the wasm engine supports SAT and SAT_SYM for weights`);
  const ax = q.homogeneousAxes;
  if (ax.length !== axes.length || ax.some((a, j) => a !== axes[j])) {
    throw new Error(
      `${what} has granularity with shared axes [${ax}]; the wasm engine supports [${axes}] (${type === 'kif' ? 'per activation' : 'per element'})`,
    );
  }
}

const data = (t: tf.Tensor): Float32Array => Float32Array.from(t.dataSync() as Float32Array);
function qvar(q: Quantizer, n: string): tf.LayerVariable {
  const w = q.weights.find((x) => x.name === n);
  if (!w) throw new Error(`quantizer ${q.name} has no parameter ${n}`);
  return w.variable as unknown as tf.LayerVariable;
}

const betaOf = (l: QLayer): number => (l.enableEbops ? l.getBeta() * l.ebopsFactor : 0);

/** A plain QDense chain's description for the fast path (describeAny also covers the graph path). */
export function describeModel(model: tf.LayersModel, loss: EngineLoss): { desc: ModelDesc; binding: Binding } {
  const r = describeAny(model, loss);
  if (r.graph)
    throw new Error("the model needs the engine's graph path (batch norm, convolution, pooling or merges); use describeAny");
  return { desc: r.desc as ModelDesc, binding: r.binding };
}

/** Reads the model into an engine description (chain or graph) and the variable binding used to sync back. */
export function describeAny(
  model: tf.LayersModel,
  loss: EngineLoss,
): { desc: ModelDesc | GraphModelDesc; graph: boolean; binding: Binding } {
  const plan = planOf(model);
  const opt = model.optimizer as unknown as {
    getClassName?: () => string;
    learningRate: number;
    beta1: number;
    beta2: number;
    epsilon: number;
  };
  if (!opt || opt.getClassName?.() !== 'Adam') throw new Error('the wasm engine needs the model compiled with tf.train.adam');
  const vb = new VariableBinder();
  const layers: GraphLayerDesc[] = plan.nodes.map(
    ({ layer: l, from }, li): GraphLayerDesc => ({ ...layerDesc(vb, l, from, li), oq: vb.kif(l.oq, `layers[${li}].oq`) }),
  );
  const optimizer = { learningRate: opt.learningRate, beta1: opt.beta1, beta2: opt.beta2, epsilon: opt.epsilon };
  const binding: Binding = { vars: vb.vars, layers: plan.nodes.map((n, index) => ({ index, layer: n.layer })) };
  if (plan.chain) {
    const desc: ModelDesc = {
      layers: layers.map((d) => {
        const { from: _f, ...rest } = d as DenseDesc & { from?: number[] };
        void _f;
        return rest as DenseDesc;
      }),
      loss,
      optimizer,
    };
    return { desc, graph: false, binding };
  }
  return { desc: { inputs: plan.inputs, layers, loss, optimizer }, graph: true, binding };
}

/** Copies the model's variables into the description, remembering each by name so trained values can be written back. */
class VariableBinder {
  readonly vars = new Map<string, tf.LayerVariable>();

  bindVar(name: string, v: tf.LayerVariable): Float32Array {
    this.vars.set(name, v);
    return data(v.read());
  }

  /** The parts both quantizer kinds share: k (a constant), i (trained) and the L1 coefficient. */
  private quantizerParts(q: Quantizer, name: string): Pick<KbiDesc & KifDesc, 'k' | 'i' | 'iBounds' | 'l1'> {
    const c = q.config;
    return {
      k: data(qvar(q, 'k').read()),
      i: this.bindVar(`${name}.i`, qvar(q, 'i')),
      iBounds: c.iBounds,
      l1: c.trainable ? c.l1 : 0,
    };
  }

  kbi(q: Quantizer, name: string): KbiDesc {
    return {
      ...this.quantizerParts(q, name),
      overflow: q.config.overflowMode as KbiDesc['overflow'],
      b: this.bindVar(`${name}.b`, qvar(q, 'b')),
      bBounds: q.config.bBounds,
    };
  }

  kif(q: Quantizer | null, name: string): KifDesc | null {
    if (!q) return null;
    const c = q.config;
    const decay = c.overflowMode === 'WRAP' ? qvar(q, 'i_decay_speed').read().dataSync()[0]! : 0;
    return {
      ...this.quantizerParts(q, name),
      overflow: c.overflowMode,
      f: this.bindVar(`${name}.f`, qvar(q, 'f')),
      fBounds: c.fBounds,
      decay,
    };
  }
}

/** The kernel, bias and quantizers of a dense or conv layer, bound to their variables. */
function kernelDesc(vb: VariableBinder, l: QDense | Conv, pre: string, beta: number): KernelDesc {
  return {
    activation: l.activation,
    kernel: vb.bindVar(`${pre}.kernel`, l.kernel),
    bias: l.bias ? vb.bindVar(`${pre}.bias`, l.bias) : null,
    iq: vb.kif(l.iqs[0] ?? null, `${pre}.iq`),
    kq: vb.kbi(l.kq, `${pre}.kq`),
    bq: l.bq ? vb.kbi(l.bq, `${pre}.bq`) : null,
    beta,
  };
}

/** The engine description of one layer (without its output quantizer); weighted layers here, the rest in shapeLayerDesc. */
function layerDesc(vb: VariableBinder, l: QLayer, from: number[], li: number): GraphLayerDesc {
  const pre = `layers[${li}]`;
  const beta = betaOf(l);
  const inShape = inShapeOf(l).slice(1) as number[];
  if (l instanceof QDenseT) return tableDesc(vb, l, from, pre, beta);
  if (l instanceof QDense && !(l instanceof QBatchNormDense) && inShape.length > 1) {
    return {
      type: 'conv',
      from,
      inShape,
      filters: l.units,
      kernelSize: inShape.slice(0, -1).map(() => 1),
      strides: inShape.slice(0, -1).map(() => 1),
      padding: 'valid',
      ...kernelDesc(vb, l, pre, beta),
      parallelizationFactor: l.parallelizationFactor,
    };
  }
  if (l instanceof QDense) {
    const K = l.kernel.shape[0]!,
      N = l.units;
    const dense: DenseDesc = {
      type: 'dense',
      inputs: K,
      units: N,
      ...kernelDesc(vb, l, pre, beta),
    };
    if (!(l instanceof QBatchNormDense)) return { ...dense, from };
    const { type: _t, ...rest } = dense;
    void _t;
    return {
      ...rest,
      type: 'bndense',
      from,
      gamma: l.gamma ? vb.bindVar(`${pre}.gamma`, l.gamma) : null,
      movingMean: vb.bindVar(`${pre}.movingMean`, l.movingMean),
      movingVariance: vb.bindVar(`${pre}.movingVariance`, l.movingVariance),
      momentum: l.momentum,
      epsilon: l.epsilon,
    };
  }
  if (l instanceof QBatchNormalization) {
    return {
      type: 'bn',
      from,
      inShape,
      gamma: l.gamma ? vb.bindVar(`${pre}.gamma`, l.gamma) : null,
      offset: l.beta ? vb.bindVar(`${pre}.offset`, l.beta) : null,
      movingMean: vb.bindVar(`${pre}.movingMean`, l.movingMean),
      movingVariance: vb.bindVar(`${pre}.movingVariance`, l.movingVariance),
      momentum: l.momentum,
      epsilon: l.epsilon,
      freeze: l.freezeStatistics,
      iq: vb.kif(l.iqs[0] ?? null, `${pre}.iq`),
      kq: vb.kbi(l.kq, `${pre}.kq`),
      bq: vb.kbi(l.bq, `${pre}.bq`),
      beta,
    };
  }
  if (isAny(l, CONV)) {
    const c = l as Conv;
    return {
      type: 'conv',
      from,
      inShape,
      filters: c.filters,
      kernelSize: [...c.kernelSize],
      strides: [...c.strides],
      padding: c.padding,
      ...kernelDesc(vb, c, pre, beta),
      parallelizationFactor: c.parallelizationFactor,
    };
  }
  return shapeLayerDesc(vb, l, from, pre, inShape, beta);
}

/** Pooling, concatenation and merges: the layers without weights, described by their shapes. */
function shapeLayerDesc(
  vb: VariableBinder,
  l: QLayer,
  from: number[],
  pre: string,
  inShape: number[],
  beta: ReturnType<typeof betaOf>,
): GraphLayerDesc {
  if (isAny(l, POOL)) {
    const p = l as InstanceType<typeof QMaxPooling2D>;
    const op = isAny(l, [QMaxPooling1D, QMaxPooling2D]) ? 'max' : 'avg';
    return {
      type: 'pool',
      op,
      from,
      inShape,
      poolSize: [...p.poolSize],
      strides: [...p.strides],
      padding: p.padding,
      iq: vb.kif(l.iqs[0] ?? null, `${pre}.iq`),
      beta,
      parallelizationFactor: p.parallelizationFactor,
    };
  }
  if (isAny(l, GLOBAL_POOL)) {
    const op = isAny(l, [QGlobalMaxPooling1D, QGlobalMaxPooling2D]) ? 'max' : 'avg';
    return {
      type: 'pool',
      op,
      global: true,
      from,
      inShape,
      poolSize: [],
      strides: [],
      padding: 'valid',
      iq: vb.kif(l.iqs[0] ?? null, `${pre}.iq`),
      beta,
    };
  }
  if (l instanceof QConcatenate) {
    const shapes = (l as unknown as { builtInputShapes: number[][] }).builtInputShapes.map((sh) => sh.slice(1));
    const rank = shapes[0]!.length,
      ax = (l.axis < 0 ? l.axis + rank + 1 : l.axis) - 1;
    const inner = shapes[0]!.slice(ax + 1).reduce((a, d) => a * d, 1),
      outer = shapes[0]!.slice(0, ax).reduce((a, d) => a * d, 1);
    return {
      type: 'concat',
      from,
      outer,
      parts: shapes.map((sh) => sh[ax]! * inner),
      iqs: l.iqs.map((q, j) => vb.kif(q, `${pre}.iq${j}`)),
    };
  }
  // merges
  const size = inShape.reduce((a, d) => a * d, 1);
  const op =
    l instanceof QSubtract
      ? 'subtract'
      : l instanceof QMultiply
        ? 'multiply'
        : l instanceof QMaximum
          ? 'maximum'
          : l instanceof QMinimum
            ? 'minimum'
            : 'add';
  return { type: 'add', op, from, size, iqs: l.iqs.map((q, j) => vb.kif(q, `${pre}.iq${j}`)), beta };
}

/** The tfjs Adam optimizer's private state, which the engine reads and writes. */
export interface AdamInternals {
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  iterations_: number;
  /** read at every step by tfjs, and by the engine at every epoch's start (pull) */
  learningRate: number;
}

/** The model's trainable variables in the order the optimizer indexes its moments (tfjs-layers' collected order). */
export function trainableOrder(model: tf.LayersModel): tf.LayerVariable[] {
  const m = model as unknown as { collectedTrainableWeights?: tf.LayerVariable[] };
  return m.collectedTrainableWeights ?? model.trainableWeights;
}

/** Writes the Adam moments m, v of trainable variable j (lv) into the tfjs optimizer, creating them when absent. */
export function setAdamMoments(opt: AdamInternals, lv: tf.LayerVariable, j: number, m: Float32Array, v: Float32Array): void {
  const put = (arr: AdamInternals['accumulatedFirstMoment'], src: Float32Array, suffix: string) => {
    const t = tf.tensor(src, lv.shape as number[]);
    if (arr[j]) {
      arr[j]!.variable.assign(t);
      t.dispose();
    } else arr[j] = { originalName: `${(lv.read() as tf.Variable).name}/${suffix}`, variable: t.variable(false) };
  };
  put(opt.accumulatedFirstMoment, m, 'm');
  put(opt.accumulatedSecondMoment, v, 'v');
}

/** An engine bound to a tfjs model: `pull` copies model → engine, `push` engine → model (weights and Adam state). */
export class EngineBinding {
  private constructor(
    readonly engine: TrainEngine,
    readonly model: tf.LayersModel,
    private readonly binding: Binding,
  ) {}

  /** Models with batch norm, convolutions, pooling or merges run on the graph path. */
  static async create(model: tf.LayersModel, loss: EngineLoss, opts: EngineOptions = {}): Promise<EngineBinding> {
    const { desc, graph, binding } = describeAny(model, loss);
    const engine: TrainEngine = graph
      ? await createGraphEngine(desc as GraphModelDesc, opts)
      : await createEngine(desc as ModelDesc, opts);
    const b = new EngineBinding(engine, model, binding);
    b.pullOptimizer();
    return b;
  }

  /** Copies weights, bit parameters, β and the Adam state from the tfjs model into the engine. */
  pull(): void {
    const values: Record<string, Float32Array> = {};
    for (const [name, v] of this.binding.vars) values[name] = data(v.read());
    this.engine.writeState({ values });
    for (const { index, layer } of this.binding.layers) this.engine.setBeta(index, betaOf(layer));
    this.pullOptimizer();
  }

  private pullOptimizer(): void {
    const opt = this.model.optimizer as unknown as AdamInternals;
    const order = trainableOrder(this.model);
    const m: Record<string, Float32Array> = {},
      v: Record<string, Float32Array> = {};
    for (const [name, lv] of this.binding.vars) {
      const j = order.indexOf(lv);
      if (j < 0) continue; // not trainable (WRAP integer bits)
      const fm = opt.accumulatedFirstMoment[j],
        sm = opt.accumulatedSecondMoment[j];
      const n = (lv.shape as number[]).reduce((a, d) => a * d, 1);
      m[name] = fm ? data(fm.variable as tf.Tensor) : new Float32Array(n);
      v[name] = sm ? data(sm.variable as tf.Tensor) : new Float32Array(n);
    }
    this.engine.writeState({
      adam: {
        m,
        v,
        iterations: opt.iterations_ ?? 0,
        accBeta1: opt.accBeta1.dataSync()[0]!,
        accBeta2: opt.accBeta2.dataSync()[0]!,
        learningRate: opt.learningRate,
      },
    });
  }

  /** Copies the engine's parameters and Adam state back into the tfjs model (e.g. at each epoch end). */
  push(): void {
    const st = this.engine.readState();
    const order = trainableOrder(this.model);
    const opt = this.model.optimizer as unknown as AdamInternals;
    for (const [name, lv] of this.binding.vars) {
      const shape = lv.shape as number[];
      tf.tidy(() => {
        lv.write(tf.tensor(st.values[name]!, shape));
      });
      const j = order.indexOf(lv);
      if (j < 0 || !st.adam.m[name]) continue;
      setAdamMoments(opt, lv, j, st.adam.m[name]!, st.adam.v[name]!);
    }
    tf.tidy(() => {
      opt.accBeta1.assign(tf.scalar(st.adam.accBeta1));
      opt.accBeta2.assign(tf.scalar(st.adam.accBeta2));
    });
    opt.iterations_ = st.adam.iterations;
  }

  dispose(): void {
    this.engine.dispose();
  }
}
