/**
 * QBatchNormalization (HGQ2 semantics, channel axis last): y = x·kq(s) + bq(o) with s = γ/√(σ²+ε),
 * o = β_bn − μ·s; batch statistics of the quantized input in training (moving ones updated by momentum),
 * moving statistics in inference. EBOPs: Σ bits_in·bits_scale + mean(bits_offset)·(elements per sample).
 */
import * as tf from '@tensorflow/tfjs';
import type { Quantizer, QuantizerMode } from '../quantizer/index.ts';
import { QLayer, qconf, updateMovingStatistics, type QConf, type QLayerArgs, type Shape } from './base.ts';

export interface QBatchNormalizationArgs extends QLayerArgs {
  momentum?: number;
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
  /** keep the moving statistics fixed in training */
  freezeStatistics?: boolean;
  kqConf?: QConf;
  bqConf?: QConf;
}

export class QBatchNormalization extends QLayer {
  static className = 'QBatchNormalization';
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly freezeStatistics: boolean;
  protected readonly kqConf: QConf;
  protected readonly bqConf: QConf;
  gamma: tf.LayerVariable | null = null;
  beta: tf.LayerVariable | null = null;
  movingMean!: tf.LayerVariable;
  movingVariance!: tf.LayerVariable;
  kq!: Quantizer;
  bq!: Quantizer;
  private channels = 0;

  constructor(args: QBatchNormalizationArgs = {}) {
    super(args);
    this.momentum = args.momentum ?? 0.99;
    this.epsilon = args.epsilon ?? 1e-3;
    this.center = args.center ?? true;
    this.scale = args.scale ?? true;
    this.freezeStatistics = args.freezeStatistics ?? false;
    this.kqConf = args.kqConf ?? null;
    this.bqConf = args.bqConf ?? null;
    if (!(this.momentum >= 0 && this.momentum < 1)) this.fail(`momentum must be in [0,1), got ${this.momentum}`);
    if (!(this.epsilon > 0)) this.fail(`epsilon must be > 0, got ${this.epsilon}`);
  }

  protected ownArgNames(): string[] {
    return ['momentum', 'epsilon', 'center', 'scale', 'freezeStatistics', 'kqConf', 'bqConf'];
  }

  protected buildLayer([s]: Shape[]): void {
    const c = s![s!.length - 1];
    if (c === null || c === undefined || s!.length < 2) this.fail(`the channel (last) axis must have a known size, got [${s}]`);
    this.channels = c;
    if (this.scale) this.gamma = this.addWeight('bn_gamma', [c], 'float32', tf.initializers.ones(), undefined, true);
    if (this.center) this.beta = this.addWeight('bn_beta', [c], 'float32', tf.initializers.zeros(), undefined, true);
    this.movingMean = this.addWeight('moving_mean', [c], 'float32', tf.initializers.zeros(), undefined, false);
    this.movingVariance = this.addWeight('moving_variance', [c], 'float32', tf.initializers.ones(), undefined, false);
    this.kq = this.makeQuantizer('kq', this.kqConf, 'weight', [c]);
    this.bq = this.makeQuantizer('bq', this.bqConf, 'bias', [c]);
    this.wqs.push(this.kq, this.bq);
  }

  private scaleOffset(mean: tf.Tensor, variance: tf.Tensor): { s: tf.Tensor; o: tf.Tensor } {
    return tf.tidy(() => {
      let s = tf.rsqrt(tf.add(variance, this.epsilon));
      if (this.gamma) s = tf.mul(this.gamma.read(), s);
      let o = tf.neg(tf.mul(mean, s));
      if (this.beta) o = tf.add(o, this.beta.read());
      return { s, o };
    }) as unknown as { s: tf.Tensor; o: tf.Tensor };
  }

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const training = mode === true;
    let mean: tf.Tensor, variance: tf.Tensor;
    if (training && this.trainable && !this.freezeStatistics) {
      const axes = x!.shape.slice(0, -1).map((_, a) => a);
      ({ mean, variance } = tf.moments(x!, axes));
      updateMovingStatistics(this.movingMean, this.movingVariance, mean, variance, this.momentum);
    } else {
      mean = this.movingMean.read();
      variance = this.movingVariance.read();
    }
    const { s, o } = this.scaleOffset(mean, variance);
    return tf.add(tf.mul(x!, this.kq.call(s, training)), this.bq.call(o, training));
  }

  override computeOutputShape(s: Shape | Shape[]): Shape {
    return [...(s as Shape)];
  }

  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      const shape = [1, ...(this.builtInputShapes[0]!.slice(1) as number[])];
      const size = shape.reduce((a, b) => a * b, 1);
      const bitsIn = this.iqs[0] ? this.bitsAt(this.iqs[0], shape) : tf.zeros(shape);
      // mean(bits_offset)·size written as Σ bits_offset · (size/channels): exact when channels divide size
      return tf.add(tf.sum(tf.mul(bitsIn, this.kq.bits())), tf.mul(tf.sum(this.bq.bits()), size / this.channels)) as tf.Scalar;
    });
  }

  protected exportLayer(): Record<string, unknown> {
    const { s, o } = this.scaleOffset(this.movingMean.read(), this.movingVariance.read());
    try {
      return { op: 'scale_offset', scale: this.exportWeight(this.kq, s), offset: this.exportWeight(this.bq, o) };
    } finally {
      tf.dispose([s, o]);
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...this.configOf('momentum', 'epsilon', 'center', 'scale', 'freezeStatistics'),
      kqConf: qconf(this.kq ?? null, this.kqConf),
      bqConf: qconf(this.bq ?? null, this.bqConf),
    };
  }
}

tf.serialization.registerClass(QBatchNormalization);
