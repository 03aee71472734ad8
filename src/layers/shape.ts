/**
 * Exact pass-throughs: QFlatten, QReshape, QConcatenate only move values, so they cost no EBOPs. Unlike the
 * arithmetic layers their input quantizer is OFF by default (the producer's output is already quantized and
 * a second quantizer would only add rounding); pass `enableIq: true` to quantize here.
 */
import * as tf from '@tensorflow/tfjs';
import { QLayer, type QLayerArgs, type Shape } from './base.ts';

const defaults = <T extends QLayerArgs>(a: T): T => ({ enableIq: false, ...a });

export class QFlatten extends QLayer {
  static className = 'QFlatten';
  constructor(args: QLayerArgs = {}) {
    super(defaults(args));
  }
  protected ownArgNames(): string[] {
    return [];
  }
  protected buildLayer([s]: Shape[]): void {
    if (s!.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${s}]`);
  }
  protected forward([x]: tf.Tensor[]): tf.Tensor {
    return tf.reshape(x!, [x!.shape[0]!, -1]);
  }
  override computeOutputShape(s: Shape | Shape[]): Shape {
    const t = s as Shape;
    return [t[0]!, (t.slice(1) as number[]).reduce((a, b) => a * b, 1)];
  }
  ebopsTensor(): tf.Scalar {
    return tf.scalar(0);
  }
  protected exportLayer(): Record<string, unknown> {
    return { op: 'reshape' };
  }
}

export interface QReshapeArgs extends QLayerArgs {
  targetShape: number[];
}

export class QReshape extends QLayer {
  static className = 'QReshape';
  readonly targetShape: number[];
  constructor(args: QReshapeArgs) {
    super(defaults(args));
    if (
      !Array.isArray(args?.targetShape) ||
      args.targetShape.some((d) => !Number.isInteger(d) || (d < 1 && d !== -1)) ||
      args.targetShape.filter((d) => d === -1).length > 1
    ) {
      this.fail(`targetShape must be a list of positive integers with at most one -1, got ${JSON.stringify(args?.targetShape)}`);
    }
    this.targetShape = [...args.targetShape];
  }
  protected ownArgNames(): string[] {
    return ['targetShape'];
  }
  private resolved(s: Shape): number[] {
    const n = (s.slice(1) as number[]).reduce((a, b) => a * b, 1);
    const known = this.targetShape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const out = this.targetShape.map((d) => (d === -1 ? n / known : d));
    if (out.reduce((a, b) => a * b, 1) !== n || out.some((d) => !Number.isInteger(d)))
      this.fail(`cannot reshape [${s.slice(1)}] (${n} values) to [${this.targetShape}]`);
    return out;
  }
  protected buildLayer([s]: Shape[]): void {
    if (s!.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${s}]`);
    this.resolved(s!);
  }
  protected forward([x]: tf.Tensor[]): tf.Tensor {
    return tf.reshape(x!, [x!.shape[0]!, ...this.resolved(this.builtInputShapes[0]!)]);
  }
  override computeOutputShape(s: Shape | Shape[]): Shape {
    const t = s as Shape;
    return [t[0]!, ...this.resolved(t)];
  }
  ebopsTensor(): tf.Scalar {
    return tf.scalar(0);
  }
  protected exportLayer(): Record<string, unknown> {
    return { op: 'reshape' };
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), targetShape: [...this.targetShape] };
  }
}

export interface QConcatenateArgs extends QLayerArgs {
  axis?: number;
}

export class QConcatenate extends QLayer {
  static className = 'QConcatenate';
  readonly axis: number;
  constructor(args: QConcatenateArgs = {}) {
    super(defaults(args));
    this.axis = args.axis ?? -1;
    if (!Number.isInteger(this.axis)) this.fail(`axis must be an integer, got ${args.axis}`);
  }
  protected override multiInput(): boolean {
    return true;
  }
  protected ownArgNames(): string[] {
    return ['axis'];
  }
  private ax(rank: number): number {
    const a = this.axis < 0 ? this.axis + rank : this.axis;
    if (a < 1 || a >= rank)
      this.fail(`axis ${this.axis} is out of range for inputs of rank ${rank} (the batch axis cannot be concatenated)`);
    return a;
  }
  protected buildLayer(shapes: Shape[]): void {
    const r = shapes[0]!.length;
    const a = this.ax(r);
    for (const s of shapes) {
      if (s.length !== r || s.some((d, j) => j > 0 && j !== a && d !== shapes[0]![j]))
        this.fail(`inputs must agree on every axis but ${this.axis}, got ${shapes.map((x) => `[${x.slice(1)}]`).join(' and ')}`);
    }
  }
  protected forward(xs: tf.Tensor[]): tf.Tensor {
    return tf.concat(xs, this.ax(xs[0]!.rank));
  }
  override computeOutputShape(s: Shape | Shape[]): Shape {
    const ss = s as Shape[];
    const a = this.ax(ss[0]!.length);
    const out = [...ss[0]!];
    out[a] = ss.reduce<number | null>((acc, x) => (acc === null || x[a] === null ? null : acc + x[a]!), 0);
    return out;
  }
  ebopsTensor(): tf.Scalar {
    return tf.scalar(0);
  }
  protected exportLayer(): Record<string, unknown> {
    return { op: 'concatenate', axis: this.ax(this.builtInputShapes[0]!.length) - 1 /* per-sample axis */ };
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axis: this.axis };
  }
}

for (const c of [QFlatten, QReshape, QConcatenate]) tf.serialization.registerClass(c);
