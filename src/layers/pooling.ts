/**
 * Pooling layers (HGQ2 names): QMaxPooling1D/2D, QAveragePooling1D/2D, QGlobalMaxPooling1D/2D,
 * QGlobalAveragePooling1D/2D. Built from patches + reductions (wasm's MaxPool gradient is wrong for
 * windows whose max is ≤ 0).
 *
 * Average pooling divides each window sum by the number of real (non-padding) elements, as Keras does.
 * When that count is a power of two (e.g. 2×2 or 4×4 'valid' windows, or global pooling over 2^n
 * positions) the division is an exact shift and the inference output is exact; otherwise the quotient is
 * not a dyadic number: the export marks `exactDivisor: false`, and the tracer must not treat the float
 * result as exact (quantize it with an output quantizer and accept the rounding of a constant multiply).
 *
 * EBOPs (HGQ2 QBasePooling): Σ bits_in · parallelization_factor / positions (= Σ bits_in fully parallel).
 */
import * as tf from '@tensorflow/tfjs';
import type { QuantizerMode } from '../quantizer/index.ts';
import { layerClass, QLayer, type QLayerArgs, type Shape } from './base.ts';
import { patches, spatialGeometry, windowTaps, type Padding, type Window1D } from './patches.ts';

export interface QPoolingArgs extends QLayerArgs {
  poolSize?: number | number[];
  strides?: number | number[] | null;
  padding?: Padding;
  parallelizationFactor?: number;
}

/**
 * Elementwise max of the window taps with tf.max's gradient (every tap equal to the max gets dy, ties
 * included; the wasm engine's pool_max_bwd does the same). tf.maximum's own gradient would pick one tap.
 */
const maxOfTaps = tf.customGrad(((...args: unknown[]) => {
  const save = args.pop() as tf.GradSaveFunc;
  const taps = args as tf.Tensor[];
  save(taps);
  return {
    value: taps.reduce((a, b) => tf.maximum(a, b)),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const y = saved.reduce((a, b) => tf.maximum(a, b));
      return saved.map((t) => tf.mul(dy, tf.cast(tf.equal(t, y), 'float32')));
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...taps: tf.Tensor[]) => tf.Tensor;

type PoolOp = 'max' | 'avg';

/** Windowed pooling (max or average) of rank 1 or 2; the layer classes below fix both. */
abstract class QPoolBase extends QLayer {
  readonly poolSize: number[];
  readonly strides: number[];
  readonly padding: Padding;
  readonly parallelizationFactor: number;
  protected geoms: Window1D[] = [];
  /** per output position: number of real elements in its window (for 'avg') */
  protected counts: tf.Tensor | null = null;

  constructor(
    args: QPoolingArgs,
    protected readonly rank: 1 | 2,
    protected readonly op: PoolOp,
  ) {
    super(args);
    const tuple = (v: number | number[] | null | undefined, dflt: number[], what: string): number[] => {
      const t = v === undefined || v === null ? dflt : Array.isArray(v) ? v : Array(rank).fill(v);
      if (t.length !== rank || t.some((x) => !Number.isInteger(x) || x < 1))
        this.fail(`${what} must be a positive integer or ${rank} of them, got ${JSON.stringify(v)}`);
      return t;
    };
    this.poolSize = tuple(args.poolSize, Array(rank).fill(2), 'poolSize');
    this.strides = tuple(args.strides, this.poolSize, 'strides');
    this.padding = args.padding ?? 'valid';
    if (this.padding !== 'valid' && this.padding !== 'same')
      this.fail(`padding must be 'valid' or 'same', got '${this.padding}'`);
    this.parallelizationFactor = args.parallelizationFactor ?? -1;
  }

  protected ownArgNames(): string[] {
    return ['poolSize', 'strides', 'padding', 'parallelizationFactor'];
  }

  protected geometry(shape: Shape): Window1D[] {
    if (shape.length !== this.rank + 2) this.fail(`expects inputs of rank ${this.rank + 2}, got [${shape}]`);
    return spatialGeometry(shape, this.poolSize, this.strides, this.padding, (m) => this.fail(m));
  }

  protected buildLayer([shape]: Shape[]): void {
    this.geoms = this.geometry(shape!);
    if (this.op === 'avg') {
      // count of real elements per window: pool a ones map (channel 1) with zero padding
      this.counts = tf.keep(
        tf.tidy(() => tf.sum(patches(tf.ones([1, ...this.geoms.map((g) => g.in), 1]), this.geoms, 0), this.rank + 1)),
      );
    }
  }

  protected forward([x]: tf.Tensor[], _mode: QuantizerMode): tf.Tensor {
    // Elementwise over the window taps (rank ≤ 4, see windowTaps).
    if (this.op === 'max') return maxOfTaps(...windowTaps(x!, this.geoms, -Infinity));
    return tf.div(tf.addN(windowTaps(x!, this.geoms, 0)), this.counts!);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    return [s[0]!, ...this.geometry(s).map((g) => g.out), s[s.length - 1]!];
  }

  ebopsTensor(): tf.Scalar {
    return poolEbops(
      this,
      this.geoms.reduce((a, g) => a * g.out, 1),
      this.parallelizationFactor,
    );
  }

  protected exportLayer(): Record<string, unknown> {
    const counts = this.counts ? Array.from(this.counts.dataSync()) : null;
    return {
      op: this.op,
      ...this.configOf('poolSize', 'strides', 'padding'),
      pads: this.geoms.map((g) => [g.padBefore, g.padAfter]),
      /** avg: divisor per output position (row-major over the output's spatial axes) */
      divisors: counts,
      exactDivisor: counts ? counts.every((c) => Number.isInteger(Math.log2(c))) : true,
    };
  }

  // declared: the inferred type would name a tfjs-layers internal module that the shipped .d.ts cannot import
  override dispose(): ReturnType<tf.layers.Layer['dispose']> {
    this.counts?.dispose();
    this.counts = null;
    return super.dispose();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...this.configOf('poolSize', 'strides', 'padding', 'parallelizationFactor') };
  }
}

/** Σ bits_in (batch axis removed) · pf / positions. */
function poolEbops(l: QLayer & { builtInputShapesPublic?: never }, positions: number, pfArg: number): tf.Scalar {
  return tf.tidy(() => {
    const q = l.iqs[0];
    if (!q) return tf.scalar(0);
    const shape = [1, ...((l as unknown as { builtInputShapes: Shape[] }).builtInputShapes[0]!.slice(1) as number[])];
    const pf = pfArg <= 0 ? positions : pfArg;
    const e = tf.sum(q.bitsFor(shape));
    return (pf === positions ? e : tf.mul(e, pf / positions)) as tf.Scalar;
  });
}

export const QMaxPooling1D = layerClass(QPoolBase, 'QMaxPooling1D', 1, 'max');
export const QMaxPooling2D = layerClass(QPoolBase, 'QMaxPooling2D', 2, 'max');
export const QAveragePooling1D = layerClass(QPoolBase, 'QAveragePooling1D', 1, 'avg');
export const QAveragePooling2D = layerClass(QPoolBase, 'QAveragePooling2D', 2, 'avg');

export interface QGlobalPoolingArgs extends QLayerArgs {
  keepdims?: boolean;
}

/** Pooling over all positions (max or average) of rank 1 or 2; the layer classes below fix both. */
abstract class QGlobalPoolBase extends QLayer {
  readonly keepdims: boolean;
  constructor(
    args: QGlobalPoolingArgs,
    protected readonly rank: 1 | 2,
    protected readonly op: PoolOp,
  ) {
    super(args);
    this.keepdims = args.keepdims ?? false;
  }
  protected ownArgNames(): string[] {
    return ['keepdims'];
  }
  protected buildLayer([shape]: Shape[]): void {
    if (shape!.length !== this.rank + 2) this.fail(`expects inputs of rank ${this.rank + 2}, got [${shape}]`);
    if (shape!.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${shape}]`);
  }
  private axes(): number[] {
    return Array.from({ length: this.rank }, (_, a) => a + 1);
  }
  protected forward([x]: tf.Tensor[]): tf.Tensor {
    if (this.op === 'max') return tf.max(x!, this.axes(), this.keepdims);
    const n = this.positions();
    return tf.mul(tf.sum(x!, this.axes(), this.keepdims), 1 / n);
  }
  private positions(): number {
    return (this.builtInputShapes[0]!.slice(1, -1) as number[]).reduce((a, b) => a * b, 1);
  }
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    return this.keepdims ? [s[0]!, ...Array(this.rank).fill(1), s[s.length - 1]!] : [s[0]!, s[s.length - 1]!];
  }
  ebopsTensor(): tf.Scalar {
    return poolEbops(this, 1, -1);
  }
  protected exportLayer(): Record<string, unknown> {
    const n = this.positions();
    return {
      op: this.op,
      keepdims: this.keepdims,
      positions: n,
      exactDivisor: this.op === 'max' || Number.isInteger(Math.log2(n)),
    };
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), keepdims: this.keepdims };
  }
}

export const QGlobalMaxPooling1D = layerClass(QGlobalPoolBase, 'QGlobalMaxPooling1D', 1, 'max');
export const QGlobalMaxPooling2D = layerClass(QGlobalPoolBase, 'QGlobalMaxPooling2D', 2, 'max');
export const QGlobalAveragePooling1D = layerClass(QGlobalPoolBase, 'QGlobalAveragePooling1D', 1, 'avg');
export const QGlobalAveragePooling2D = layerClass(QGlobalPoolBase, 'QGlobalAveragePooling2D', 2, 'avg');

/** The instance types, so that the names serve as types as a class declaration's would. */
export type QMaxPooling1D = InstanceType<typeof QMaxPooling1D>;
export type QMaxPooling2D = InstanceType<typeof QMaxPooling2D>;
export type QAveragePooling1D = InstanceType<typeof QAveragePooling1D>;
export type QAveragePooling2D = InstanceType<typeof QAveragePooling2D>;
export type QGlobalMaxPooling1D = InstanceType<typeof QGlobalMaxPooling1D>;
export type QGlobalMaxPooling2D = InstanceType<typeof QGlobalMaxPooling2D>;
export type QGlobalAveragePooling1D = InstanceType<typeof QGlobalAveragePooling1D>;
export type QGlobalAveragePooling2D = InstanceType<typeof QGlobalAveragePooling2D>;
