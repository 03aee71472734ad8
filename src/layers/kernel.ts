/**
 * What QDense, QConv and QEinsumDense share: a quantized kernel and an optional quantized bias, with their
 * initializers and quantizer configs, created the same way at build time.
 */
import * as tf from '@tensorflow/tfjs';
import type { Quantizer } from '../quantizer/index.ts';
import { type ConstExport, QLayer, qconf, type QConf, type QLayerArgs } from './base.ts';

export interface KernelLayerArgs extends QLayerArgs {
  kernelInitializer?: string;
  biasInitializer?: string;
  kqConf?: QConf;
  bqConf?: QConf;
}

/** The options of KernelLayerArgs, for a subclass's ownArgNames. */
export const KERNEL_ARG_NAMES = ['kernelInitializer', 'biasInitializer', 'kqConf', 'bqConf'];

export abstract class QKernelLayer extends QLayer {
  protected readonly kernelInitializer: string;
  protected readonly biasInitializer: string;
  protected readonly kqConf: QConf;
  protected readonly bqConf: QConf;
  kernel!: tf.LayerVariable;
  bias: tf.LayerVariable | null = null;
  kq!: Quantizer;
  bq: Quantizer | null = null;

  constructor(args: KernelLayerArgs) {
    super(args);
    this.kernelInitializer = args?.kernelInitializer ?? 'glorotUniform';
    this.biasInitializer = args?.biasInitializer ?? 'zeros';
    this.kqConf = args?.kqConf ?? null;
    this.bqConf = args?.bqConf ?? null;
  }

  /** The kernel and its (weight) quantizer; with a bias shape, the bias and its (bias) quantizer too. */
  protected addKernelAndBias(kernelShape: number[], biasShape: number[] | null, biasTrainable = true): void {
    this.kernel = this.addWeight('kernel', kernelShape, 'float32', initializer(this.kernelInitializer), undefined, true);
    this.kq = this.makeQuantizer('kq', this.kqConf, 'weight', kernelShape);
    this.wqs.push(this.kq);
    if (biasShape === null) return;
    this.bias = this.addWeight('bias', biasShape, 'float32', initializer(this.biasInitializer), undefined, biasTrainable);
    this.bq = this.makeQuantizer('bq', this.bqConf, 'bias', biasShape);
    this.wqs.push(this.bq);
  }

  /** The kernel and bias as the tracer reads them: quantized values with their types. */
  protected exportKernelAndBias(): { kernel: ConstExport; bias: ConstExport | null } {
    return {
      kernel: this.exportWeight(this.kq, this.kernel.read()),
      bias: this.bq ? this.exportWeight(this.bq, this.bias!.read()) : null,
    };
  }

  /** The config entries of the kernel and bias (the quantizer configs as built, when built). */
  protected kernelConfig(): tf.serialization.ConfigDict {
    return {
      kernelInitializer: this.kernelInitializer,
      biasInitializer: this.biasInitializer,
      kqConf: qconf(this.kq ?? null, this.kqConf),
      bqConf: qconf(this.bq, this.bqConf),
    };
  }
}

export function initializer(name: string): ReturnType<typeof tf.initializers.zeros> {
  const table: Record<string, () => ReturnType<typeof tf.initializers.zeros>> = {
    zeros: () => tf.initializers.zeros(),
    ones: () => tf.initializers.ones(),
    glorotUniform: () => tf.initializers.glorotUniform({}),
    glorotNormal: () => tf.initializers.glorotNormal({}),
    heNormal: () => tf.initializers.heNormal({}),
    heUniform: () => tf.initializers.heUniform({}),
    leCunNormal: () => tf.initializers.leCunNormal({}),
  };
  const f = table[name];
  if (!f) throw new Error(`unknown initializer '${name}'; use one of ${Object.keys(table).join(', ')}`);
  return f();
}
