/**
 * Merge layers (HGQ2 names and EBOPs), each input with its own input quantizer; inputs must share one
 * per-sample shape.
 *   QAdd:      0.65·(Σ Σ_inputs bits − Σ min_inputs bits)
 *   QSubtract: Σ max(bits0, bits1)
 *   QMultiply: Σ Π_inputs bits
 *   QMaximum / QMinimum: Σ Σ_inputs bits − Σ min_inputs bits
 */
import * as tf from '@tensorflow/tfjs';
import { layerClass, QLayer, type QLayerArgs, type Shape } from './base.ts';

type MergeOp = 'add' | 'subtract' | 'multiply' | 'maximum' | 'minimum';

/** An elementwise merge of same-shape inputs; the layer classes below fix the operation. */
abstract class QMerge extends QLayer {
  constructor(
    args: QLayerArgs,
    protected readonly op: MergeOp,
  ) {
    super(args);
  }
  protected override multiInput(): boolean {
    return true;
  }
  protected ownArgNames(): string[] {
    return [];
  }
  protected buildLayer(shapes: Shape[]): void {
    if (this.op === 'subtract' && shapes.length !== 2) this.fail(`takes exactly two inputs, got ${shapes.length}`);
    const s0 = JSON.stringify(shapes[0]!.slice(1));
    for (const s of shapes) {
      if (JSON.stringify(s.slice(1)) !== s0)
        this.fail(`all inputs must have the same per-sample shape, got ${shapes.map((x) => `[${x.slice(1)}]`).join(' and ')}`);
      if (s.slice(1).some((d) => d === null)) this.fail(`needs fully known per-sample shapes, got [${s}]`);
    }
  }
  protected forward(xs: tf.Tensor[]): tf.Tensor {
    switch (this.op) {
      case 'add':
        return xs.slice(1).reduce((a, b) => tf.add(a, b), xs[0]!);
      case 'subtract':
        return tf.sub(xs[0]!, xs[1]!);
      case 'multiply':
        return xs.slice(1).reduce((a, b) => tf.mul(a, b), xs[0]!);
      case 'maximum':
        return xs.slice(1).reduce((a, b) => tf.maximum(a, b), xs[0]!);
      case 'minimum':
        return xs.slice(1).reduce((a, b) => tf.minimum(a, b), xs[0]!);
    }
  }
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return [...(inputShape as Shape[])[0]!];
  }
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      if (this.iqs.some((q) => !q)) return tf.scalar(0);
      const bits = this.iqs.map((q, j) => this.bitsAt(q!, [1, ...(this.builtInputShapes[j]!.slice(1) as number[])]));
      const sumMinusMin = () => tf.sub(tf.sum(tf.addN(bits)), tf.sum(bits.slice(1).reduce((a, b) => tf.minimum(a, b), bits[0]!)));
      switch (this.op) {
        case 'add':
          return tf.mul(sumMinusMin(), 0.65) as tf.Scalar;
        case 'subtract':
          return tf.sum(tf.maximum(bits[0]!, bits[1]!)) as tf.Scalar;
        case 'multiply':
          return tf.sum(bits.slice(1).reduce((a, b) => tf.mul(a, b), bits[0]!)) as tf.Scalar;
        default:
          return sumMinusMin() as tf.Scalar;
      }
    });
  }
  protected exportLayer(): Record<string, unknown> {
    return { op: this.op };
  }
}

export const QAdd = layerClass(QMerge, 'QAdd', 'add');
export const QSubtract = layerClass(QMerge, 'QSubtract', 'subtract');
export const QMultiply = layerClass(QMerge, 'QMultiply', 'multiply');
export const QMaximum = layerClass(QMerge, 'QMaximum', 'maximum');
export const QMinimum = layerClass(QMerge, 'QMinimum', 'minimum');
/** The instance types, so that the names serve as types as a class declaration's would. */
export type QAdd = InstanceType<typeof QAdd>;
export type QSubtract = InstanceType<typeof QSubtract>;
export type QMultiply = InstanceType<typeof QMultiply>;
export type QMaximum = InstanceType<typeof QMaximum>;
export type QMinimum = InstanceType<typeof QMinimum>;
