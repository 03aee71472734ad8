/**
 * Trainable HGQ quantizers (docs/quantizers.md §1–5): KBI (trainable b and i; f = round(b) − round(i)) and KIF (trainable
 * i and f), with HGQ2's surrogate gradients, WRAP integer-bit tracking, calibration, and per-element to
 * per-tensor granularity. Free of tfjs-layers internals: a layer owns the variables by passing its own
 * weight factory to `build` (e.g. one wrapping `Layer.addWeight`).
 */
import * as tf from '@tensorflow/tfjs';
import type { Kif } from '../fixed/types.ts';
import { homogeneousAxesFor, resolveQuantizerConfig, type QuantizerConfig, type QuantizerOptions } from './config.ts';
import { fusedApplies, fusedQuantize, fusedRound } from './kernels.ts';
import { fusedBits, fusedL1, fusedSatTrain, fusedSmallApplies, fusedTrainApplies, fusedWrapTrainKif } from './train-kernels.ts';
import { ceilLog2, exp2, quantizeTensor, roundCodes, satBounds } from './ops.ts';

/** A variable as the quantizer needs it; tfjs-layers' LayerVariable satisfies this. */
export interface QVariable {
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

export type QParamName = 'k' | 'b' | 'i' | 'f' | 'i_decay_speed';

/** Creates one variable of the quantizer, initialized to the constant `init`. */
export type WeightFactory = (name: QParamName, shape: number[], init: number, trainable: boolean) => QVariable;

/** `true`: training (surrogate gradients, no wrapping, WRAP tracking); `false`: inference; 'calibrate': widen WRAP ranges from data. */
export type QuantizerMode = boolean | 'calibrate';

const LN2 = Math.LN2;
/** Keras' backend epsilon, used by HGQ2's KBI integer-bit estimate. */
const KERAS_EPS = 1e-7;

/** Plain tf.Variable wrapped as a QVariable (default factory). */
export function plainVariable(value: tf.Tensor, trainable: boolean, name?: string): QVariable {
  const v = tf.variable(value, trainable, name);
  return {
    read: () => v,
    write: (t: tf.Tensor) => v.assign(t),
  };
}

let quantizerCounter = 0;

export class Quantizer {
  readonly config: QuantizerConfig;
  readonly name: string;
  private vars: Partial<Record<QParamName, QVariable>> = {};
  private trainableFlags: Partial<Record<QParamName, boolean>> = {};
  private _paramShape: number[] | null = null;
  private _inputShape: (number | null)[] | null = null;
  private _axes: number[] = [];

  constructor(options: QuantizerOptions & { name?: string } = {}) {
    const { name, ...opts } = options;
    this.config = resolveQuantizerConfig(opts);
    this.name = name ?? `quantizer_${++quantizerCounter}`;
  }

  get built(): boolean {
    return this._paramShape !== null;
  }
  get isKbi(): boolean {
    return this.config.qType === 'kbi';
  }
  get isWrap(): boolean {
    return this.config.overflowMode === 'WRAP';
  }
  /** Shape of every parameter: the input shape with homogeneous axes set to 1 (rank kept). */
  get paramShape(): number[] {
    return [...this.assertBuilt()];
  }
  /** Homogeneous axes, resolved against the built input rank. */
  get homogeneousAxes(): number[] {
    this.assertBuilt();
    return [...this._axes];
  }
  get inputShape(): (number | null)[] {
    this.assertBuilt();
    return [...this._inputShape!];
  }

  /**
   * Create the variables for inputs of `inputShape` (null = unknown, only allowed on homogeneous axes).
   * Variables, in HGQ2's order: KBI k, b, i; KIF k, i, f; plus i_decay_speed under WRAP.
   */
  build(inputShape: readonly (number | null)[], factory?: WeightFactory): void {
    if (this.built) throw new Error(`quantizer ${this.name}: already built`);
    const ndim = inputShape.length;
    const axes = homogeneousAxesFor(this.config, ndim);
    const shape = inputShape.map((d, ax) => {
      if (axes.includes(ax)) return 1;
      if (d === null || d === undefined || !Number.isInteger(d) || d < 1)
        throw new Error(
          `quantizer ${this.name}: input axis ${ax} has size ${String(d)} but is heterogeneous (has its own bit widths); ` +
            `give it a known size or make it homogeneous (homogeneousAxes)`,
        );
      return d;
    });
    const make: WeightFactory =
      factory ??
      ((n, s, init, trainable) => {
        const t = tf.fill(s, init);
        const v = plainVariable(t, trainable, `${this.name}_${n}_${++quantizerCounter}`);
        t.dispose(); // the variable holds its own reference to the data
        return v;
      });
    const c = this.config;
    const add = (n: QParamName, init: number, trainable: boolean, s: number[] = shape): void => {
      const t = trainable && c.trainable;
      this.vars[n] = make(n, s, init, t);
      this.trainableFlags[n] = t;
    };
    add('k', c.k0, false);
    if (this.isKbi) {
      add('b', c.b0, true);
      add('i', c.i0, !this.isWrap);
    } else {
      add('i', c.i0, !this.isWrap);
      add('f', c.f0, true);
    }
    if (this.isWrap) add('i_decay_speed', c.iDecaySpeed, false, []);
    this._paramShape = shape;
    this._inputShape = [...inputShape];
    this._axes = axes;
  }

  /** The variables in HGQ2's order, for saving, loading and optimizer variable lists. */
  get weights(): { name: QParamName; variable: QVariable; trainable: boolean }[] {
    this.assertBuilt();
    const order: QParamName[] = this.isKbi ? ['k', 'b', 'i', 'i_decay_speed'] : ['k', 'i', 'f', 'i_decay_speed'];
    return order
      .filter((n) => this.vars[n])
      .map((n) => ({ name: n, variable: this.vars[n]!, trainable: this.trainableFlags[n]! }));
  }

  /** Quantize `x`. See QuantizerMode. The result is a new tensor the caller owns. */
  call(x: tf.Tensor, mode: QuantizerMode = false): tf.Tensor {
    this.checkInput(x);
    if (mode === 'calibrate') return this.calibrate(x);
    if (mode === true) return this.trainForward(x);
    return tf.tidy(() => {
      const { k, i, f } = this.kifTensors();
      const { roundMode, overflowMode } = this.config;
      const fused = fusedApplies(x.shape, this._paramShape!);
      if (this.roundsOnlyInInference) return fused ? fusedRound(x, f, roundMode) : roundScaled(x, f, roundMode);
      return fused ? fusedQuantize(x, k, i, f, roundMode, overflowMode) : quantizeTensor(x, k, i, f, roundMode, overflowMode);
    });
  }

  /** HGQ2: a trainable WRAP weight quantizer (is_weight) only rounds in inference; KBI only under RND. */
  get roundsOnlyInInference(): boolean {
    const c = this.config;
    return this.isWrap && c.isWeight && c.trainable && (c.qType === 'kif' || c.roundMode === 'RND');
  }

  /**
   * Calibration (HGQ2's 'tracing'): for WRAP quantizers, i ← max(i, needed) and k ← k OR any(x_q < 0) over
   * the homogeneous axes, so repeated calls take the union of the ranges seen (until `reset`). Other modes
   * are unchanged. Returns the inference output under the updated parameters.
   */
  calibrate(x: tf.Tensor): tf.Tensor {
    this.checkInput(x);
    if (this.isWrap && this.config.trainable) {
      tf.tidy(() => {
        const c = this.config;
        const k = this.read('k');
        let iNew: tf.Tensor;
        let f: tf.Tensor;
        if (this.isKbi) {
          const b = this.roundedParam('b');
          iNew = tf.maximum(this.roundedParam('i'), this.kbiNeededI(x, b));
          iNew = tf.clipByValue(iNew, c.iBounds[0], c.iBounds[1]);
          f = tf.sub(b, iNew);
        } else {
          f = this.roundedParam('f');
          const needed = tf.clipByValue(this.kifNeededI(this.roundOnly(x, f), f), c.iBounds[0], c.iBounds[1]);
          iNew = tf.maximum(this.roundedParam('i'), needed);
        }
        let neg = this.reduceAny(tf.less(this.roundOnly(x, f), 0));
        if (this.isKbi) neg = tf.logicalAnd(neg, tf.greater(this.roundedParam('b'), 0));
        this.vars.k!.write(tf.maximum(k, tf.cast(neg, 'float32')));
        this.vars.i!.write(iNew);
      });
    }
    return this.call(x, false);
  }

  /** Forget calibrated ranges: trainable WRAP quantizers get i at its lower bound and k = 0 (HGQ2's reset before tracing). */
  reset(): void {
    if (!this.isWrap || !this.config.trainable) return;
    tf.tidy(() => {
      const shape = this.paramShape;
      this.vars.i!.write(tf.fill(shape, this.config.iBounds[0]));
      this.vars.k!.write(tf.zeros(shape));
    });
  }

  /** Clamp the stored parameters to their bounds (HGQ2's MinMax constraints). Training calls this before each step. */
  constrain(): void {
    if (fusedSmallApplies()) {
      // cpu/wasm: reading a small tensor is a memory copy; skip the clip and write when nothing is out of bounds
      const c = this.config;
      const check = (n: QParamName, [lo, hi]: [number, number]): void => {
        const v = this.vars[n];
        if (!v) return;
        const d = v.read().dataSync();
        for (let j = 0; j < d.length; j++) {
          if (d[j]! < lo || d[j]! > hi) {
            tf.tidy(() => {
              v.write(tf.clipByValue(v.read(), lo, hi));
            });
            return;
          }
        }
      };
      if (this.isKbi) check('b', c.bBounds);
      else check('f', c.fBounds);
      check('i', c.iBounds);
      return;
    }
    tf.tidy(() => {
      const c = this.config;
      const clip = (n: QParamName, [lo, hi]: [number, number]): void => {
        const v = this.vars[n];
        if (v) v.write(tf.clipByValue(v.read(), lo, hi));
      };
      if (this.isKbi) clip('b', c.bBounds);
      else clip('f', c.fBounds);
      clip('i', c.iBounds);
    });
  }

  /**
   * Bits per parameter element for EBOPs (HGQ2's `bits`): without the sign bit, except under SAT where k counts.
   * KBI: round(b) (+k); KIF: relu(round(i) + round(f)) (+k). Shape `paramShape`; differentiable w.r.t. the raw
   * bit parameters through the straight-through rounding.
   */
  bits(): tf.Tensor {
    this.assertBuilt();
    const c = this.config;
    const sat = c.overflowMode === 'SAT';
    if (fusedSmallApplies()) {
      return this.isKbi
        ? fusedBits(this.read('b'), null, this.read('k'), sat, c.bBounds, c.bBounds)
        : fusedBits(this.read('i'), this.read('f'), this.read('k'), sat, c.iBounds, c.fBounds);
    }
    return tf.tidy(() => {
      const k = this.read('k');
      let bits: tf.Tensor;
      if (this.isKbi) {
        bits = steRound(this.clamped('b'));
      } else {
        bits = tf.relu(tf.add(steRound(this.clamped('i')), steRound(this.clamped('f'))));
      }
      return sat ? tf.add(bits, k) : bits;
    });
  }

  /** `bits()` broadcast to `shape` (e.g. [1, ...features] for an activation quantizer). */
  bitsFor(shape: number[]): tf.Tensor {
    return tf.tidy(() => tf.broadcastTo(this.bits(), shape));
  }

  /**
   * Every bit of the type including the sign bit, whatever the overflow mode (HGQ2's `fbits`, which the
   * table layers' EBOPs count): `bits()` plus k unless SAT already counted it. Shape `paramShape`.
   */
  fullBits(): tf.Tensor {
    if (this.config.overflowMode === 'SAT') return this.bits();
    return tf.tidy(() => tf.add(this.bits(), this.read('k')));
  }

  /** L1 pressure on the raw bit parameters (KBI: b; KIF: i and f): l1·Σ raw, a scalar to add to the loss. */
  l1Loss(): tf.Scalar {
    this.assertBuilt();
    return tf.tidy(() => {
      const l1 = this.config.l1;
      const raw = this.isKbi ? tf.sum(this.read('b')) : tf.add(tf.sum(this.read('i')), tf.sum(this.read('f')));
      return tf.mul(raw, l1) as tf.Scalar;
    });
  }

  /** The raw parameters the L1 pressure acts on (KBI: b; KIF: i and f). */
  l1Params(): tf.Tensor[] {
    this.assertBuilt();
    return this.isKbi ? [this.read('b')] : [this.read('i'), this.read('f')];
  }

  /** The exact integer types used in inference, as tensors of `paramShape` (rounded, clamped; i not raised). */
  kifTensors(): { k: tf.Tensor; i: tf.Tensor; f: tf.Tensor } {
    this.assertBuilt();
    return tf.tidy(() => {
      const k = tf.clone(this.read('k'));
      const i = this.roundedParam('i');
      const f = this.isKbi ? tf.sub(this.roundedParam('b'), i) : this.roundedParam('f');
      return { k, i, f };
    });
  }

  /** The exact integer types, one per parameter element in row-major order of `paramShape`. */
  kifs(): Kif[] {
    const t = this.kifTensors();
    try {
      const k = t.k.dataSync(),
        i = t.i.dataSync(),
        f = t.f.dataSync();
      const out: Kif[] = new Array(k.length);
      for (let j = 0; j < k.length; j++) out[j] = { k: k[j]! > 0 ? 1 : 0, i: i[j]! + 0, f: f[j]! + 0 }; // + 0: no -0
      return out;
    } finally {
      tf.dispose([t.k, t.i, t.f]);
    }
  }

  /** The exact types broadcast to a full shape (same rank as the input; e.g. [1, 16] for one sample). */
  kifsFor(shape: number[]): Kif[] {
    const ps = this.paramShape;
    if (shape.length !== ps.length || shape.some((d, a) => ps[a] !== 1 && ps[a] !== d))
      throw new Error(`quantizer ${this.name}: cannot broadcast parameters of shape [${ps}] to [${shape}]`);
    const per = this.kifs();
    const n = shape.reduce((a, b) => a * b, 1);
    const out: Kif[] = new Array(n);
    const idx = new Array(shape.length).fill(0);
    for (let j = 0; j < n; j++) {
      let p = 0;
      for (let a = 0; a < shape.length; a++) p = p * ps[a]! + (ps[a] === 1 ? 0 : idx[a]);
      out[j] = per[p]!;
      for (let a = shape.length - 1; a >= 0; a--) {
        if (++idx[a] < shape[a]!) break;
        idx[a] = 0;
      }
    }
    return out;
  }

  /** JSON-safe config (with the name) for serialization. */
  getConfig(): QuantizerConfig & { name: string } {
    return JSON.parse(JSON.stringify({ ...this.config, name: this.name }));
  }

  static fromConfig(config: QuantizerOptions & { name?: string }): Quantizer {
    return new Quantizer(config);
  }

  /** Dispose variables created by the default factory (a layer's own variables are the layer's to dispose). */
  dispose(): void {
    for (const v of Object.values(this.vars)) {
      const t = v?.read();
      if (t && !t.isDisposed) t.dispose();
    }
    this.vars = {};
  }

  // ---------------------------------------------------------------------------------------------------------
  // training forward with surrogate gradients

  private trainForward(x: tf.Tensor): tf.Tensor {
    const c = this.config;
    if (c.trainable) this.constrain();
    if (this.isWrap) {
      if (this.isKbi) {
        if (c.trainable) this.trackI(x, null);
        return this.wrapTrainKbi(x);
      }
      if (fusedTrainApplies(x.shape, this._paramShape!)) {
        // one pass forward (with the tracking's absmax), one pass backward: see train-kernels.ts
        const { xq, iNew } = fusedWrapTrainKif(
          x,
          this.read('f'),
          this.read('i'),
          this.read('i_decay_speed'),
          c.roundMode,
          c.fBounds,
          c.iBounds,
        );
        if (c.trainable) this.vars.i!.write(iNew);
        iNew.dispose();
        return xq;
      }
      const out = this.wrapTrainKif(x);
      if (c.trainable) this.trackI(x, out);
      return out;
    }
    return this.satTrain(x);
  }

  /** WRAP training tracking: i ← clamp(max(i_raw − decay, needed)); KIF measures the rounded x, KBI the raw x. */
  private trackI(x: tf.Tensor, xq: tf.Tensor | null): void {
    tf.tidy(() => {
      const c = this.config;
      const needed = this.isKbi ? this.kbiNeededI(x, this.roundedParam('b')) : this.kifNeededI(xq!, this.roundedParam('f'));
      const decayed = tf.sub(this.read('i'), this.read('i_decay_speed'));
      this.vars.i!.write(tf.clipByValue(tf.maximum(decayed, needed), c.iBounds[0], c.iBounds[1]));
    });
  }

  /** KIF: ceil(log2(absmax(x_q) + 2^-f)) over the homogeneous axes (HGQ2's minimal_i_given_xf, non-symmetric). */
  private kifNeededI(xq: tf.Tensor, f: tf.Tensor): tf.Tensor {
    return tf.tidy(() => ceilLog2(tf.add(this.reduceAbsMax(xq), exp2(tf.neg(f)))));
  }

  /** KBI: ceil(log2((absmax(x) + eps) / (1 − 2^-b + eps))) where b > 0, else the upper i bound (HGQ2: 32). */
  private kbiNeededI(x: tf.Tensor, b: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const ratio = tf.div(tf.add(this.reduceAbsMax(x), KERAS_EPS), tf.add(tf.sub(1, exp2(tf.neg(b))), KERAS_EPS));
      const i = ceilLog2(ratio);
      return tf.where(tf.greater(b, 0), i, tf.fill(i.shape, this.config.iBounds[1]));
    });
  }

  /**
   * WRAP training forward: round only (x_q = round(x·2^f)·2^-f), ∂x = dy, ∂f = −ln2·Σ dy·(x_q − x).
   * `fOf` maps the raw trainable parameter (KIF: f; KBI: b) to the integer f; its gradient passes straight through.
   */
  private wrapTrain(x: tf.Tensor, raw: tf.Tensor, fOf: (raw: tf.Tensor) => tf.Tensor): tf.Tensor {
    const mode = this.config.roundMode;
    const axes = this.sumAxes(x.shape);
    // tf ops here, not the fused JS kernels: on wasm these few elementwise ops are faster than a JS pass
    const fn = customGrad(((xIn: tf.Tensor, rawIn: tf.Tensor, save: tf.GradSaveFunc) => {
      const f = fOf(rawIn);
      const xq = roundScaled(xIn, f, mode);
      save([xIn, xq]);
      return {
        value: xq,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, xqs] = saved as [tf.Tensor, tf.Tensor];
          return [dy, tf.mul(reduceTo(tf.mul(dy, tf.sub(xqs, xs)), axes), -LN2)];
        },
      };
    }) as unknown as CustomGradFn);
    return fn(x, raw);
  }

  private wrapTrainKif(x: tf.Tensor): tf.Tensor {
    const [lo, hi] = this.config.fBounds;
    return this.wrapTrain(x, this.read('f'), (fRaw) => tf.clipByValue(tf.round(fRaw), lo, hi));
  }

  private wrapTrainKbi(x: tf.Tensor): tf.Tensor {
    const [lo, hi] = this.config.bBounds;
    const iRounded = this.roundedParam('i');
    try {
      return this.wrapTrain(x, this.read('b'), (bRaw) => tf.sub(tf.clipByValue(tf.round(bRaw), lo, hi), iRounded));
    } finally {
      iRounded.dispose();
    }
  }

  /**
   * SAT / SAT_SYM training: clip to [lo, hi] with i raised to >= −f, then round. Gradients:
   * x: 1 in range, 0 where clipped; f: −ln2·(x_q − x) in range, +ln2·2^-f at the top clip, −k·ln2·2^-f at the
   * bottom clip under SAT_SYM (its bottom is −k·(2^i − 2^-f)); i: ln2·2^i at the top, −k·ln2·2^i at the bottom.
   * KBI maps (∂f, ∂i) to ∂b = ∂f, ∂i_raw = ∂i − ∂f.
   */
  private satTrain(x: tf.Tensor): tf.Tensor {
    const c = this.config;
    const axes = this.sumAxes(x.shape);
    const sym = c.overflowMode === 'SAT_SYM' ? 1 : 0;
    const kVar = this.read('k');
    const kbi = this.isKbi;
    if (fusedTrainApplies(x.shape, this._paramShape!)) {
      return kbi
        ? fusedSatTrain(x, this.read('b'), this.read('i'), kVar, true, c.roundMode, c.overflowMode, c.bBounds, c.iBounds)
        : fusedSatTrain(x, this.read('i'), this.read('f'), kVar, false, c.roundMode, c.overflowMode, c.iBounds, c.fBounds);
    }
    const fn = customGrad(((xIn: tf.Tensor, p1: tf.Tensor, p2: tf.Tensor, save: tf.GradSaveFunc) => {
      let i: tf.Tensor, f: tf.Tensor;
      if (kbi) {
        i = tf.clipByValue(tf.round(p2), c.iBounds[0], c.iBounds[1]);
        f = tf.sub(tf.clipByValue(tf.round(p1), c.bBounds[0], c.bBounds[1]), i);
      } else {
        i = tf.clipByValue(tf.round(p1), c.iBounds[0], c.iBounds[1]);
        f = tf.clipByValue(tf.round(p2), c.fBounds[0], c.fBounds[1]);
      }
      const k = kVar;
      const iEff = tf.maximum(i, tf.neg(f));
      const step = exp2(tf.neg(f));
      const { lo, hi, top } = satBounds(k, iEff, step, c.overflowMode);
      const xc = tf.minimum(tf.maximum(xIn, lo), hi);
      const xq = tf.mul(roundCodes(tf.mul(xc, exp2(f)), c.roundMode), step);
      save([xIn, xc, xq, lo, hi, top, step, k]);
      return {
        value: xq,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, xcs, xqs, los, his, tops, steps, ks] = saved as [
            tf.Tensor,
            tf.Tensor,
            tf.Tensor,
            tf.Tensor,
            tf.Tensor,
            tf.Tensor,
            tf.Tensor,
            tf.Tensor,
          ];
          const over = tf.cast(tf.greater(xs, his), 'float32');
          const under = tf.cast(tf.less(xs, los), 'float32');
          const inRange = tf.sub(1, tf.add(over, under));
          const dx = tf.mul(dy, inRange);
          // ∂x_q/∂f: −ln2·(x_q − x_c) (zero when clipped, x_q = x_c there) + ln2·2^-f·(over − sym·k·under)
          const dfElem = tf.add(
            tf.mul(tf.sub(xqs, xcs), -LN2),
            tf.mul(tf.mul(steps, LN2), tf.sub(over, tf.mul(under, tf.mul(ks, sym)))),
          );
          const diElem = tf.mul(tf.mul(tops, LN2), tf.sub(over, tf.mul(under, ks)));
          const df = reduceTo(tf.mul(dy, dfElem), axes);
          const di = reduceTo(tf.mul(dy, diElem), axes);
          return kbi ? [dx, df, tf.sub(di, df)] : [dx, di, df];
        },
      };
    }) as unknown as CustomGradFn);
    return kbi ? fn(x, this.read('b'), this.read('i')) : fn(x, this.read('i'), this.read('f'));
  }

  // ---------------------------------------------------------------------------------------------------------
  // helpers

  private assertBuilt(): number[] {
    if (this._paramShape === null) throw new Error(`quantizer ${this.name}: not built; call build(inputShape) first`);
    return this._paramShape;
  }

  private checkInput(x: tf.Tensor): void {
    const ps = this.assertBuilt();
    if (x.rank !== ps.length)
      throw new Error(
        `quantizer ${this.name}: input of rank ${x.rank} (shape [${x.shape}]) but built for rank ${ps.length} ([${this._inputShape}])`,
      );
    for (let a = 0; a < ps.length; a++)
      if (ps[a] !== 1 && x.shape[a] !== ps[a])
        throw new Error(`quantizer ${this.name}: input shape [${x.shape}] does not match parameters [${ps}] on axis ${a}`);
    if (x.dtype !== 'float32') throw new Error(`quantizer ${this.name}: input must be float32, got ${x.dtype}`);
  }

  private read(n: QParamName): tf.Tensor {
    const v = this.vars[n];
    if (!v) throw new Error(`quantizer ${this.name}: no parameter '${n}'`);
    return v.read();
  }

  private clamped(n: 'b' | 'i' | 'f'): tf.Tensor {
    const c = this.config;
    const [lo, hi] = n === 'b' ? c.bBounds : n === 'i' ? c.iBounds : c.fBounds;
    return tf.clipByValue(this.read(n), lo, hi);
  }

  /** round-half-even (HGQ2's round_conv on parameters) of the clamped parameter; no gradient. */
  private roundedParam(n: 'b' | 'i' | 'f'): tf.Tensor {
    return tf.tidy(() => {
      const c = this.config;
      const [lo, hi] = n === 'b' ? c.bBounds : n === 'i' ? c.iBounds : c.fBounds;
      return tf.clipByValue(tf.round(this.read(n)), lo, hi);
    });
  }

  private roundOnly(x: tf.Tensor, f: tf.Tensor): tf.Tensor {
    return fusedApplies(x.shape, this.assertBuilt())
      ? fusedRound(x, f, this.config.roundMode)
      : roundScaled(x, f, this.config.roundMode);
  }

  /** Axes along which per-element gradients sum into the parameters. */
  private sumAxes(xShape: number[]): number[] {
    const ps = this.assertBuilt();
    const axes: number[] = [];
    for (let a = 0; a < ps.length; a++) if (ps[a] === 1 && xShape[a] !== 1) axes.push(a);
    return axes;
  }

  private reduceAbsMax(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => maxTo(tf.abs(x), this.sumAxes(x.shape)));
  }

  private reduceAny(mask: tf.Tensor): tf.Tensor {
    const axes = this.sumAxes(mask.shape);
    return axes.length ? tf.any(mask, axes, true) : mask;
  }
}

/**
 * Σ of the quantizers' L1 pressure (`l1Loss`) as one scalar, or null when there is none. On cpu and wasm one
 * kernel (and one for the gradient) instead of ~4 ops per quantizer.
 */
export function l1LossOf(quantizers: Quantizer[]): tf.Scalar | null {
  const qs = quantizers.filter((q) => q.config.l1 > 0);
  if (!qs.length) return null;
  if (fusedSmallApplies()) {
    const raws = qs.flatMap((q) => q.l1Params());
    const l1s = qs.flatMap((q) => q.l1Params().map(() => q.config.l1));
    return fusedL1(raws, l1s);
  }
  return tf.tidy(() => qs.map((q) => q.l1Loss()).reduce((a, b) => tf.add(a, b)) as tf.Scalar);
}

/** x rounded to multiples of 2^-f (no overflow handling), exact; never -0. */
function roundScaled(x: tf.Tensor, f: tf.Tensor, mode: Parameters<typeof roundCodes>[1]): tf.Tensor {
  return tf.tidy(() => tf.mul(roundCodes(tf.mul(x, exp2(f)), mode), exp2(tf.neg(f))));
}

/**
 * Sum over `axes` keeping dims. A leading run of axes is summed as ones·T (a matmul): tfjs-wasm's reduction
 * along a leading axis transposes first and is ~20x slower ([32768,64]: 40 ms against 1.7 ms).
 */
function reduceTo(t: tf.Tensor, axes: number[]): tf.Tensor {
  if (!axes.length) return t;
  const prefix = axes.every((a, j) => a === j);
  if (!prefix || t.rank < 2 || axes.length === t.rank) return tf.sum(t, axes, true);
  return tf.tidy(() => {
    const lead = t.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const rest = t.size / lead;
    const s = tf.matMul(tf.ones([1, lead]), tf.reshape(t, [lead, rest]));
    return tf.reshape(s, [...t.shape.map((d, a) => (a < axes.length ? 1 : d))]);
  });
}

/**
 * Max over `axes` keeping dims (no gradient). A leading run of axes goes through maxPool over an NHWC view
 * [1, lead, 1, rest] with a [lead, 1] window: exact, and ~15x faster on tfjs-wasm than max along axis 0.
 */
function maxTo(t: tf.Tensor, axes: number[]): tf.Tensor {
  if (!axes.length) return t;
  if (!axes.every((a, j) => a === j)) return tf.max(t, axes, true);
  return tf.tidy(() => {
    const lead = t.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const rest = t.size / lead;
    const m = tf.maxPool(tf.reshape(t, [1, lead, 1, rest]) as tf.Tensor4D, [lead, 1], [lead, 1], 'valid');
    return tf.reshape(m, [...t.shape.map((d, a) => (a < axes.length ? 1 : d))]);
  });
}

/** Round half to even with a straight-through gradient (HGQ2's round_conv). */
export const steRound: (x: tf.Tensor) => tf.Tensor = customGrad(((x: tf.Tensor) => ({
  value: tf.round(x),
  gradFunc: (dy: tf.Tensor) => dy,
})) as unknown as CustomGradFn);

type CustomGradFn = Parameters<typeof tf.customGrad>[0];
/** tf.customGrad with a loosely typed signature (tfjs' own typing does not fit fixed-arity functions). */
function customGrad(f: CustomGradFn): (...xs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad(f) as unknown as (...xs: tf.Tensor[]) => tf.Tensor;
}
