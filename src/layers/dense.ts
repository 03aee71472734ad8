/** QDense and QBatchNormDense (HGQ2 names and semantics). */
import * as tf from '@tensorflow/tfjs';
import { fusedBilinearSum, fusedSmallApplies, type QuantizerMode } from '../quantizer/index.ts';
import { matMul2d } from './matmul.ts';
import { KERNEL_ARG_NAMES, type KernelLayerArgs, QKernelLayer } from './kernel.ts';
import { type QLayer, updateMovingStatistics, type Shape } from './base.ts';

export const ACTIVATIONS = ['linear', 'relu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export function checkActivation(layer: QLayer, a: string | null | undefined): Activation {
  const act = a ?? 'linear';
  if (!(ACTIVATIONS as readonly string[]).includes(act)) {
    throw new Error(
      `${layer.getClassName()} '${layer.name}': unknown activation '${act}'; supported: ${ACTIVATIONS.join(', ')} (use a QUnaryFunctionLUT layer for other functions)`,
    );
  }
  return act as Activation;
}

export function applyActivation(x: tf.Tensor, a: Activation): tf.Tensor {
  return a === 'relu' ? tf.relu(x) : x;
}

export interface QDenseArgs extends KernelLayerArgs {
  units: number;
  activation?: Activation | null;
  useBias?: boolean;
  /** Multiplications done in parallel (HGQ2's parallelization_factor); −1 = all positions (fully parallel). */
  parallelizationFactor?: number;
}

export class QDense extends QKernelLayer {
  static className = 'QDense';
  readonly units: number;
  readonly activation: Activation;
  readonly useBias: boolean;
  readonly parallelizationFactor: number;
  /** positions the same kernel is applied at (Π of the input's middle axes) */
  protected nParallel = 1;

  constructor(args: QDenseArgs) {
    super(args);
    if (!Number.isInteger(args?.units) || args.units < 1) this.fail(`units must be a positive integer, got ${args?.units}`);
    this.units = args.units;
    this.activation = checkActivation(this, args.activation);
    this.useBias = args.useBias ?? true;
    this.parallelizationFactor = args.parallelizationFactor ?? -1;
  }

  protected ownArgNames(): string[] {
    return ['units', 'activation', 'useBias', 'parallelizationFactor', ...KERNEL_ARG_NAMES];
  }

  protected buildLayer([shape]: Shape[]): void {
    const inDim = shape![shape!.length - 1];
    if (inDim === null || inDim === undefined) this.fail(`the last input axis must have a known size, got [${shape}]`);
    if (shape!.length < 2) this.fail(`expects inputs of rank ≥ 2 (batch, features), got [${shape}]`);
    this.nParallel = shape!.slice(1, -1).reduce<number>((a, d) => a * (d ?? 1), 1);
    this.addKernelAndBias([inDim, this.units], this.useBias ? [this.units] : null);
    this.inputSpec = [{ minNDim: 2, axes: { [-1]: inDim } }];
  }

  /** Quantized kernel and bias as used in the forward pass. */
  protected qWeights(mode: QuantizerMode): { k: tf.Tensor; b: tf.Tensor | null } {
    const m = mode === true;
    return { k: this.kq.call(this.kernel.read(), m), b: this.bq ? this.bq.call(this.bias!.read(), m) : null };
  }

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const { k, b } = this.qWeights(mode);
    return applyActivation(matmulLast(x!, k, b), this.activation);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    return [...s.slice(0, -1), this.units];
  }

  /**
   * HGQ2 QDense._compute_ebops: Σ(bits_in @ bits_kernel) + mean(bits_bias)·(positions·units), times
   * parallelization_factor / positions. mean·units is written Σ bits_bias so the result stays an exact integer.
   */
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      const inDim = this.kernel.shape[0]!;
      let bitsIn = this.iqs[0]
        ? this.bitsAt(this.iqs[0], [1, ...(this.builtInputShapes[0]!.slice(1) as number[])])
        : tf.zeros([1, inDim]);
      if (bitsIn.rank !== 2) bitsIn = tf.reshape(bitsIn, [-1, inDim]);
      let e: tf.Tensor;
      if (fusedSmallApplies()) {
        // cpu/wasm: the same sum as one kernel each way (these small ops, on the tape every step, cost more than the math)
        e = fusedBilinearSum(bitsIn, this.kq.bits(), this.bq ? this.bq.bits() : null, this.nParallel);
      } else {
        e = tf.sum(tf.matMul(bitsIn, this.kq.bits()));
        if (this.bq) {
          const b = tf.sum(this.bq.bits());
          e = tf.add(e, this.nParallel === 1 ? b : tf.mul(b, this.nParallel));
        }
      }
      const pf = this.parallelizationFactor < 0 ? this.nParallel : this.parallelizationFactor;
      return (pf === this.nParallel ? e : tf.mul(e, pf / this.nParallel)) as tf.Scalar;
    });
  }

  protected exportLayer(): Record<string, unknown> {
    return {
      activation: this.activation,
      ...this.exportKernelAndBias(),
    };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...this.configOf('units', 'activation', 'useBias', 'parallelizationFactor'),
      ...this.kernelConfig(),
    };
  }
}

/** x[..., in] @ k[in, out] (+ b[out]) for any rank ≥ 2. */
export function matmulLast(x: tf.Tensor, k: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
  if (x.rank === 2) return matMul2d(x, k, b);
  const lead = x.shape.slice(0, -1);
  const y = matMul2d(tf.reshape(x, [-1, x.shape[x.rank - 1]!]), k, b);
  return tf.reshape(y, [...lead, k.shape[1]!]);
}

export interface QBatchNormDenseArgs extends QDenseArgs {
  scale?: boolean;
  momentum?: number;
  epsilon?: number;
}

/**
 * Dense with batch normalization folded into the quantized kernel and bias (HGQ2 QBatchNormDense):
 * with (μ, σ²) the batch statistics of the quantized input in training and the moving ones in inference,
 * kernel' = kq(γ/√(σ²+ε) · W) — the scale multiplies W's rows (input features), as in HGQ2 — and
 * bias' = bq(b − μ·W). Moving statistics update by momentum in training.
 */
export class QBatchNormDense extends QDense {
  static override className = 'QBatchNormDense';
  readonly scale: boolean;
  readonly momentum: number;
  readonly epsilon: number;
  gamma: tf.LayerVariable | null = null;
  movingMean!: tf.LayerVariable;
  movingVariance!: tf.LayerVariable;
  private batchStats: { mean: tf.Tensor; variance: tf.Tensor } | null = null;

  constructor(args: QBatchNormDenseArgs) {
    super(args);
    if (args.useBias === false) this.fail('useBias must be true (the folded batch norm needs a bias)');
    this.scale = args.scale ?? true;
    this.momentum = args.momentum ?? 0.99;
    this.epsilon = args.epsilon ?? 1e-3;
    if (!(this.momentum >= 0 && this.momentum < 1)) this.fail(`momentum must be in [0,1), got ${this.momentum}`);
    if (!(this.epsilon > 0)) this.fail(`epsilon must be > 0, got ${this.epsilon}`);
  }

  protected override ownArgNames(): string[] {
    return [...super.ownArgNames(), 'scale', 'momentum', 'epsilon'];
  }

  protected override buildLayer(shapes: Shape[]): void {
    super.buildLayer(shapes);
    const inDim = this.kernel.shape[0]!;
    if (this.scale) this.gamma = this.addWeight('bn_gamma', [inDim], 'float32', tf.initializers.ones(), undefined, true);
    this.movingMean = this.addWeight('moving_mean', [inDim], 'float32', tf.initializers.zeros(), undefined, false);
    this.movingVariance = this.addWeight('moving_variance', [inDim], 'float32', tf.initializers.ones(), undefined, false);
  }

  private fused(mean: tf.Tensor, variance: tf.Tensor): { k: tf.Tensor; b: tf.Tensor } {
    return tf.tidy(() => {
      const w = this.kernel.read();
      let s = tf.rsqrt(tf.add(variance, this.epsilon));
      if (this.gamma) s = tf.mul(this.gamma.read(), s);
      const k = tf.mul(tf.reshape(s, [-1, 1]), w);
      const b = tf.sub(this.bias!.read(), tf.squeeze(tf.matMul(tf.reshape(mean, [1, -1]), w), [0]));
      return { k, b };
    }) as unknown as { k: tf.Tensor; b: tf.Tensor };
  }

  protected override qWeights(mode: QuantizerMode): { k: tf.Tensor; b: tf.Tensor } {
    const training = mode === true;
    const stats =
      training && this.batchStats ? this.batchStats : { mean: this.movingMean.read(), variance: this.movingVariance.read() };
    const { k, b } = this.fused(stats.mean, stats.variance);
    return { k: this.kq.call(k, training), b: this.bq!.call(b, training) };
  }

  protected override forward(inputs: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    if (mode === true && this.trainable) {
      const x = inputs[0]!;
      const axes = x.shape.slice(0, -1).map((_, a) => a);
      const { mean, variance } = tf.moments(x, axes);
      this.batchStats = { mean, variance };
      updateMovingStatistics(this.movingMean, this.movingVariance, mean, variance, this.momentum);
      try {
        return super.forward(inputs, mode);
      } finally {
        this.batchStats = null;
      }
    }
    return super.forward(inputs, mode);
  }

  protected override exportLayer(): Record<string, unknown> {
    const { k, b } = this.fused(this.movingMean.read(), this.movingVariance.read());
    try {
      return { activation: this.activation, kernel: this.exportWeight(this.kq, k), bias: this.exportWeight(this.bq!, b) };
    } finally {
      tf.dispose([k, b]);
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...this.configOf('scale', 'momentum', 'epsilon') };
  }
}

tf.serialization.registerClass(QDense);
tf.serialization.registerClass(QBatchNormDense);
