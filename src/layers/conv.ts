/**
 * QConv1D / QConv2D (channels-last, valid/same padding, strides; HGQ2 semantics). The convolution is
 * patches (pad/slice/reshape) + one matmul, so it trains on wasm, which lacks Conv2DBackpropFilter.
 */
import * as tf from '@tensorflow/tfjs';
import type { Quantizer, QuantizerMode } from '../quantizer/index.ts';
import { QLayer, qconf, type QConf, type QLayerArgs, type Shape } from './base.ts';
import { applyActivation, checkActivation, initializer, type Activation } from './dense.ts';
import { matMul2d } from './matmul.ts';
import { patches, windowGeometry, type Padding, type Window1D } from './patches.ts';

export interface QConvArgs extends QLayerArgs {
  filters: number;
  kernelSize: number | number[];
  strides?: number | number[];
  padding?: Padding;
  activation?: Activation | null;
  useBias?: boolean;
  kernelInitializer?: string;
  biasInitializer?: string;
  kqConf?: QConf;
  bqConf?: QConf;
  /** output positions computed in parallel (HGQ2's parallelization_factor); −1 = all (fully parallel) */
  parallelizationFactor?: number;
}

abstract class QConvBase extends QLayer {
  protected abstract readonly rank: 1 | 2;
  readonly filters: number;
  readonly kernelSize: number[];
  readonly strides: number[];
  readonly padding: Padding;
  readonly activation: Activation;
  readonly useBias: boolean;
  readonly parallelizationFactor: number;
  protected readonly kernelInitializer: string;
  protected readonly biasInitializer: string;
  protected readonly kqConf: QConf;
  protected readonly bqConf: QConf;
  kernel!: tf.LayerVariable;
  bias: tf.LayerVariable | null = null;
  kq!: Quantizer;
  bq: Quantizer | null = null;
  protected geoms: Window1D[] = [];
  protected nParallel = 1;

  constructor(args: QConvArgs, rank: 1 | 2) {
    super(args);
    const tuple = (v: number | number[] | undefined, dflt: number, what: string): number[] => {
      const t = v === undefined ? Array(rank).fill(dflt) : Array.isArray(v) ? v : Array(rank).fill(v);
      if (t.length !== rank || t.some((x) => !Number.isInteger(x) || x < 1)) this.fail(`${what} must be a positive integer or ${rank} of them, got ${JSON.stringify(v)}`);
      return t;
    };
    if (!Number.isInteger(args?.filters) || args.filters < 1) this.fail(`filters must be a positive integer, got ${args?.filters}`);
    this.filters = args.filters;
    this.kernelSize = tuple(args.kernelSize, 0, 'kernelSize');
    this.strides = tuple(args.strides, 1, 'strides');
    this.padding = args.padding ?? 'valid';
    if (this.padding !== 'valid' && this.padding !== 'same') this.fail(`padding must be 'valid' or 'same', got '${this.padding}'`);
    this.activation = checkActivation(this, args.activation);
    this.useBias = args.useBias ?? true;
    this.parallelizationFactor = args.parallelizationFactor ?? -1;
    this.kernelInitializer = args.kernelInitializer ?? 'glorotUniform';
    this.biasInitializer = args.biasInitializer ?? 'zeros';
    this.kqConf = args.kqConf ?? null;
    this.bqConf = args.bqConf ?? null;
  }

  protected ownArgNames(): string[] {
    return ['filters', 'kernelSize', 'strides', 'padding', 'activation', 'useBias', 'kernelInitializer', 'biasInitializer', 'kqConf', 'bqConf', 'parallelizationFactor'];
  }

  protected geometry(shape: Shape): Window1D[] {
    if (shape.length !== this.rank + 2) this.fail(`expects inputs of rank ${this.rank + 2} (batch, ${this.rank === 1 ? 'steps' : 'rows, cols'}, channels), got [${shape}]`);
    return shape.slice(1, -1).map((d, a) => {
      if (d === null) this.fail(`spatial axis ${a + 1} must have a known size`);
      try {
        return windowGeometry(d, this.kernelSize[a]!, this.strides[a]!, this.padding);
      } catch (e) {
        this.fail((e as Error).message);
      }
    });
  }

  protected buildLayer([shape]: Shape[]): void {
    this.geoms = this.geometry(shape!);
    const c = shape![shape!.length - 1];
    if (c === null || c === undefined) this.fail('the channel axis must have a known size');
    const kShape = [...this.kernelSize, c, this.filters];
    this.kernel = this.addWeight('kernel', kShape, 'float32', initializer(this.kernelInitializer), undefined, true);
    this.kq = this.makeQuantizer('kq', this.kqConf, 'weight', kShape);
    this.wqs.push(this.kq);
    if (this.useBias) {
      this.bias = this.addWeight('bias', [this.filters], 'float32', initializer(this.biasInitializer), undefined, true);
      this.bq = this.makeQuantizer('bq', this.bqConf, 'bias', [this.filters]);
      this.wqs.push(this.bq);
    }
    this.nParallel = this.geoms.reduce((a, g) => a * g.out, 1);
    this.inputSpec = [{ ndim: this.rank + 2, axes: { [-1]: c } }];
  }

  /** conv(x, k): patches [N, ...out, K, C] → [N·Π out, K·C] @ k[K·C, F] → [N, ...out, F]. */
  protected conv(x: tf.Tensor, k: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
    const p = patches(x, this.geoms, 0);
    const n = x.shape[0]!;
    const kc = k.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const y = matMul2d(tf.reshape(p, [-1, kc]), tf.reshape(k, [kc, this.filters]), b);
    return tf.reshape(y, [n, ...this.geoms.map((g) => g.out), this.filters]);
  }

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const training = mode === true;
    const y = this.conv(x!, this.kq.call(this.kernel.read(), training), this.bq ? this.bq.call(this.bias!.read(), training) : null);
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
      activation: this.activation,
      kernelSize: [...this.kernelSize],
      strides: [...this.strides],
      padding: this.padding,
      /** zero padding per spatial axis as [before, after] (TF 'same' rule) */
      pads: this.geoms.map((g) => [g.padBefore, g.padAfter]),
      kernel: this.exportWeight(this.kq, this.kernel.read()),
      bias: this.bq ? this.exportWeight(this.bq, this.bias!.read()) : null,
    };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: [...this.kernelSize],
      strides: [...this.strides],
      padding: this.padding,
      activation: this.activation,
      useBias: this.useBias,
      kernelInitializer: this.kernelInitializer,
      biasInitializer: this.biasInitializer,
      kqConf: qconf(this.kq ?? null, this.kqConf),
      bqConf: qconf(this.bq, this.bqConf),
      parallelizationFactor: this.parallelizationFactor,
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
