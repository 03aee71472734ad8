/**
 * QConv1D / QConv2D (channels-last, valid/same padding, strides; HGQ2 semantics). The forward is one
 * tf.conv2d (Conv1D as a 1-row Conv2D); the gradient is custom because wasm lacks Conv2DBackpropFilter:
 * the input gradient is conv2DBackpropInput (tf.conv2dTranspose) and the filter gradient an im2col matmul,
 * the patches made by ONE conv2d against a one-hot filter (each output picks one input element: exact).
 * Exactness of the forward is the matmul argument: products of quantized values are exact in float32 and
 * so are their sums while they fit 24 bits, whatever the summation order.
 */
import * as tf from '@tensorflow/tfjs';
import type { QuantizerMode } from '../quantizer/index.ts';
import type { Shape } from './base.ts';
import { applyActivation, checkActivation, type Activation } from './dense.ts';
import { KERNEL_ARG_NAMES, type KernelLayerArgs, QKernelLayer } from './kernel.ts';
import { spatialGeometry, type Padding, type Window1D } from './patches.ts';

export interface QConvArgs extends KernelLayerArgs {
  filters: number;
  kernelSize: number | number[];
  strides?: number | number[];
  padding?: Padding;
  activation?: Activation | null;
  useBias?: boolean;
  /** output positions computed in parallel (HGQ2's parallelization_factor); −1 = all (fully parallel) */
  parallelizationFactor?: number;
}

type ConvFn = (x: tf.Tensor4D, k: tf.Tensor4D, b: tf.Tensor1D | null) => tf.Tensor4D;
type GradFn = Parameters<typeof tf.customGrad>[0];

/** Conv2D with the given window geometries (1 or 2 axes; one axis = a single row) and its gradient. */
function makeConv(geoms: Window1D[]): ConvFn {
  const gs = geoms.length === 2 ? geoms : [{ in: 1, k: 1, s: 1, out: 1, padBefore: 0, padAfter: 0 }, geoms[0]!];
  const [gh, gw] = gs as [Window1D, Window1D];
  const strides: [number, number] = [gh.s, gw.s];
  const pad: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [gh.padBefore, gh.padAfter],
    [gw.padBefore, gw.padAfter],
    [0, 0],
  ];
  const kk = gh.k * gw.k;
  /** im2col of x: [N·oh·ow, kh·kw·C], columns in the kernel's row-major (kh, kw, C) order. */
  const im2col = (x: tf.Tensor4D): tf.Tensor2D => {
    const c = x.shape[3];
    // one-hot filter [kh, kw, C, kh·kw·C]: output channel (i·kw + j)·C + ch reads tap (i, j) of channel ch
    const eye = tf.reshape(tf.eye(kk * c), [gh.k, gw.k, c, kk * c]) as tf.Tensor4D;
    return tf.reshape(tf.conv2d(x, eye, strides, pad), [-1, kk * c]);
  };
  const grads = (x: tf.Tensor4D, k: tf.Tensor4D, dy: tf.Tensor4D): [tf.Tensor, tf.Tensor, tf.Tensor2D] => {
    const f = k.shape[3];
    const dy2 = tf.reshape(dy, [-1, f]) as tf.Tensor2D;
    const dx = tf.conv2dTranspose(dy, k, x.shape, strides, pad);
    // transposing first: wasm's BatchMatMul with transposeA bypasses XNNPACK (see matmul.ts)
    const dk = tf.reshape(tf.matMul(tf.transpose(im2col(x)), dy2), k.shape);
    return [dx, dk, dy2];
  };
  const plain = tf.customGrad(((x: tf.Tensor4D, k: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([x, k]);
    return {
      value: tf.conv2d(x, k, strides, pad),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => grads(saved[0] as tf.Tensor4D, saved[1] as tf.Tensor4D, dy).slice(0, 2),
    };
  }) as unknown as GradFn) as unknown as (x: tf.Tensor4D, k: tf.Tensor4D) => tf.Tensor4D;
  const biased = tf.customGrad(((x: tf.Tensor4D, k: tf.Tensor4D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([x, k]);
    return {
      value: tf.add(tf.conv2d(x, k, strides, pad), b),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [dx, dk, dy2] = grads(saved[0] as tf.Tensor4D, saved[1] as tf.Tensor4D, dy);
        // bias gradient as a ones-row matmul (wasm's batch-axis Sum transposes first, see matmul.ts)
        return [dx, dk, tf.reshape(tf.matMul(tf.ones([1, dy2.shape[0]]), dy2), [dy2.shape[1]])];
      },
    };
  }) as unknown as GradFn) as unknown as (x: tf.Tensor4D, k: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor4D;
  return (x, k, b) => (b ? biased(x, k, b) : plain(x, k));
}

abstract class QConvBase extends QKernelLayer {
  protected abstract readonly rank: 1 | 2;
  readonly filters: number;
  readonly kernelSize: number[];
  readonly strides: number[];
  readonly padding: Padding;
  readonly activation: Activation;
  readonly useBias: boolean;
  readonly parallelizationFactor: number;
  protected geoms: Window1D[] = [];
  protected nParallel = 1;
  private convFn: ConvFn | null = null;

  constructor(args: QConvArgs, rank: 1 | 2) {
    super(args);
    const tuple = (v: number | number[] | undefined, dflt: number, what: string): number[] => {
      const t = v === undefined ? Array(rank).fill(dflt) : Array.isArray(v) ? v : Array(rank).fill(v);
      if (t.length !== rank || t.some((x) => !Number.isInteger(x) || x < 1))
        this.fail(`${what} must be a positive integer or ${rank} of them, got ${JSON.stringify(v)}`);
      return t;
    };
    if (!Number.isInteger(args?.filters) || args.filters < 1)
      this.fail(`filters must be a positive integer, got ${args?.filters}`);
    this.filters = args.filters;
    this.kernelSize = tuple(args.kernelSize, 0, 'kernelSize');
    this.strides = tuple(args.strides, 1, 'strides');
    this.padding = args.padding ?? 'valid';
    if (this.padding !== 'valid' && this.padding !== 'same')
      this.fail(`padding must be 'valid' or 'same', got '${this.padding}'`);
    this.activation = checkActivation(this, args.activation);
    this.useBias = args.useBias ?? true;
    this.parallelizationFactor = args.parallelizationFactor ?? -1;
  }

  protected ownArgNames(): string[] {
    return ['filters', 'kernelSize', 'strides', 'padding', 'activation', 'useBias', 'parallelizationFactor', ...KERNEL_ARG_NAMES];
  }

  protected geometry(shape: Shape): Window1D[] {
    if (shape.length !== this.rank + 2)
      this.fail(
        `expects inputs of rank ${this.rank + 2} (batch, ${this.rank === 1 ? 'steps' : 'rows, cols'}, channels), got [${shape}]`,
      );
    return spatialGeometry(shape, this.kernelSize, this.strides, this.padding, (m) => this.fail(m));
  }

  protected buildLayer([shape]: Shape[]): void {
    this.geoms = this.geometry(shape!);
    const c = shape![shape!.length - 1];
    if (c === null || c === undefined) this.fail('the channel axis must have a known size');
    const kShape = [...this.kernelSize, c, this.filters];
    this.addKernelAndBias(kShape, this.useBias ? [this.filters] : null);
    this.nParallel = this.geoms.reduce((a, g) => a * g.out, 1);
    this.inputSpec = [{ ndim: this.rank + 2, axes: { [-1]: c } }];
  }

  /** conv(x[N, ...in, C], k[...ks, C, F]) (+ b[F]) → [N, ...out, F] with this layer's strides and pads. */
  protected conv(x: tf.Tensor, k: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
    this.convFn ??= makeConv(this.geoms);
    const n = x.shape[0]!;
    const c = x.shape[x.rank - 1]!;
    // Conv1D runs as Conv2D over a single row.
    const x4 = this.rank === 2 ? x : tf.reshape(x, [n, 1, this.geoms[0]!.in, c]);
    const k4 = this.rank === 2 ? k : tf.reshape(k, [1, ...k.shape]);
    const y = this.convFn(x4 as tf.Tensor4D, k4 as tf.Tensor4D, b ? (b as tf.Tensor1D) : null);
    return this.rank === 2 ? y : tf.reshape(y, [n, this.geoms[0]!.out, this.filters]);
  }

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const training = mode === true;
    const y = this.conv(
      x!,
      this.kq.call(this.kernel.read(), training),
      this.bq ? this.bq.call(this.bias!.read(), training) : null,
    );
    return applyActivation(y, this.activation);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    const g = this.geometry(s);
    return [s[0]!, ...g.map((w) => w.out), this.filters];
  }

  /**
   * HGQ2 QBaseConv._compute_ebops: Σ conv(bits_in, bits_kernel)·pf/positions + Σ bits_bias·pf, with
   * pf = positions when fully parallel (so every output position pays for its multiplications).
   */
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      const inShape = [1, ...(this.builtInputShapes[0]!.slice(1) as number[])];
      const bitsIn = this.iqs[0] ? this.bitsAt(this.iqs[0], inShape) : tf.zeros(inShape);
      const pf = this.parallelizationFactor <= 0 ? this.nParallel : this.parallelizationFactor;
      let e: tf.Tensor = tf.sum(this.conv(bitsIn, this.kq.bits()));
      if (pf !== this.nParallel) e = tf.mul(e, pf / this.nParallel);
      if (this.bq) e = tf.add(e, tf.mul(tf.sum(this.bq.bits()), pf));
      return e as tf.Scalar;
    });
  }

  protected exportLayer(): Record<string, unknown> {
    return {
      ...this.configOf('activation', 'kernelSize', 'strides', 'padding'),
      /** zero padding per spatial axis as [before, after] (TF 'same' rule) */
      pads: this.geoms.map((g) => [g.padBefore, g.padAfter]),
      ...this.exportKernelAndBias(),
    };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...this.configOf('filters', 'kernelSize', 'strides', 'padding', 'activation', 'useBias', 'parallelizationFactor'),
      ...this.kernelConfig(),
    };
  }
}

export class QConv1D extends QConvBase {
  static className = 'QConv1D';
  protected readonly rank = 1 as const;
  constructor(args: QConvArgs) {
    super(args, 1);
  }
}

export class QConv2D extends QConvBase {
  static className = 'QConv2D';
  protected readonly rank = 2 as const;
  constructor(args: QConvArgs) {
    super(args, 2);
  }
}

tf.serialization.registerClass(QConv1D);
tf.serialization.registerClass(QConv2D);
