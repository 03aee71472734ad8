/**
 * The model a spec describes: an MLP from `hidden`, a list of our layers (HGQ2 argument names, snake_case or
 * camelCase) under scoped quantizer defaults, or a user module; `quantize: false` builds the same
 * architecture from plain tfjs layers (the float reference). Sizes are checked against memory before any
 * weight is allocated, and each layer's complaint is reported with its place in the spec.
 */
import { withSeededMathRandom } from '../util/random.ts';
import * as tf from '@tensorflow/tfjs';
import { totalmem } from 'node:os';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import * as layers from '../layers/index.ts';
import { withQuantizerConfig, type QuantizerScope } from '../quantizer/config.ts';
import { SpecError, type LayerSpec, type TrainSpec } from './spec.ts';

/** What a model module's default export (or `buildModel`) receives. */
export interface ModelContext {
  inputShape: number[];
  /** classes (classification) or targets (regression) */
  outputs: number;
  task: TrainSpec['data']['task'];
  /** false: build the float reference (plain tfjs layers) */
  quantize: boolean;
  tf: typeof tf;
  layers: typeof layers;
}

const LAYER_CLASSES: Record<string, new (args: never) => tf.layers.Layer> = {
  QDense: layers.QDense,
  QBatchNormDense: layers.QBatchNormDense,
  QConv1D: layers.QConv1D,
  QConv2D: layers.QConv2D,
  QBatchNormalization: layers.QBatchNormalization,
  QMaxPooling1D: layers.QMaxPooling1D,
  QMaxPooling2D: layers.QMaxPooling2D,
  QAveragePooling1D: layers.QAveragePooling1D,
  QAveragePooling2D: layers.QAveragePooling2D,
  QGlobalMaxPooling1D: layers.QGlobalMaxPooling1D,
  QGlobalMaxPooling2D: layers.QGlobalMaxPooling2D,
  QGlobalAveragePooling1D: layers.QGlobalAveragePooling1D,
  QGlobalAveragePooling2D: layers.QGlobalAveragePooling2D,
  QFlatten: layers.QFlatten,
  QReshape: layers.QReshape,
  QUnaryFunctionLUT: layers.QUnaryFunctionLUT,
  QSoftmax: layers.QSoftmax,
  QDenseT: layers.QDenseT,
  QConvT1D: layers.QConvT1D,
  QConvT2D: layers.QConvT2D,
  QEinsumDenseT: layers.QEinsumDenseT,
};

const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** HGQ2's snake_case argument names (and nested quantizer configs) → ours (camelCase); values unchanged. */
export function camelKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [camel(k), camelKeys(x)]));
}

/** The spec's layers: an MLP from `hidden` becomes QDense layers (ReLU) and a linear output layer. */
export function layerList(spec: TrainSpec, outputs: number): LayerSpec[] {
  if (spec.model.layers) return spec.model.layers;
  const hidden = spec.model.hidden ?? [];
  return [
    ...hidden.map((units) => ({ type: 'QDense', units, activation: spec.model.activation ?? 'relu' })),
    { type: 'QDense', units: outputs },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// memory: weights (value, bits, gradients, Adam moments for both) and activations, estimated before building

const BYTES_PER_WEIGHT = 48; // tfjs' copy (value, bits, Adam m and v) and the engine's (value, bits, gradients, m, v)
const BYTES_PER_ACTIVATION = 24;
/** the wasm engine's memory is 32-bit addressed */
const WASM_BYTES = 4 * 2 ** 30;

/** Kernel elements of a convolution's window (a number kernel_size is per axis); 1 for other layers. */
function kernelElements(type: string, args: Record<string, unknown>): number {
  const ks = args['kernelSize'];
  if (Array.isArray(ks)) return ks.reduce((a: number, b) => a * Number(b), 1);
  return typeof ks === 'number' ? ks ** (type.endsWith('2D') ? 2 : 1) : 1;
}

function weightsOf(type: string, inShape: number[], args: Record<string, unknown>): number {
  const last = inShape[inShape.length - 1] ?? 1;
  const kprod = kernelElements(type, args);
  if (type === 'QDense' || type === 'QBatchNormDense') return last * Number(args['units'] ?? 0);
  if (type === 'QConv1D' || type === 'QConv2D') return kprod * last * Number(args['filters'] ?? 0);
  const edges = tableEdges(type, last, kprod, args);
  // per edge: its MLP 1 → d (→ d)… → 1 with biases, and the input and table quantizers' bits
  const { d, hidden } = tableShape(args);
  return edges * (3 * d + 1 + (hidden - 1) * (d * d + d) + 2);
}

/** Edges (input → output, one small MLP each) of a table layer; 0 for other layers. */
function tableEdges(type: string, last: number, kprod: number, args: Record<string, unknown>): number {
  if (type === 'QDenseT') return last * Number(args['nOut'] ?? 0);
  if (type === 'QConvT1D' || type === 'QConvT2D') return kprod * last * Number(args['filters'] ?? 0);
  return 0;
}

function tableShape(args: Record<string, unknown>): { d: number; hidden: number } {
  return { d: Number(args['dHl'] ?? 8), hidden: Number(args['nHl'] ?? 1) };
}

/**
 * Per-sample values a layer keeps for its backward pass beyond its output: a table layer holds every edge's
 * hidden activations at every output position (tfjs keeps them edge-major, [edges, samples·positions, d]).
 */
function innerActivations(type: string, inShape: number[], outShape: number[], args: Record<string, unknown>): number {
  const last = inShape[inShape.length - 1] ?? 1;
  const kprod = kernelElements(type, args);
  const edges = tableEdges(type, last, kprod, args);
  if (edges === 0) return 0;
  const positions = outShape.slice(0, -1).reduce((a, b) => a * b, 1);
  const { d, hidden } = tableShape(args);
  return edges * positions * (d * hidden + 2);
}

function fmtBytes(b: number): string {
  return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GB` : `${(b / 2 ** 20).toFixed(0)} MB`;
}

/** Throws SpecError when training the layers (with these per-sample output sizes) would not fit in memory. */
function checkMemory(sizes: { where: string; weights: number; outputs: number }[], batch: number, engine: string): void {
  const weights = sizes.reduce((a, s) => a + s.weights, 0);
  const acts = sizes.reduce((a, s) => a + s.outputs, 0) * batch;
  const need = weights * BYTES_PER_WEIGHT + acts * BYTES_PER_ACTIVATION;
  const limit = Math.min(totalmem() / 2, engine === 'wasm' ? WASM_BYTES : Infinity);
  if (need <= limit) return;
  const big = sizes.reduce((a, s) => (s.weights > a.weights ? s : a));
  throw new SpecError(
    `the model is too large to train here: ${(weights / 1e6).toFixed(1)}M weights and ${(acts / 1e6).toFixed(1)}M activations per batch need about ${fmtBytes(need)}, ` +
      `more than the ${fmtBytes(limit)} allowed (${engine === 'wasm' && limit === WASM_BYTES ? 'the wasm engine addresses 4 GB' : "half of this machine's memory"}); ` +
      `the largest layer is ${big.where} (${(big.weights / 1e6).toFixed(1)}M weights): use fewer units or a smaller batch`,
  );
}

function layerArgs(l: LayerSpec, j: number): { type: string; args: Record<string, unknown>; where: string } {
  const { type, ...rest } = l;
  const where = `model.layers[${j}] (${type})`;
  if (!LAYER_CLASSES[type])
    throw new SpecError(`model.layers[${j}].type: unknown layer '${type}'; allowed: ${Object.keys(LAYER_CLASSES).join(', ')}`);
  return { type, args: camelKeys(rest) as Record<string, unknown>, where };
}

/** Error text of a layer, without the class/name prefix the layer adds (the spec path says which). */
function layerMessage(e: unknown): string {
  return ((e as Error).message ?? String(e)).replace(/^Q\w+ '[^']*': /, '');
}

function buildQuantized(spec: TrainSpec, list: LayerSpec[], inputShape: number[], outputs: number): tf.Sequential {
  const scope = spec.model.quantizer ? (camelKeys(spec.model.quantizer) as QuantizerScope) : {};
  const build = (): tf.Sequential => {
    // construct every layer and walk the shapes first: nothing is allocated until the sizes are known to fit
    const made = list.map((l, j) => {
      const { type, args, where } = layerArgs(l, j);
      try {
        return { layer: new LAYER_CLASSES[type]!({ ...args, ...(j === 0 ? { inputShape } : {}) } as never), type, args, where };
      } catch (e) {
        throw new SpecError(`${where}: ${layerMessage(e)}`);
      }
    });
    const sizes: { where: string; weights: number; outputs: number }[] = [];
    let shape: (number | null)[] = [null, ...inputShape];
    for (const m of made) {
      const inShape = shape.slice(1) as number[];
      const w = weightsOf(m.type, inShape, m.args);
      try {
        shape = m.layer.computeOutputShape(shape) as (number | null)[];
      } catch {
        break; // the layer says what is wrong when it is built below
      }
      const outShape = shape.slice(1) as number[];
      const outputs = outShape.reduce((a, b) => a * b, 1) + innerActivations(m.type, inShape, outShape, m.args);
      sizes.push({ where: m.where, weights: w, outputs });
    }
    checkMemory(sizes, spec.training.batch_size, spec.training.engine);
    const model = tf.sequential();
    for (const m of made) {
      try {
        model.add(m.layer);
      } catch (e) {
        throw new SpecError(`${m.where}: ${layerMessage(e)}`);
      }
    }
    return model;
  };
  let model: tf.Sequential;
  try {
    model = withQuantizerConfig(scope, build);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    throw new SpecError(`model.quantizer: ${(e as Error).message.replace(/^withQuantizerConfig\./, '')}`);
  }
  checkOutput(model, outputs, spec, 'model.layers');
  return model;
}

type LayerFactory = (args: never) => tf.layers.Layer;
/** Float counterparts of the pooling layers (which keep poolSize, strides and padding). */
const FLOAT_POOLING: Record<string, LayerFactory> = {
  QMaxPooling1D: tf.layers.maxPooling1d,
  QMaxPooling2D: tf.layers.maxPooling2d,
  QAveragePooling1D: tf.layers.averagePooling1d,
  QAveragePooling2D: tf.layers.averagePooling2d,
};
/** Float counterparts of the layers that have no options of their own. */
const FLOAT_WITHOUT_OPTIONS: Record<string, LayerFactory> = {
  QGlobalMaxPooling1D: tf.layers.globalMaxPooling1d,
  QGlobalMaxPooling2D: tf.layers.globalMaxPooling2d,
  QGlobalAveragePooling1D: tf.layers.globalAveragePooling1d,
  QGlobalAveragePooling2D: tf.layers.globalAveragePooling2d,
  QFlatten: tf.layers.flatten,
  QSoftmax: tf.layers.softmax,
};

/** The float reference: the same architecture from plain tfjs layers (quantizer arguments dropped). */
function buildFloat(spec: TrainSpec, list: LayerSpec[], inputShape: number[], outputs: number): tf.Sequential {
  const model = tf.sequential();
  const sizes: { where: string; weights: number; outputs: number }[] = [];
  const made: { layer: tf.layers.Layer; where: string }[] = [];
  let shape: (number | null)[] = [null, ...inputShape];
  list.forEach((l, j) => {
    const { type, args, where } = layerArgs(l, j);
    const first = j === 0 ? { inputShape } : {};
    const pick = (...keys: string[]) => Object.fromEntries(keys.filter((k) => args[k] !== undefined).map((k) => [k, args[k]]));
    let layer: tf.layers.Layer;
    try {
      switch (type) {
        case 'QDense':
        case 'QBatchNormDense':
          layer = tf.layers.dense({
            ...first,
            units: args['units'] as number,
            activation: (args['activation'] as 'relu' | 'linear' | undefined) ?? 'linear',
            ...pick('useBias', 'kernelInitializer', 'biasInitializer'),
          });
          break;
        case 'QConv1D':
        case 'QConv2D': {
          const mk = type === 'QConv1D' ? tf.layers.conv1d : tf.layers.conv2d;
          layer = mk({
            ...first,
            filters: args['filters'] as number,
            kernelSize: args['kernelSize'] as number,
            activation: (args['activation'] as 'relu' | undefined) ?? 'linear',
            ...pick('strides', 'padding', 'useBias'),
          });
          break;
        }
        case 'QBatchNormalization':
          layer = tf.layers.batchNormalization({ ...first, ...pick('momentum', 'epsilon', 'center', 'scale') });
          break;
        case 'QReshape':
          layer = tf.layers.reshape({ ...first, targetShape: args['targetShape'] as number[] });
          break;
        default: {
          const windowed = FLOAT_POOLING[type];
          const plain = FLOAT_WITHOUT_OPTIONS[type];
          if (windowed) layer = windowed({ ...first, ...pick('poolSize', 'strides', 'padding') } as never);
          else if (plain) layer = plain(first as never);
          else throw new SpecError(`${where}: training.quantize: false has no float counterpart for ${type}`);
        }
      }
    } catch (e) {
      if (e instanceof SpecError) throw e;
      throw new SpecError(`${where}: ${(e as Error).message}`);
    }
    const w = weightsOf(type, shape.slice(1) as number[], args);
    try {
      shape = layer.computeOutputShape(shape) as (number | null)[];
      sizes.push({ where, weights: w, outputs: (shape.slice(1) as number[]).reduce((a, b) => a * b, 1) });
    } catch {
      /* reported when built */
    }
    made.push({ layer, where });
  });
  checkMemory(sizes, spec.training.batch_size, 'tfjs');
  for (const m of made) {
    try {
      model.add(m.layer);
    } catch (e) {
      throw new SpecError(`${m.where}: ${(e as Error).message}`);
    }
  }
  checkOutput(model, outputs, spec, 'model.layers');
  return model;
}

function checkOutput(model: tf.LayersModel, outputs: number, spec: TrainSpec, where: string): void {
  const out = model.outputs[0]!.shape;
  if (out.length !== 2 || out[1] !== outputs)
    throw new SpecError(
      `${where}: the model's output has shape [${out.slice(1)}] per sample, but the data needs ${outputs} ${spec.data.task === 'classification' ? 'class scores (logits; one per class)' : 'targets'}: make the last layer ${outputs} wide${out.length > 2 ? ' and flatten before it' : ''}`,
    );
}

/** Builds the model of `spec` for data of `inputShape` with `outputs` classes or targets. */
export async function buildModel(spec: TrainSpec, inputShape: number[], outputs: number): Promise<tf.LayersModel> {
  // initial weights follow training.seed: the same spec and seed give the same run (sweeps compare fronts across machines)
  return withSeededMathRandom(spec.training.seed, () => {
    if (spec.model.module) return buildFromModule(spec, inputShape, outputs);
    const list = layerList(spec, outputs);
    return spec.training.quantize ? buildQuantized(spec, list, inputShape, outputs) : buildFloat(spec, list, inputShape, outputs);
  });
}

async function buildFromModule(spec: TrainSpec, inputShape: number[], outputs: number): Promise<tf.LayersModel> {
  const path = spec.model.module!;
  if (!existsSync(path)) throw new SpecError(`model.module: ${path}: no such file`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new SpecError(`model.module: ${path} cannot be imported (${(e as Error).message.split('\n')[0]})`);
  }
  const fn = (mod['default'] ?? mod['buildModel']) as
    | ((ctx: ModelContext) => tf.LayersModel | Promise<tf.LayersModel>)
    | undefined;
  if (typeof fn !== 'function')
    throw new SpecError(
      `model.module: ${path} must export a function (default export or buildModel) that returns a tfjs LayersModel`,
    );
  const ctx: ModelContext = { inputShape, outputs, task: spec.data.task, quantize: spec.training.quantize, tf, layers };
  let model: tf.LayersModel;
  try {
    model = spec.model.quantizer
      ? withQuantizerConfig(camelKeys(spec.model.quantizer) as QuantizerScope, () => fn(ctx) as tf.LayersModel)
      : await fn(ctx);
  } catch (e) {
    throw new SpecError(`model.module: ${path}: building the model failed: ${(e as Error).message}`);
  }
  if (!(model instanceof tf.LayersModel))
    throw new SpecError(
      `model.module: ${path}: the function must return a tfjs LayersModel (tf.sequential() or tf.model()), got ${typeof model}`,
    );
  const inShape = model.inputs[0]!.shape.slice(1).join(',');
  if (model.inputs.length !== 1 || inShape !== inputShape.join(','))
    throw new SpecError(
      `model.module: ${path}: the model takes input [${inShape}] but the samples are [${inputShape}] (use ctx.inputShape)`,
    );
  checkOutput(model, outputs, spec, 'model.module');
  return model;
}
