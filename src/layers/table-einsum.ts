/**
 * QEinsumDenseT (HGQ2 name and semantics): the HGQ-LUT table layer on an einsum. HGQ2's call, op by op:
 * the input is broadcast to the pre-sum tensor (input letters + the kernel letters it lacks, see
 * table-einsum-plan.ts) and quantized by the input quantizer (one type per pre-sum element); every element
 * runs the MLP 1 → d_hl (n_hl hidden layers, `subnnActivation`) → 1 of the kernel slice its kernel letters
 * select (so elements differing only in non-kernel letters share a sub-network); optional batch norm over
 * `normalizeAxes`, then ÷ √n_in; the table output quantizer `toq`; the sum over the contracted letters;
 * the output letter order; the activation.
 *
 * Sub-network biases exist when `biasAxes` is given and there is no batch norm (HGQ2's rule); they are stored in
 * Keras EinsumDense's bias shape. Batch norm follows HGQ2's own arithmetic (scaler = γ / √(var + ε), offset =
 * β − mean·scaler), not Keras' BatchNormalization.
 *
 * `exportQuantized()` gives the tracer's table_sum layout (TableLayerExport) with the tables evaluated by the
 * same tfjs ops as inference, so table lookups equal inference bit for bit.
 */
import * as tf from '@tensorflow/tfjs';
import { quantizeTensor, type QuantizerMode } from '../quantizer/index.ts';
import { qconf, updateMovingStatistics, type QuantizerExport, type Shape } from './base.ts';
import { applyActivation } from './dense.ts';
import { biasShapeFor, decodeLetters, encodeLetters } from './einsum.ts';
import type { TableExport } from './table.ts';
import {
  edgeMlps,
  lutLayerEbops,
  kifAt,
  TableLayer,
  type EdgeLayer,
  type TableLayerArgs,
  type TableLayerExport,
} from './table-dense.ts';
import { checkEinsumTableEquation, einsumTableIndex, planEinsumTable, type EinsumTablePlan } from './table-einsum-plan.ts';

export interface QEinsumDenseTArgs extends TableLayerArgs {
  /** '<input>,<kernel>-><output>', e.g. 'bi,io->bo' or '...ci,io->...co' (a leading '...' allowed) */
  equation: string;
  /** Keras output_shape: sizes of the output letters after the batch axis or '...' (null: from the input) */
  outputShape: number | (number | null)[];
  /** any string of output letters turns the sub-network biases on (they span the kernel letters); null: off */
  biasAxes?: string | null;
  /** pre-sum letters the batch norm normalizes over (default: biasAxes, else the kernel's output letters) */
  normalizeAxes?: string | null;
}

const perm = (from: string, to: string): number[] => [...to].map((c) => from.indexOf(c));
const isIdentity = (p: number[]): boolean => p.every((v, j) => v === j);
const transpose = (x: tf.Tensor, p: number[]): tf.Tensor => (isIdentity(p) ? x : tf.transpose(x, p));

export class QEinsumDenseT extends TableLayer {
  static className = 'QEinsumDenseT';
  readonly equation: string;
  readonly partialOutputShape: (number | null)[];
  readonly biasAxes: string | null;
  normalizeAxes: string | null;
  plan!: EinsumTablePlan;
  // the variables (TableLayer's) have Keras EinsumDense shapes: kernels [...kernel letters, d_prev, d],
  // biases biasShapeFor(pre-sum + hidden)

  constructor(args: QEinsumDenseTArgs) {
    super(args);
    this.equation = checkEinsumTableEquation(
      typeof args?.equation === 'string' ? decodeLetters(args.equation) : args?.equation,
      `${this.getClassName()} '${this.name}'`,
    );
    const os = args.outputShape;
    this.partialOutputShape =
      typeof os === 'number'
        ? [os]
        : Array.isArray(os)
          ? [...os]
          : this.fail(`outputShape must be a number or a list (Keras output_shape), got ${JSON.stringify(os)}`);
    const letters = (v: unknown, what: string): string | null => {
      if (v === null || v === undefined) return null;
      if (typeof v !== 'string' || !/^[a-zA-Z^]+$/.test(v))
        this.fail(`${what} must be a string of letters, got ${JSON.stringify(v)}`);
      return decodeLetters(v);
    };
    this.biasAxes = letters(args.biasAxes, 'biasAxes');
    this.normalizeAxes = letters(args.normalizeAxes, 'normalizeAxes');
  }

  protected ownArgNames(): string[] {
    return [
      'equation',
      'outputShape',
      'nHl',
      'dHl',
      'subnnActivation',
      'activation',
      'biasAxes',
      'normalizeAxes',
      'batchNorm',
      'bnCenter',
      'bnScale',
      'bnMomentum',
      'bnEpsilon',
      'tableIdxs',
      'toqConf',
      'parallelizationFactor',
    ];
  }

  /** Sub-network biases: HGQ2 adds them when bias_axes is given and there is no batch norm. */
  get useBias(): boolean {
    return this.biasAxes !== null && !this.batchNorm;
  }

  private planFor(s: Shape): EinsumTablePlan {
    if (s.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${s}]`);
    try {
      return planEinsumTable(
        this.equation,
        this.partialOutputShape,
        s.slice(1) as number[],
        `${this.getClassName()} '${this.name}'`,
      );
    } catch (e) {
      return this.fail((e as Error).message.replace(/^[^:]*: /, ''));
    }
  }

  protected override iqShape(s: Shape): Shape {
    return [s[0]!, ...this.planFor(s).presumShape];
  }
  protected override beforeIq(x: tf.Tensor): tf.Tensor {
    const { presumShape, extra } = this.plan;
    const B = x.shape[0]!;
    return tf.broadcastTo(tf.reshape(x, [B, ...x.shape.slice(1), ...new Array<number>(extra.length).fill(1)]), [
      B,
      ...presumShape,
    ]);
  }

  protected buildLayer([shape]: Shape[]): void {
    const plan = (this.plan = this.planFor(shape!));
    const { presum, kerSpec, kernelShape, presumShape } = plan;
    const glorot = () => tf.initializers.glorotUniform({});
    // '#' stands for the hidden width letter of HGQ2's sub-network equations
    const biasShape = (hidden: boolean) =>
      hidden
        ? biasShapeFor(`${presum.slice(1)}#`, `${kerSpec}#`, [...presumShape, this.dHl])
        : biasShapeFor(presum.slice(1), kerSpec, presumShape);
    let dPrev = 1;
    for (let h = 0; h < this.nHl; h++) {
      this.hiddenKernels.push(
        this.addWeight(`hidden${h}_kernel`, [...kernelShape, dPrev, this.dHl], 'float32', glorot(), undefined, true),
      );
      if (this.useBias)
        this.hiddenBiases.push(
          this.addWeight(`hidden${h}_bias`, biasShape(true), 'float32', tf.initializers.zeros(), undefined, true),
        );
      dPrev = this.dHl;
    }
    this.outKernel = this.addWeight('out_kernel', [...kernelShape, dPrev], 'float32', glorot(), undefined, true);
    if (this.useBias)
      this.outBias = this.addWeight('out_bias', biasShape(false), 'float32', tf.initializers.zeros(), undefined, true);
    if (this.batchNorm) {
      this.normalizeAxes ??= this.biasAxes ?? [...kerSpec].filter((c) => plan.outSpec.includes(c)).join('');
      for (const c of this.normalizeAxes)
        if (!presum.slice(1).includes(c))
          this.fail(`normalizeAxes letter '${c}' is not a non-batch axis of the pre-sum tensor '${presum}'`);
      const bnShape = [...this.normalizeAxes].map((c) => plan.dims[c]!);
      const w = (name: string, init: ReturnType<typeof tf.initializers.ones>, trainable: boolean) =>
        this.addWeight(name, bnShape, 'float32', init, undefined, trainable);
      if (this.bnScale) this.bnGamma = w('bn_gamma', tf.initializers.ones(), true);
      if (this.bnCenter) this.bnBeta = w('bn_beta', tf.initializers.zeros(), true);
      this.movingMean = w('moving_mean', tf.initializers.zeros(), false);
      this.movingVariance = w('moving_variance', tf.initializers.ones(), false);
    }
    this.toq = this.makeQuantizer('toq', this.toqConf, 'table', [null, ...presumShape]);
    this.wqs.push(this.toq);
  }

  /** The sub-network layers as per-kernel-slice weights: kernels [W, d_in, d_out], biases [W, 1, d_out]. */
  private edgeLayers(): EdgeLayer[] {
    const { presum, kerSpec, kernelShape } = this.plan;
    const W = kernelShape.reduce((a, d) => a * d, 1);
    // a Keras bias spans pre-sum letters from its first kernel letter on (1 on the others): keep the kernel
    // letters in pre-sum order, then bring them into kernel order
    const inPresum = [...presum].filter((c) => kerSpec.includes(c)).join('');
    const toKernel = [...perm(inPresum, kerSpec), kerSpec.length];
    const bias = (b: tf.LayerVariable, d: number) => {
      const t = tf.reshape(b.read(), [...[...inPresum].map((c) => this.plan.dims[c]!), d]);
      return tf.reshape(transpose(t, toKernel), [W, 1, d]);
    };
    const layers: EdgeLayer[] = this.hiddenKernels.map((k, j) => ({
      kernel: tf.reshape(k.read(), [W, j === 0 ? 1 : this.dHl, this.dHl]),
      bias: this.hiddenBiases[j] ? bias(this.hiddenBiases[j]!, this.dHl) : null,
    }));
    layers.push({
      kernel: tf.reshape(this.outKernel.read(), [W, this.nHl === 0 ? 1 : this.dHl, 1]),
      bias: this.outBias ? bias(this.outBias, 1) : null,
    });
    return layers;
  }

  /** Every pre-sum element's sub-network on x [N, ...pre-sum]: grouped by kernel slice, edge-major. */
  private subnetworks(x: tf.Tensor): tf.Tensor {
    const { presum, kerSpec, kernelShape } = this.plan;
    const rest = [...presum].filter((c) => !kerSpec.includes(c)).join('');
    const order = rest + kerSpec;
    const W = kernelShape.reduce((a, d) => a * d, 1);
    const xt = transpose(x, perm(presum, order));
    const shapeT = xt.shape;
    const N = x.size / W;
    const h = tf.expandDims(tf.transpose(tf.reshape(xt, [N, W])), -1); // [W, N, 1]
    const y = edgeMlps(h, this.subnnFn, this.edgeLayers());
    return transpose(tf.reshape(tf.transpose(tf.reshape(y, [W, N])), shapeT), perm(order, presum));
  }

  /** HGQ2's batch norm over normalizeAxes (batch statistics in training), then ÷ √n_in. */
  private normalize(y: tf.Tensor, training: boolean): tf.Tensor {
    if (!this.batchNorm) return y;
    const { presum, dims } = this.plan;
    const axes = this.normalizeAxes!;
    const bcast = [...presum].map((c, a) => (a > 0 && axes.includes(c) ? dims[c]! : 1));
    let mean: tf.Tensor, variance: tf.Tensor;
    if (training && this.trainable) {
      const reduce = [...presum].map((c, a) => (a > 0 && axes.includes(c) ? -1 : a)).filter((a) => a >= 0);
      ({ mean, variance } = tf.moments(y, reduce));
      const bnShape = this.movingMean!.shape as number[];
      updateMovingStatistics(
        this.movingMean!,
        this.movingVariance!,
        tf.reshape(mean, bnShape),
        tf.reshape(variance, bnShape),
        this.bnMomentum,
      );
    } else {
      mean = this.movingMean!.read();
      variance = this.movingVariance!.read();
    }
    const root = tf.sqrt(tf.add(variance, this.bnEpsilon));
    const scaler = this.bnGamma ? tf.div(this.bnGamma.read(), root) : tf.div(1, root);
    let offset = tf.mul(tf.neg(mean), scaler);
    if (this.bnBeta) offset = tf.add(offset, this.bnBeta.read());
    const z = tf.add(tf.mul(y, tf.reshape(scaler, bcast)), tf.reshape(offset, bcast));
    return tf.div(z, Math.fround(Math.sqrt(this.plan.nIn)));
  }

  private edgeValues(xq: tf.Tensor, training: boolean): tf.Tensor {
    return this.normalize(this.subnetworks(xq), training);
  }

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const { presum, contract, outSpec } = this.plan;
    let t = this.toq.call(this.edgeValues(x!, mode === true), mode);
    const kept = [...presum].filter((c) => !contract.includes(c)).join('');
    if (contract.length)
      t = tf.sum(
        t,
        [...contract].map((c) => presum.indexOf(c)),
      );
    return applyActivation(transpose(t, perm(kept, outSpec)), this.activation);
  }

  override computeOutputShape(s: Shape | Shape[]): Shape {
    const shape = s as Shape;
    return [shape[0] ?? null, ...this.planFor(shape).outShape];
  }

  /** HGQ2 QEinsumDenseT._compute_ebops on the batch-1 pre-sum shape (lutLayerEbops). */
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      const shape = [1, ...this.plan.presumShape];
      const bitsOut = tf.broadcastTo(this.toq.fullBits(), shape);
      const bitsIn = this.iqs[0] ? tf.broadcastTo(this.iqs[0].fullBits(), shape) : tf.zerosLike(bitsOut);
      return lutLayerEbops(bitsIn, bitsOut, this.tableIdxs, this.parallelizationFactor, this.plan.nParallel);
    });
  }

  protected exportLayer(): Record<string, unknown> {
    const { presumShape, free, dims, nIn, nOut } = this.plan;
    const inQ = this.exportQuantizer(this.iqs[0] ?? null, presumShape);
    const outQ = this.exportQuantizer(this.toq, presumShape)!;
    if (!inQ) this.fail("export needs the input quantizer (it defines each table's domain)");
    const index = einsumTableIndex(this.plan);
    const out: TableLayerExport = {
      op: 'table_sum',
      activation: this.activation,
      positions: [...free].map((c) => dims[c]!),
      nIn,
      nOut,
      inputIndex: index.inputIndex,
      quantizerIndex: index.edgePresum,
      outputIndex: index.outputIndex,
      ...this.buildTables(inQ, outQ, index.edgePresum),
    };
    return out as unknown as Record<string, unknown>;
  }

  /**
   * Every pre-sum element's table over its input type's domain, evaluated for all elements at once (domains
   * padded to the longest) by the same tfjs ops as inference, then quantized by the element's toq type.
   * Identical tables are kept once. `edgeTable` is in canonical edge order (`edgePresum` maps it).
   */
  private buildTables(
    inQ: QuantizerExport,
    outQ: QuantizerExport,
    edgePresum: Int32Array,
  ): { edgeTable: Int32Array; tables: TableExport[] } {
    const S = inQ.k.length;
    const doms = Array.from({ length: S }, (_, j) => this.tableDomain(kifAt(inQ, j), `pre-sum element ${j}`));
    const M = Math.max(...doms.map((d) => d.n));
    const xs = new Float32Array(M * S);
    for (let j = 0; j < S; j++)
      for (let m = 0; m < M; m++) xs[m * S + j] = doms[j]!.min + Math.min(m, doms[j]!.n - 1) * doms[j]!.step;
    const kOut = tf.tensor(Float32Array.from(outQ.k), [1, S]);
    const iOut = tf.tensor(Float32Array.from(outQ.i), [1, S]);
    const fOut = tf.tensor(Float32Array.from(outQ.f), [1, S]);
    const ys = new Float32Array(M * S);
    const rows = Math.max(1, Math.floor(2 ** 22 / (S * Math.max(this.dHl, 1))));
    for (let m0 = 0; m0 < M; m0 += rows) {
      const m1 = Math.min(M, m0 + rows);
      const part = tf.tidy(() => {
        const v = this.edgeValues(tf.tensor(xs.subarray(m0 * S, m1 * S), [m1 - m0, ...this.plan.presumShape]), false);
        return quantizeTensor(tf.reshape(v, [m1 - m0, S]), kOut, iOut, fOut, outQ.round, outQ.overflow).dataSync();
      });
      ys.set(part, m0 * S);
    }
    tf.dispose([kOut, iOut, fOut]);
    const tables: TableExport[] = [];
    const seen = new Map<string, number>();
    const edgeTable = new Int32Array(edgePresum.length);
    edgePresum.forEach((j, e) => {
      const a = kifAt(inQ, j);
      const b = kifAt(outQ, j);
      if (b.k + b.i + b.f <= 0) {
        edgeTable[e] = -1;
        return;
      }
      const d = doms[j]!;
      const values = Float64Array.from({ length: d.n }, (_, m) => ys[m * S + j]!);
      const key = `${a.k},${a.i},${a.f}|${b.k},${b.i},${b.f}|${values.join(',')}`;
      let t = seen.get(key);
      if (t === undefined) {
        t = tables.length;
        tables.push({ input: a, output: b, min: d.min, step: d.step, values });
        seen.set(key, t);
      }
      edgeTable[e] = t;
    });
    return { edgeTable, tables };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      // tfjs-layers would lower-case capital letters on load (see encodeLetters)
      equation: encodeLetters(this.equation),
      outputShape: [...this.partialOutputShape],
      biasAxes: this.biasAxes === null ? null : encodeLetters(this.biasAxes),
      normalizeAxes: this.normalizeAxes === null ? null : encodeLetters(this.normalizeAxes),
      ...this.configOf('nHl', 'dHl', 'subnnActivation', 'activation', 'batchNorm'),
      ...this.configOf('bnCenter', 'bnScale', 'bnMomentum', 'bnEpsilon', 'tableIdxs', 'parallelizationFactor'),
      toqConf: qconf(this.toq ?? null, this.toqConf),
    };
  }
}

tf.serialization.registerClass(QEinsumDenseT);
