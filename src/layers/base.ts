/**
 * Base class of every HGQ layer (tfjs-layers custom layer): input quantizer(s) on by default, optional output
 * quantizer, a per-layer β, and the differentiable EBOPs that — times β, plus the quantizers' L1 bit
 * pressure — is added to the loss through `addLoss`, so plain `model.fit` optimizes it (docs/quantizers.md §6).
 *
 * Subclasses implement `buildLayer`, `forward`, `computeOutputShape`, `ebopsTensor` and `exportLayer`.
 * Quantizers own no variables: they create theirs through this layer's `addWeight`, so the model saves,
 * loads and trains them like any other weight.
 */
import * as tf from '@tensorflow/tfjs';
import {
  fusedRegTail,
  fusedSmallApplies,
  l1LossOf,
  Quantizer,
  type QuantizerMode,
  type QuantizerOptions,
  type QParamName,
} from '../quantizer/index.ts';
import { OVERFLOW_MODES, ROUND_MODES, type Kif, type OverflowMode, type RoundMode } from '../fixed/types.ts';
import type { HgqLayerContract } from './model.ts';

export type Shape = (number | null)[];
export type Kwargs = Record<string, unknown>;

/** Serialized quantizer config as stored in a layer config (Quantizer.getConfig()), or null = disabled. */
export type QConf = (QuantizerOptions & { name?: string }) | null;

export interface QLayerArgs {
  name?: string;
  trainable?: boolean;
  inputShape?: Shape;
  batchInputShape?: Shape;
  batchSize?: number;
  dtype?: string;
  /** Initial β (the EBOPs weight in the loss). Default 0: set it with a schedule or `setModelBeta`. */
  beta0?: number;
  /** Add β·EBOPs to the loss (default true when the input quantizer is on). */
  enableEbops?: boolean;
  /** Quantize the input(s) (default true). */
  enableIq?: boolean;
  /** Quantize the output (default false). */
  enableOq?: boolean;
  /** Input quantizer options (per input for merge layers: one object or an array). */
  iqConf?: QConf | QConf[];
  oqConf?: QConf;
  /** Multiplies this layer's EBOPs (e.g. 0 to leave a layer out of the resource estimate). */
  ebopsFactor?: number;
}

/** Per-element exact types of one quantizer broadcast to a per-sample shape (batch axis dropped). */
export interface QuantizerExport {
  /** per-sample shape (no batch axis) the arrays below cover, row-major */
  shape: number[];
  k: Uint8Array;
  i: Int32Array;
  f: Int32Array;
  round: RoundMode;
  overflow: OverflowMode;
}

/** A constant tensor with its exact (dyadic) values, as float64. */
export interface ConstExport {
  shape: number[];
  values: Float64Array;
  /** the exact type of each element (same order), from the weight's quantizer */
  quant: QuantizerExport;
}

/** What the tracer reads from a layer: see src/layers/README.md. */
export interface LayerExport {
  className: string;
  name: string;
  /** per-sample input shapes (batch axis dropped), one per input */
  inputShapes: number[][];
  outputShape: number[];
  /** input quantizers, one per input (null where disabled: the input passes through unchanged) */
  inputQuantizers: (QuantizerExport | null)[];
  outputQuantizer: QuantizerExport | null;
  /** layer-specific fields (kernel, bias, activation, geometry, table, …) */
  [extra: string]: unknown;
}

/** True while `calibrate()` runs data through the model: quantizers widen WRAP ranges instead of only quantizing. */
let calibrating = false;
export function setCalibrating(on: boolean): void {
  calibrating = on;
}
export function isCalibrating(): boolean {
  return calibrating;
}

/** Check NaN/Inf on every HGQ layer input (one reduction per layer and step). */
let checkFinite = true;
export function setFiniteCheck(on: boolean): void {
  checkFinite = on;
}

export function perSample(shape: Shape): number[] {
  return shape.slice(1).map((d) => {
    if (d === null) throw new Error(`per-sample shape [${shape.join(',')}] has an unknown dimension`);
    return d;
  });
}

/** Moving batch-norm statistics: moving ← m·moving + (1 − m)·batch (Keras' update), for mean and variance. */
export function updateMovingStatistics(
  movingMean: tf.LayerVariable,
  movingVariance: tf.LayerVariable,
  mean: tf.Tensor,
  variance: tf.Tensor,
  momentum: number,
): void {
  tf.tidy(() => {
    movingMean.write(tf.add(tf.mul(movingMean.read(), momentum), tf.mul(mean, 1 - momentum)));
    movingVariance.write(tf.add(tf.mul(movingVariance.read(), momentum), tf.mul(variance, 1 - momentum)));
  });
}

/** Removes undefined entries so configs serialize cleanly. */
export function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export abstract class QLayer extends tf.layers.Layer implements HgqLayerContract {
  readonly beta0: number;
  readonly enableIq: boolean;
  readonly enableOq: boolean;
  readonly enableEbops: boolean;
  readonly ebopsFactor: number;
  protected readonly iqConfs: QConf[] | QConf;
  protected readonly oqConf: QConf;
  /** Input quantizers (one per input; null where disabled). Built in `build`. */
  iqs: (Quantizer | null)[] = [];
  oq: Quantizer | null = null;
  /** Weight quantizers (kernel, bias, …) in creation order, for L1 and reset. */
  protected wqs: Quantizer[] = [];
  private betaVar: tf.LayerVariable | null = null;
  protected builtInputShapes: Shape[] = [];

  constructor(args: QLayerArgs = {}) {
    super(args as ConstructorParameters<typeof tf.layers.Layer>[0]);
    const known = new Set([
      'name',
      'trainable',
      'inputShape',
      'batchInputShape',
      'batchSize',
      'dtype',
      'beta0',
      'enableEbops',
      'enableIq',
      'enableOq',
      'iqConf',
      'oqConf',
      'ebopsFactor',
      ...this.ownArgNames(),
    ]);
    for (const k of Object.keys(args)) {
      if (k === 'customObjects') continue; // added by tfjs' deserializer
      if (!known.has(k))
        throw new Error(`${this.getClassName()} '${this.name}': unknown option '${k}'; valid options: ${[...known].join(', ')}`);
    }
    this.beta0 = args.beta0 ?? 0;
    if (!Number.isFinite(this.beta0) || this.beta0 < 0) this.fail(`beta0 must be finite and ≥ 0, got ${args.beta0}`);
    this.enableIq = args.enableIq ?? true;
    this.enableOq = args.enableOq ?? false;
    this.enableEbops = args.enableEbops ?? this.enableIq;
    this.ebopsFactor = args.ebopsFactor ?? 1;
    this.iqConfs = args.iqConf ?? null;
    this.oqConf = args.oqConf ?? null;
    this.supportsMasking = false;
  }

  /** Option names a subclass accepts on top of the common ones. */
  protected abstract ownArgNames(): string[];
  /** Create the layer's own weights and weight quantizers (input quantizers already exist). */
  protected abstract buildLayer(inputShapes: Shape[]): void;
  /** The layer's computation on (already quantized) inputs. */
  protected abstract forward(inputs: tf.Tensor[], mode: QuantizerMode): tf.Tensor;
  /** EBOPs from the quantizers' bit maps (batch axis removed), differentiable; before `ebopsFactor`. */
  abstract ebopsTensor(): tf.Scalar;
  /** Layer-specific export fields. */
  protected abstract exportLayer(): Record<string, unknown>;

  protected fail(msg: string): never {
    throw new Error(`${this.getClassName()} '${this.name}': ${msg}`);
  }

  /**
   * Shape (with batch axis) input j has when its quantizer sees it: the input's own by default; table
   * layers quantize the input broadcast to one value per edge.
   */
  protected iqShape(s: Shape, _j: number): Shape {
    return s;
  }
  /** Maps input j before its quantizer (and before `forward` when the quantizer is off); identity by default. */
  protected beforeIq(x: tf.Tensor, _j: number): tf.Tensor {
    return x;
  }

  /** Number of inputs this layer takes (1, or ≥ 2 for merges). */
  protected multiInput(): boolean {
    return false;
  }

  /** Creates a quantizer whose variables are weights of this layer named `<prefix>_<param>`. */
  protected makeQuantizer(prefix: string, options: QConf | undefined, place: QuantizerOptions['place'], shape: Shape): Quantizer {
    const { name: _n, ...opts } = normalizeQConf(options ?? {}) as QuantizerOptions & { name?: string };
    void _n;
    let q: Quantizer;
    try {
      q = new Quantizer({ place, ...opts, name: `${this.name}/${prefix}` });
    } catch (e) {
      this.fail(`${prefix}: ${(e as Error).message}`);
    }
    q.build(shape, (n: QParamName, s: number[], init: number, trainable: boolean) =>
      this.addWeight(`${prefix}_${n}`, s, 'float32', tf.initializers.constant({ value: init }), undefined, trainable),
    );
    return q;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shapes = (this.multiInput() ? inputShape : [inputShape]) as Shape[];
    if (this.multiInput() && (!Array.isArray(shapes[0]) || shapes.length < 2)) this.fail('expects a list of at least two inputs');
    this.builtInputShapes = shapes.map((s) => [...s]);
    const confs = Array.isArray(this.iqConfs) ? this.iqConfs : shapes.map(() => this.iqConfs as QConf);
    if (confs.length !== shapes.length) this.fail(`got ${confs.length} iqConf entries for ${shapes.length} inputs`);
    this.iqs = shapes.map((s, j) =>
      this.enableIq ? this.makeQuantizer(shapes.length > 1 ? `iq${j}` : 'iq', confs[j], 'datalane', this.iqShape(s, j)) : null,
    );
    this.buildLayer(shapes);
    if (this.enableOq) {
      const out = this.computeOutputShape(this.multiInput() ? shapes : shapes[0]!) as Shape;
      this.oq = this.makeQuantizer('oq', this.oqConf, 'datalane', out);
    }
    this.betaVar = this.addWeight('beta', [], 'float32', tf.initializers.constant({ value: this.beta0 }), undefined, false);
    this.addLoss(() => this.regularization());
    this.built = true;
  }

  /** β·EBOPs·factor + Σ L1 pressure of the quantizers: the term added to the loss. */
  regularization(): tf.Scalar {
    // few ops: every op here is recorded on the gradient tape each step (with copies of its saved inputs)
    return tf.tidy(() => {
      if (this.enableEbops && this.ebopsFactor !== 0 && fusedSmallApplies()) {
        // cpu/wasm: β·factor·EBOPs + L1 as one kernel (one for the gradient)
        const qs = this.allQuantizers().filter((q) => q.config.trainable && q.config.l1 > 0);
        const raws = qs.flatMap((q) => q.l1Params());
        const l1s = qs.flatMap((q) => q.l1Params().map(() => q.config.l1));
        return fusedRegTail(this.ebopsTensor(), this.betaVar!.read(), this.ebopsFactor, raws, l1s);
      }
      const terms: tf.Tensor[] = [];
      if (this.enableEbops && this.ebopsFactor !== 0) {
        const e = this.ebopsTensor();
        terms.push(tf.mul(this.ebopsFactor === 1 ? e : tf.mul(e, this.ebopsFactor), this.betaVar!.read()));
      }
      const l1 = l1LossOf(this.allQuantizers().filter((q) => q.config.trainable));
      if (l1) terms.push(l1);
      return (terms.length === 2 ? tf.add(terms[0]!, terms[1]!) : (terms[0] ?? tf.scalar(0))) as tf.Scalar;
    });
  }

  /** Bits of `q` on `shape` (batch axis 1); skips the broadcast when the parameters already have that shape. */
  protected bitsAt(q: Quantizer, shape: number[]): tf.Tensor {
    const ps = q.paramShape;
    return ps.length === shape.length && ps.every((d, a) => d === shape[a]) ? q.bits() : q.bitsFor(shape);
  }

  allQuantizers(): Quantizer[] {
    return [...this.iqs.filter((q): q is Quantizer => q !== null), ...this.wqs, ...(this.oq ? [this.oq] : [])];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const xs = Array.isArray(inputs) ? inputs : [inputs];
      if (xs.length !== this.iqs.length) {
        this.fail(`expected ${this.multiInput() ? `${this.iqs.length} inputs` : 'one input'}, got ${xs.length}`);
      }
      const mode: QuantizerMode = kwargs?.['training'] === true ? true : calibrating ? 'calibrate' : false;
      if (checkFinite) {
        for (const x of xs) {
          if (!tf.all(tf.isFinite(x)).dataSync()[0])
            this.fail(`input contains NaN or Inf (shape [${x.shape.join(',')}]); clean the data before training or inference`);
        }
      }
      const qx = xs.map((x, j) => {
        const q = this.iqs[j];
        if (!q) return this.beforeIq(x, j);
        this.checkShape(x, this.builtInputShapes[j]!);
        return q.call(this.beforeIq(x, j), mode);
      });
      let y = this.forward(qx, mode);
      if (this.oq) y = this.oq.call(y, mode);
      return y;
    });
  }

  private checkShape(x: tf.Tensor, want: Shape): void {
    if (x.rank !== want.length || want.some((d, a) => a > 0 && d !== null && d !== x.shape[a])) {
      this.fail(`input shape [${x.shape.join(',')}] does not match the built shape [${want.map((d) => d ?? 'batch').join(',')}]`);
    }
  }

  // ---- HgqLayerContract (train/) ----
  hgqEbops(): number {
    if (!this.built || !this.enableEbops) return 0;
    const t = tf.tidy(() => tf.mul(this.ebopsTensor(), this.ebopsFactor));
    const v = t.dataSync()[0]!;
    t.dispose();
    return v;
  }
  getBeta(): number {
    return this.betaVar ? this.betaVar.read().dataSync()[0]! : this.beta0;
  }
  setBeta(beta: number): void {
    if (!this.betaVar) return;
    const t = tf.scalar(beta);
    this.betaVar.write(t);
    t.dispose();
  }

  /** Forget calibrated WRAP ranges of every quantizer of this layer. */
  resetCalibration(): void {
    for (const q of this.allQuantizers()) q.reset();
  }

  // ---- export for the tracer ----
  protected exportQuantizer(q: Quantizer | null, shape: number[]): QuantizerExport | null {
    if (!q) return null;
    // Quantizer parameters keep the input rank with a leading batch axis: broadcast to [1, ...shape].
    return quantizerExport(q, q.kifsFor([1, ...shape]), shape);
  }

  /** Export for weight quantizers, whose parameter shape is the weight's own shape (no batch axis). */
  protected exportWeight(q: Quantizer, w: tf.Tensor): ConstExport {
    const values = tf.tidy(() => q.call(w, false)).dataSync();
    return { shape: [...w.shape], values: Float64Array.from(values), quant: quantizerExport(q, q.kifsFor(w.shape), w.shape) };
  }

  /**
   * Everything the tracer needs, exact: per-element input/output types, quantized constants, geometry.
   * Call after `calibrate()` so WRAP ranges cover the data.
   */
  exportQuantized(): LayerExport {
    if (!this.built) this.fail('not built; call the model on data (or build it) before exporting');
    const ins = this.builtInputShapes.map(perSample);
    const outShape = perSample(
      this.computeOutputShape(this.multiInput() ? this.builtInputShapes : this.builtInputShapes[0]!) as Shape,
    );
    return {
      className: this.getClassName(),
      name: this.name,
      inputShapes: ins,
      outputShape: outShape,
      inputQuantizers: this.iqs.map((q, j) => this.exportQuantizer(q, perSample(this.iqShape(this.builtInputShapes[j]!, j)))),
      outputQuantizer: this.exportQuantizer(this.oq, outShape),
      ...this.exportLayer(),
    };
  }

  /** The named fields of this layer as config entries (arrays copied). */
  protected configOf(...names: (keyof this & string)[]): tf.serialization.ConfigDict {
    const out: tf.serialization.ConfigDict = {};
    for (const n of names) {
      const v = this[n] as tf.serialization.ConfigDictValue;
      out[n] = Array.isArray(v) ? [...v] : v;
    }
    return out;
  }

  override getConfig(): tf.serialization.ConfigDict {
    const base = super.getConfig();
    const iq = this.iqs.length ? this.iqs.map((q) => (q ? q.getConfig() : null)) : this.iqConfs;
    return {
      ...base,
      beta0: this.beta0,
      enableEbops: this.enableEbops,
      enableIq: this.enableIq,
      enableOq: this.enableOq,
      iqConf: (this.multiInput() ? iq : Array.isArray(iq) ? (iq[0] ?? null) : iq) as unknown as tf.serialization.ConfigDictValue,
      oqConf: (this.oq ? this.oq.getConfig() : this.oqConf) as unknown as tf.serialization.ConfigDictValue,
      ebopsFactor: this.ebopsFactor,
    };
  }
}

/**
 * tfjs' serializer snake-cases every string value ('SAT_SYM' → 'sat_sym', read back as 'satSym'): map mode
 * names back to their canonical spelling, ignoring case and underscores.
 */
export function normalizeQConf(c: QuantizerOptions & { name?: string }): QuantizerOptions & { name?: string } {
  const canon = <T extends string>(v: unknown, all: readonly T[]): T | unknown => {
    if (typeof v !== 'string') return v;
    const key = v.replace(/_/g, '').toUpperCase();
    return all.find((m) => m.replace(/_/g, '') === key) ?? v;
  };
  const out = { ...c };
  if (out.roundMode !== undefined) out.roundMode = canon(out.roundMode, ROUND_MODES) as RoundMode;
  if (out.overflowMode !== undefined) out.overflowMode = canon(out.overflowMode, OVERFLOW_MODES) as OverflowMode;
  return out;
}

/** Stripped quantizer config for serialization of weight quantizers (the name is re-derived on load). */
export function qconf(q: Quantizer | null, fallback: QConf): tf.serialization.ConfigDictValue {
  if (!q) return fallback as unknown as tf.serialization.ConfigDictValue;
  const { name: _n, ...c } = q.getConfig();
  void _n;
  return c as unknown as tf.serialization.ConfigDictValue;
}

/** A quantizer's export: its per-element k, i, f (`kifs`, one per element of `shape`) and its modes. */
function quantizerExport(q: Quantizer, kifs: Kif[], shape: readonly number[]): QuantizerExport {
  const n = kifs.length;
  const out: QuantizerExport = {
    shape: [...shape],
    k: new Uint8Array(n),
    i: new Int32Array(n),
    f: new Int32Array(n),
    round: q.config.roundMode,
    overflow: q.config.overflowMode,
  };
  for (let j = 0; j < n; j++) {
    out.k[j] = kifs[j]!.k;
    out.i[j] = kifs[j]!.i;
    out.f[j] = kifs[j]!.f;
  }
  return out;
}

/** The constructor arguments of a layer base class after its layer args. */
type FixedArgs<B> = B extends abstract new (args: never, ...fixed: infer F) => QLayer ? F : never;

/**
 * A concrete layer class under its HGQ2 name: `Base` with its constructor arguments after the layer args
 * fixed (which operation, which rank), registered for deserialization.
 */
export function layerClass<B extends abstract new (args: never, ...fixed: never[]) => QLayer>(
  Base: B,
  className: string,
  ...fixed: FixedArgs<B>
): { new (args?: ConstructorParameters<B>[0]): InstanceType<B>; className: string } {
  // TS will not extend an abstract constructor given as a value; Base implements QLayer's abstract members
  const Open = Base as unknown as new (args: unknown, ...fixed: unknown[]) => object;
  const Layer = class extends Open {
    static className = className;
    constructor(args: unknown = {}) {
      super(args, ...fixed);
    }
  };
  tf.serialization.registerClass(Layer as never);
  return Layer as never;
}
