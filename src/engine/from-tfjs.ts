/**
 * Bridge between a tfjs-layers HGQ model (the public API and reference) and the wasm engine: describe the model
 * for the engine (weights, bit parameters, quantizer configs, β, Adam hyper-parameters and state), and copy the
 * state back so callbacks, β schedules, checkpoints, calibration and save/load keep working on the tfjs model.
 */
import * as tf from '@tensorflow/tfjs';
import { QBatchNormDense, QDense } from '../layers/dense.ts';
import type { Quantizer } from '../quantizer/index.ts';
import { createEngine, type DenseDesc, type Engine, type EngineOptions, type KbiDesc, type KifDesc, type ModelDesc } from './engine.ts';

export type EngineLoss = ModelDesc['loss'];

interface Binding {
  /** engine parameter name → the tfjs variable holding it */
  vars: Map<string, tf.LayerVariable>;
  layers: QDense[];
}

/** Why the engine cannot train this model (naming the first unsupported layer), or null when it can. */
export function engineUnsupported(model: tf.LayersModel): string | null {
  try {
    chainOf(model);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Layers that only reshape: free on the engine's row-major (batch, features) rows. */
const PASS_THROUGH = new Set(['Flatten', 'Reshape', 'QFlatten', 'QReshape']);

function chainOf(model: tf.LayersModel): QDense[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('the engine trains single-input, single-output models');
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (layers.length === 0) throw new Error('the model has no layers');
  const out = model.outputs[0]!.shape;
  if (out.length !== 2) throw new Error(`the model's output has rank ${out.length}; the wasm engine trains (batch, outputs) models`);
  let prev: tf.layers.Layer | null = null;
  const dense: QDense[] = [];
  for (const l of layers) {
    const what = `layer '${l.name}' (${l.getClassName()})`;
    const inbound = (l.inboundNodes[0]?.inboundLayers ?? []) as tf.layers.Layer[];
    if (inbound.length !== 1 || (prev !== null && inbound[0] !== prev) || (prev === null && inbound[0]!.getClassName() !== 'InputLayer' && inbound[0] !== l)) {
      throw new Error(`${what} is not part of a simple chain of layers`);
    }
    prev = l;
    if (PASS_THROUGH.has(l.getClassName())) {
      const q = l as unknown as { iqs?: (Quantizer | null)[]; oq?: Quantizer | null };
      if (q.iqs?.some((x) => x) || q.oq) throw new Error(`${what} quantizes; the wasm engine supports reshapes without quantizers`);
      continue;
    }
    if (!(l instanceof QDense) || l instanceof QBatchNormDense) throw new Error(`${what} is not supported by the wasm engine yet (supported: QDense, Flatten, Reshape)`);
    if (!l.trainable) throw new Error(`${what} is frozen (trainable = false); the wasm engine trains every layer`);
    if (l.oq) throw new Error(`${what} has an output quantizer; not supported by the wasm engine yet`);
    const inShape = (l as unknown as { builtInputShapes: (number | null)[][] }).builtInputShapes[0];
    if (!inShape || inShape.length !== 2) throw new Error(`${what} takes inputs of rank ${inShape?.length}; the wasm engine supports (batch, features) (add a Flatten before it)`);
    if (l.iqs[0]) checkQuantizer(l.iqs[0], 'kif', [0], `${what} input quantizer`);
    else if (l.enableEbops && l.getBeta() > 0) throw new Error(`${what} counts EBOPs without an input quantizer; the wasm engine needs the input quantizer for EBOPs`);
    checkQuantizer(l.kq, 'kbi', [], `${what} kernel quantizer`);
    if (l.bq) checkQuantizer(l.bq, 'kbi', [], `${what} bias quantizer`);
    dense.push(l);
  }
  if (dense.length === 0) throw new Error('the model has no QDense layer to train');
  if (!(layers[layers.length - 1] instanceof QDense)) throw new Error(`the last layer '${layers[layers.length - 1]!.name}' must be a QDense for the wasm engine`);
  return dense;
}

function checkQuantizer(q: Quantizer, type: 'kif' | 'kbi', axes: number[], what: string): void {
  const c = q.config;
  if (c.qType !== type) throw new Error(`${what} is ${c.qType.toUpperCase()}; the wasm engine supports ${type.toUpperCase()} here`);
  if (c.roundMode !== 'RND') throw new Error(`${what} rounds with ${c.roundMode}; the wasm engine supports RND`);
  if (type === 'kbi' && c.overflowMode === 'WRAP') throw new Error(`${what} uses WRAP; the wasm engine supports SAT and SAT_SYM for weights`);
  const ax = q.homogeneousAxes;
  if (ax.length !== axes.length || ax.some((a, j) => a !== axes[j])) {
    throw new Error(`${what} has granularity with shared axes [${ax}]; the wasm engine supports [${axes}] (${type === 'kif' ? 'per activation' : 'per element'})`);
  }
}

const data = (t: tf.Tensor): Float32Array => Float32Array.from(t.dataSync() as Float32Array);
function qvar(q: Quantizer, n: string): tf.LayerVariable {
  const w = q.weights.find((x) => x.name === n);
  if (!w) throw new Error(`quantizer ${q.name} has no parameter ${n}`);
  return w.variable as unknown as tf.LayerVariable;
}

/** Reads the model into an engine description (and the variable binding used to sync back). */
export function describeModel(model: tf.LayersModel, loss: EngineLoss): { desc: ModelDesc; binding: Binding } {
  const layers = chainOf(model);
  const opt = model.optimizer as unknown as { getClassName?: () => string; learningRate: number; beta1: number; beta2: number; epsilon: number };
  if (!opt || opt.getClassName?.() !== 'Adam') throw new Error('the wasm engine needs the model compiled with tf.train.adam');
  const vars = new Map<string, tf.LayerVariable>();
  const descs: DenseDesc[] = layers.map((l, li) => {
    const pre = `layers[${li}]`;
    const K = l.kernel.shape[0]!, N = l.units;
    vars.set(`${pre}.kernel`, l.kernel);
    if (l.bias) vars.set(`${pre}.bias`, l.bias);
    const kbi = (q: Quantizer, name: string): KbiDesc => {
      vars.set(`${name}.b`, qvar(q, 'b'));
      vars.set(`${name}.i`, qvar(q, 'i'));
      const c = q.config;
      return { overflow: c.overflowMode as KbiDesc['overflow'], k: data(qvar(q, 'k').read()), b: data(qvar(q, 'b').read()), i: data(qvar(q, 'i').read()),
        bBounds: c.bBounds, iBounds: c.iBounds, l1: c.trainable ? c.l1 : 0 };
    };
    let iq: KifDesc | null = null;
    const q = l.iqs[0];
    if (q) {
      vars.set(`${pre}.iq.i`, qvar(q, 'i'));
      vars.set(`${pre}.iq.f`, qvar(q, 'f'));
      const c = q.config;
      const decay = c.overflowMode === 'WRAP' ? qvar(q, 'i_decay_speed').read().dataSync()[0]! : 0;
      iq = { overflow: c.overflowMode, k: data(qvar(q, 'k').read()), i: data(qvar(q, 'i').read()), f: data(qvar(q, 'f').read()),
        iBounds: c.iBounds, fBounds: c.fBounds, l1: c.trainable ? c.l1 : 0, decay };
    }
    return {
      type: 'dense', inputs: K, units: N, activation: l.activation,
      kernel: data(l.kernel.read()), bias: l.bias ? data(l.bias.read()) : null,
      iq, kq: kbi(l.kq, `${pre}.kq`), bq: l.bq ? kbi(l.bq, `${pre}.bq`) : null,
      beta: l.enableEbops ? l.getBeta() * l.ebopsFactor : 0,
    };
  });
  const desc: ModelDesc = { layers: descs, loss, optimizer: { learningRate: opt.learningRate, beta1: opt.beta1, beta2: opt.beta2, epsilon: opt.epsilon } };
  return { desc, binding: { vars, layers } };
}

interface AdamInternals {
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  iterations_: number;
}

/** The model's trainable variables in the order the optimizer indexes its moments (tfjs-layers' collected order). */
function trainableOrder(model: tf.LayersModel): tf.LayerVariable[] {
  const m = model as unknown as { collectedTrainableWeights?: tf.LayerVariable[] };
  return m.collectedTrainableWeights ?? model.trainableWeights;
}

/** An engine bound to a tfjs model: `pull` copies model → engine, `push` engine → model (weights and Adam state). */
export class EngineBinding {
  private constructor(readonly engine: Engine, readonly model: tf.LayersModel, private readonly binding: Binding) {}

  static async create(model: tf.LayersModel, loss: EngineLoss, opts: EngineOptions = {}): Promise<EngineBinding> {
    const { desc, binding } = describeModel(model, loss);
    const engine = await createEngine(desc, opts);
    const b = new EngineBinding(engine, model, binding);
    b.pullOptimizer();
    return b;
  }

  /** Copies weights, bit parameters, β and the Adam state from the tfjs model into the engine. */
  pull(): void {
    const values: Record<string, Float32Array> = {};
    for (const [name, v] of this.binding.vars) values[name] = data(v.read());
    this.engine.writeState({ values });
    this.binding.layers.forEach((l, li) => this.engine.setBeta(li, l.enableEbops ? l.getBeta() * l.ebopsFactor : 0));
    this.pullOptimizer();
  }

  private pullOptimizer(): void {
    const opt = this.model.optimizer as unknown as AdamInternals;
    const order = trainableOrder(this.model);
    const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
    for (const [name, lv] of this.binding.vars) {
      const j = order.indexOf(lv);
      if (j < 0) continue; // not trainable (WRAP integer bits)
      const fm = opt.accumulatedFirstMoment[j], sm = opt.accumulatedSecondMoment[j];
      const n = (lv.shape as number[]).reduce((a, d) => a * d, 1);
      m[name] = fm ? data(fm.variable as tf.Tensor) : new Float32Array(n);
      v[name] = sm ? data(sm.variable as tf.Tensor) : new Float32Array(n);
    }
    this.engine.writeState({ adam: { m, v, iterations: opt.iterations_ ?? 0, accBeta1: opt.accBeta1.dataSync()[0]!, accBeta2: opt.accBeta2.dataSync()[0]! } });
  }

  /** Copies the engine's parameters and Adam state back into the tfjs model (e.g. at each epoch end). */
  push(): void {
    const st = this.engine.readState();
    const order = trainableOrder(this.model);
    const opt = this.model.optimizer as unknown as AdamInternals;
    for (const [name, lv] of this.binding.vars) {
      const shape = lv.shape as number[];
      tf.tidy(() => { lv.write(tf.tensor(st.values[name]!, shape)); });
      const j = order.indexOf(lv);
      if (j < 0 || !st.adam.m[name]) continue;
      const put = (arr: AdamInternals['accumulatedFirstMoment'], src: Float32Array, suffix: string) => {
        const t = tf.tensor(src, shape);
        if (arr[j]) { arr[j]!.variable.assign(t); t.dispose(); } else arr[j] = { originalName: `${(lv.read() as tf.Variable).name}/${suffix}`, variable: t.variable(false) };
      };
      put(opt.accumulatedFirstMoment, st.adam.m[name]!, 'm');
      put(opt.accumulatedSecondMoment, st.adam.v[name]!, 'v');
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
