/**
 * QSum (HGQ2 `hgq.layers.QSum`): y = sum(iq(x), axes, keepdims) · scale, with `scale` a power of two so the
 * result stays an exact fixed-point value. EBOPs (HGQ2 QSum._compute_ebops): 0.65·(Σ bits − Σ min over axes of
 * bits), i.e. an adder tree costs the bits of every summand but the narrowest one per output.
 */
import * as tf from '@tensorflow/tfjs';
import { QLayer, type QLayerArgs, type Shape } from './base.ts';

export interface QSumArgs extends QLayerArgs {
  /** axes summed over (Keras numbering, the batch axis is 0 and cannot be summed); default -1 */
  axes?: number | number[];
  /** power of two multiplying the sum (HGQ2 `scale`); default 1 */
  scale?: number;
  keepdims?: boolean;
}

export class QSum extends QLayer {
  static className = 'QSum';
  readonly axes: number[];
  readonly scale: number;
  readonly keepdims: boolean;

  constructor(args: QSumArgs = {}) {
    super(args);
    const a = args.axes ?? -1;
    this.axes = Array.isArray(a) ? [...a] : [a];
    if (!this.axes.length || this.axes.some((x) => !Number.isInteger(x)))
      this.fail(`axes must be an integer or a non-empty list of integers, got ${JSON.stringify(args.axes)}`);
    this.scale = args.scale ?? 1;
    if (!(this.scale > 0) || !Number.isInteger(Math.log2(this.scale)))
      this.fail(`scale must be a power of two (HGQ2 requires it so the sum stays exact), got ${args.scale}`);
    this.keepdims = args.keepdims ?? false;
  }

  protected ownArgNames(): string[] {
    return ['axes', 'scale', 'keepdims'];
  }

  /** The summed axes, non-negative and sorted, for an input of rank `rank`. */
  resolvedAxes(rank: number): number[] {
    const out = this.axes.map((x) => {
      const p = x < 0 ? x + rank : x;
      if (p < 0 || p >= rank) this.fail(`axis ${x} is out of range for inputs of rank ${rank}`);
      if (p === 0) this.fail('cannot sum over the batch axis (axis 0)');
      return p;
    });
    return [...new Set(out)].sort((x, y) => x - y);
  }

  protected buildLayer([s]: Shape[]): void {
    if (s!.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${s}]`);
    this.resolvedAxes(s!.length);
  }

  protected forward([x]: tf.Tensor[]): tf.Tensor {
    const y = tf.sum(x!, this.resolvedAxes(x!.rank), this.keepdims);
    return this.scale === 1 ? y : tf.mul(y, this.scale);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    const ax = this.resolvedAxes(s.length);
    return this.keepdims ? s.map((d, a) => (ax.includes(a) ? 1 : d)) : s.filter((_, a) => !ax.includes(a));
  }

  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      if (!this.iqs[0]) return tf.scalar(0);
      const shape = [1, ...(this.builtInputShapes[0]!.slice(1) as number[])];
      const bits = this.iqs[0].bitsFor(shape);
      return tf.mul(tf.sub(tf.sum(bits), tf.sum(tf.min(bits, this.resolvedAxes(shape.length)))), 0.65) as tf.Scalar;
    });
  }

  protected exportLayer(): Record<string, unknown> {
    // per-sample axes (the batch axis dropped) for the tracer
    return {
      op: 'sum',
      axes: this.resolvedAxes(this.builtInputShapes[0]!.length).map((a) => a - 1),
      scale: this.scale,
      keepdims: this.keepdims,
    };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axes: [...this.axes], scale: this.scale, keepdims: this.keepdims };
  }
}

tf.serialization.registerClass(QSum);
