/**
 * HGQ-LUT learned table layers (HGQ2 names and semantics): QDenseT, QConvT1D, QConvT2D.
 *
 * Every edge (input i → output o, at every position) carries its own small MLP 1 → d_hl (n_hl hidden layers,
 * `subnnActivation`) → 1 that becomes one logic table in hardware. Forward, as HGQ2's QDenseT.call:
 * x [..., n_in] is broadcast to [..., n_in, n_out] and quantized by the input quantizer (one type per edge);
 * each edge's MLP; optional batch norm over n_out, then ÷ √n_in; the table output quantizer `toq` (place
 * 'table'); the sum over inputs; the layer activation. QConvT* run the same on im2col patches
 * ([..., positions, kernel elements·channels], channel fastest as Keras' extract_patches).
 *
 * The sub-networks of all edges run at once: activations are kept edge-major [E, N, d] so that each hidden
 * layer is one batched matMul with the per-edge kernels [E, d, D] (E = n_in·n_out, N = batch·positions).
 *
 * `exportQuantized()` evaluates each edge's table over every value its quantized input can take with the
 * same tfjs ops as inference, so lookups equal inference bit for bit on the backend that exported them.
 */
import * as tf from '@tensorflow/tfjs';
import { quantizeTensor, type Quantizer, type QuantizerMode } from '../quantizer/index.ts';
import type { Kif } from '../fixed/types.ts';
import { QLayer, qconf, updateMovingStatistics, type QConf, type QLayerArgs, type QuantizerExport, type Shape } from './base.ts';
import { applyActivation, checkActivation, type Activation } from './dense.ts';
import { domain, lutFunction, type TableExport, type UnaryFn } from './table.ts';
import { patches, windowGeometry, type Padding, type Window1D } from './patches.ts';

/** What every table layer takes (HGQ2's table-layer arguments). */
export interface TableLayerArgs extends QLayerArgs {
  /** hidden layers of each edge's MLP (default 1) */
  nHl?: number;
  /** width of the hidden layers (default 8) */
  dHl?: number;
  /** hidden activation: tanh (QDenseT default), relu, sigmoid, linear (QConvT* default) or a registered LUT function */
  subnnActivation?: string | null;
  activation?: Activation | null;
  batchNorm?: boolean;
  bnCenter?: boolean;
  bnScale?: boolean;
  bnMomentum?: number;
  bnEpsilon?: number;
  /** (B, b): EBOPs count tables in LUT-B units built from LUT-b (default [6, 5]); one number n = (n, n) */
  tableIdxs?: number | [number, number];
  /** table output quantizer (place 'table') */
  toqConf?: QConf;
  /** −1 = all positions in parallel */
  parallelizationFactor?: number;
}

export interface QDenseTArgs extends TableLayerArgs {
  /** outputs (filters for QConvT*) */
  nOut: number;
  useBias?: boolean;
}

/** The per-edge tables of one table layer, as the tracer reads them (see README.md here). */
export interface TableLayerExport {
  op: 'table_sum';
  activation: Activation;
  /** output positions (conv) or leading per-sample axes (dense), n_in, n_out */
  positions: number[];
  nIn: number;
  nOut: number;
  /** [P·n_in]: per-sample flat input index each (position, table input) reads; −1 = zero padding */
  inputIndex: Int32Array;
  /** [P·n_in·n_out]: the table of each edge; −1 = the edge vanishes (its table output has zero bits) */
  edgeTable: Int32Array;
  /** [P·n_in·n_out]: the input quantizer element of each edge (QEinsumDenseT); absent = the edge's own index */
  quantizerIndex?: Int32Array;
  /** [P·n_out]: per-sample flat output index of (position, output) (QEinsumDenseT); absent = p·n_out + o */
  outputIndex?: Int32Array;
  tables: TableExport[];
}

const MAX_TABLE_BITS = 16;

/** One layer of every edge's sub-network: kernels [E, d_in, d_out], biases [E, 1, d_out]. */
export interface EdgeLayer {
  kernel: tf.Tensor;
  bias: tf.Tensor | null;
}

/**
 * Every edge's MLP at once on edge-major activations h [E, N, 1]: one batched matMul per layer (an elementwise
 * product where the contracted width is 1, as the einsum is), `fn` after every layer but the last.
 */
export function edgeMlps(h: tf.Tensor, fn: UnaryFn, layers: readonly EdgeLayer[]): tf.Tensor {
  layers.forEach((l, j) => {
    let y = l.kernel.shape[1] === 1 ? tf.mul(h, l.kernel) : tf.matMul(h, l.kernel);
    if (l.bias) y = tf.add(y, l.bias);
    h = j < layers.length - 1 ? fn(y) : y;
  });
  return h;
}

/**
 * HGQ2 QDenseT/QEinsumDenseT._compute_ebops with fbits (all bits incl. sign) per edge, (B, b) = tableIdxs:
 * small = 2^(bits_in − b) if bits_in ≥ b else bits_in / b; (Σ small·bits_out·2^(b−B) + Σ bits_out)·pf / n_parallel
 * (pf < 0: n_parallel).
 */
export function lutLayerEbops(
  bitsIn: tf.Tensor,
  bitsOut: tf.Tensor,
  [B, b]: readonly [number, number],
  parallelizationFactor: number,
  nParallel: number,
): tf.Scalar {
  const small = tf.where(tf.greaterEqual(bitsIn, b), tf.pow(2, tf.sub(bitsIn, b)), tf.div(bitsIn, b));
  const e = tf.add(tf.mul(tf.sum(tf.mul(small, bitsOut)), 2 ** (b - B)), tf.sum(bitsOut));
  const pf = parallelizationFactor < 0 ? nParallel : parallelizationFactor;
  return (pf === nParallel ? e : tf.mul(e, pf / nParallel)) as tf.Scalar;
}

/**
 * What QDenseT, QConvT* and QEinsumDenseT share: the per-edge sub-network settings, batch norm, the table
 * output quantizer and EBOPs parameters, parsed and checked once, and the variables they all hold.
 */
export abstract class TableLayer extends QLayer {
  readonly nHl: number;
  readonly dHl: number;
  readonly subnnActivation: string;
  readonly activation: Activation;
  readonly batchNorm: boolean;
  readonly bnCenter: boolean;
  readonly bnScale: boolean;
  readonly bnMomentum: number;
  readonly bnEpsilon: number;
  readonly tableIdxs: [number, number];
  readonly parallelizationFactor: number;
  protected readonly toqConf: QConf;
  protected readonly subnnFn: UnaryFn;
  toq!: Quantizer;
  /** hidden layers then the output layer, Keras EinsumDense shapes (each layer class says which) */
  hiddenKernels: tf.LayerVariable[] = [];
  hiddenBiases: tf.LayerVariable[] = [];
  outKernel!: tf.LayerVariable;
  outBias: tf.LayerVariable | null = null;
  bnGamma: tf.LayerVariable | null = null;
  bnBeta: tf.LayerVariable | null = null;
  movingMean: tf.LayerVariable | null = null;
  movingVariance: tf.LayerVariable | null = null;

  constructor(given: TableLayerArgs) {
    super(given);
    const args = given ?? {};
    this.nHl = this.intArg(args.nHl ?? 1, 'nHl', 0);
    this.dHl = this.intArg(args.dHl ?? 8, 'dHl', 1);
    this.subnnActivation = args.subnnActivation ?? this.defaultSubnnActivation();
    const fn = lutFunction(this.subnnActivation);
    if (!fn)
      this.fail(
        `unknown subnnActivation '${this.subnnActivation}'; use tanh, relu, sigmoid, linear or a name given to registerLutFunction`,
      );
    this.subnnFn = fn;
    this.activation = checkActivation(this, args.activation);
    this.batchNorm = args.batchNorm ?? false;
    this.bnCenter = args.bnCenter ?? true;
    this.bnScale = args.bnScale ?? true;
    this.bnMomentum = args.bnMomentum ?? 0.99;
    this.bnEpsilon = args.bnEpsilon ?? 1e-3;
    const ti = args.tableIdxs ?? [6, 5];
    this.tableIdxs = typeof ti === 'number' ? [ti, ti] : [ti[0], ti[1]];
    if (!this.tableIdxs.every((v) => Number.isInteger(v) && v >= 1))
      this.fail(`tableIdxs must be positive integers, got ${JSON.stringify(ti)}`);
    this.parallelizationFactor = args.parallelizationFactor ?? -1;
    this.toqConf = args.toqConf ?? null;
  }

  protected intArg(v: unknown, what: string, min: number): number {
    if (!Number.isInteger(v) || (v as number) < min) this.fail(`${what} must be an integer ≥ ${min}, got ${v}`);
    return v as number;
  }

  protected defaultSubnnActivation(): string {
    return 'tanh';
  }

  /** Every value a table input of type `t` can take; fails naming `what` when the table would be too large. */
  protected tableDomain(t: Kif, what: string): { min: number; step: number; n: number } {
    const d = domain(t);
    if (d.n > 2 ** MAX_TABLE_BITS)
      this.fail(
        `input type (${t.k},${t.i},${t.f}) of ${what} has 2^${Math.log2(d.n)} values; tables are limited to 2^${MAX_TABLE_BITS} entries (narrow the input quantizer)`,
      );
    return d;
  }
}

/** The type of element j of an exported quantizer. */
export function kifAt(q: QuantizerExport, j: number): Kif {
  return { k: q.k[j] as 0 | 1, i: q.i[j]!, f: q.f[j]! };
}

export class QDenseT extends TableLayer {
  static className = 'QDenseT';
  readonly nOut: number;
  readonly useBias: boolean;
  nIn = 0;
  /** per-sample shape of the dense input without n_in: positions (conv) or leading axes */
  positions: number[] = [];

  constructor(args: QDenseTArgs) {
    super(args);
    this.nOut = this.intArg(args?.nOut, 'nOut', 1);
    this.useBias = args.useBias ?? true;
  }

  protected ownArgNames(): string[] {
    return [
      'nOut',
      'nHl',
      'dHl',
      'subnnActivation',
      'activation',
      'useBias',
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

  /** The dense input shape (batch, ...positions, n_in) this layer's tables read; identity for QDenseT. */
  protected denseInputShape(s: Shape): Shape {
    if (s.length < 2) this.fail(`expects inputs of rank ≥ 2 (batch, features), got [${s}]`);
    if (s.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${s}]`);
    return s;
  }
  /** x → the dense input (im2col patches for QConvT*). */
  protected toDenseInput(x: tf.Tensor): tf.Tensor {
    return x;
  }

  protected override iqShape(s: Shape): Shape {
    return [...this.denseInputShape(s), this.nOut];
  }
  protected override beforeIq(x: tf.Tensor): tf.Tensor {
    const d = this.toDenseInput(x);
    return tf.broadcastTo(tf.expandDims(d, -1), [...d.shape, this.nOut]);
  }

  protected buildLayer([shape]: Shape[]): void {
    const ds = this.denseInputShape(shape!) as number[];
    this.nIn = ds.at(-1)!;
    this.positions = ds.slice(1, -1);
    const edge = [this.nIn, this.nOut];
    const glorot = () => tf.initializers.glorotUniform({});
    let dPrev = 1;
    for (let h = 0; h < this.nHl; h++) {
      this.hiddenKernels.push(
        this.addWeight(`hidden${h}_kernel`, [...edge, dPrev, this.dHl], 'float32', glorot(), undefined, true),
      );
      if (this.useBias)
        this.hiddenBiases.push(
          this.addWeight(`hidden${h}_bias`, [...edge, this.dHl], 'float32', tf.initializers.zeros(), undefined, true),
        );
      dPrev = this.dHl;
    }
    this.outKernel = this.addWeight('out_kernel', [...edge, dPrev], 'float32', glorot(), undefined, true);
    if (this.useBias) this.outBias = this.addWeight('out_bias', edge, 'float32', tf.initializers.zeros(), undefined, true);
    if (this.batchNorm) {
      if (this.bnScale)
        this.bnGamma = this.addWeight('bn_gamma', [this.nOut], 'float32', tf.initializers.ones(), undefined, true);
      if (this.bnCenter)
        this.bnBeta = this.addWeight('bn_beta', [this.nOut], 'float32', tf.initializers.zeros(), undefined, true);
      this.movingMean = this.addWeight('moving_mean', [this.nOut], 'float32', tf.initializers.zeros(), undefined, false);
      this.movingVariance = this.addWeight('moving_variance', [this.nOut], 'float32', tf.initializers.ones(), undefined, false);
    }
    this.toq = this.makeQuantizer('toq', this.toqConf, 'table', [...ds.map((d, a) => (a === 0 ? null : d)), this.nOut]);
    this.wqs.push(this.toq);
  }

  /**
   * Every edge's MLP on x [..., n_in, n_out] (already quantized): edge-major [E, N, d] activations, one
   * batched matMul per layer (an elementwise product where the contracted width is 1, as the einsum is).
   */
  protected subnetworks(x: tf.Tensor): tf.Tensor {
    const E = this.nIn * this.nOut;
    const N = x.size / E;
    const h = tf.expandDims(tf.transpose(tf.reshape(x, [N, E])), -1); // [E, N, 1]
    const y = edgeMlps(h, this.subnnFn, this.edgeLayers(E)); // [E, N, 1]
    return tf.reshape(tf.transpose(tf.reshape(y, [E, N])), x.shape);
  }

  /** The sub-network layers as per-edge kernels [E, d_in, d_out] and biases [E, 1, d_out]. */
  private edgeLayers(E: number): EdgeLayer[] {
    const layer = (kernel: tf.LayerVariable, bias: tf.LayerVariable | null, dIn: number, dOut: number): EdgeLayer => ({
      kernel: tf.reshape(kernel.read(), [E, dIn, dOut]),
      bias: bias ? tf.reshape(bias.read(), [E, 1, dOut]) : null,
    });
    const out: EdgeLayer[] = this.hiddenKernels.map((k, j) =>
      layer(k, this.hiddenBiases[j] ?? null, j === 0 ? 1 : this.dHl, this.dHl),
    );
    out.push(layer(this.outKernel, this.outBias, this.nHl === 0 ? 1 : this.dHl, 1));
    return out;
  }

  /** Batch norm over n_out (Keras: batch statistics in training, moving ones in inference), then ÷ √n_in. */
  protected normalize(y: tf.Tensor, training: boolean): tf.Tensor {
    if (!this.batchNorm) return y;
    let mean: tf.Tensor, variance: tf.Tensor;
    if (training && this.trainable) {
      ({ mean, variance } = tf.moments(
        y,
        y.shape.slice(0, -1).map((_, a) => a),
      ));
      updateMovingStatistics(this.movingMean!, this.movingVariance!, mean, variance, this.bnMomentum);
    } else {
      mean = this.movingMean!.read();
      variance = this.movingVariance!.read();
    }
    // Keras/JAX batch_normalization, op by op: inv = rsqrt(var + ε)·γ; x·inv + (β − mean·inv)
    let inv = tf.rsqrt(tf.add(variance, this.bnEpsilon));
    if (this.bnGamma) inv = tf.mul(inv, this.bnGamma.read());
    let res = tf.mul(tf.neg(mean), inv);
    if (this.bnBeta) res = tf.add(res, this.bnBeta.read());
    return tf.div(tf.add(tf.mul(y, inv), res), Math.fround(Math.sqrt(this.nIn)));
  }

  /** The value of every edge before its table output quantizer: MLP, batch norm, ÷ √n_in. */
  protected edgeValues(xq: tf.Tensor, training: boolean): tf.Tensor {
    return this.normalize(this.subnetworks(xq), training);
  }

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const t = this.toq.call(this.edgeValues(x!, mode === true), mode);
    return applyActivation(tf.sum(t, t.rank - 2), this.activation);
  }

  override computeOutputShape(s: Shape | Shape[]): Shape {
    return [...this.denseInputShape(s as Shape).slice(0, -1), this.nOut];
  }

  /** HGQ2 QDenseT._compute_ebops on (1, ...positions, n_in, n_out) (lutLayerEbops). */
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      const shape = [1, ...this.positions, this.nIn, this.nOut];
      const bitsOut = tf.broadcastTo(this.toq.fullBits(), shape);
      const bitsIn = this.iqs[0] ? tf.broadcastTo(this.iqs[0].fullBits(), shape) : tf.zerosLike(bitsOut);
      const nParallel = this.positions.reduce((a, d) => a * d, 1);
      return lutLayerEbops(bitsIn, bitsOut, this.tableIdxs, this.parallelizationFactor, nParallel);
    });
  }

  /** Per (position, table input): the per-sample flat index of the layer input it reads (−1: padding). */
  protected inputIndex(): Int32Array {
    const P = this.positions.reduce((a, d) => a * d, 1);
    return Int32Array.from({ length: P * this.nIn }, (_, j) => j);
  }

  protected exportLayer(): Record<string, unknown> {
    const edgeShape = [...this.positions, this.nIn, this.nOut];
    const inQ = this.exportQuantizer(this.iqs[0] ?? null, edgeShape);
    const outQ = this.exportQuantizer(this.toq, edgeShape)!;
    if (!inQ) this.fail("export needs the input quantizer (it defines each table's domain)");
    const out: TableLayerExport = {
      op: 'table_sum',
      activation: this.activation,
      positions: [...this.positions],
      nIn: this.nIn,
      nOut: this.nOut,
      inputIndex: this.inputIndex(),
      ...this.buildEdgeTables(inQ, outQ),
    };
    return out as unknown as Record<string, unknown>;
  }

  /**
   * One table per distinct (edge (i, o), input type, output type): the edge's MLP over the input type's whole
   * domain, through the same tfjs ops as inference, quantized by the output type. Domains of all edges are
   * evaluated together, padded to a common length, one distinct input type per edge per round.
   */
  private buildEdgeTables(inQ: QuantizerExport, outQ: QuantizerExport): { edgeTable: Int32Array; tables: TableExport[] } {
    const E = this.nIn * this.nOut;
    const n = inQ.k.length;
    const key = (t: Kif) => `${t.k},${t.i},${t.f}`;
    /** per edge: distinct input types, in order of first use */
    const inTypes: Map<string, Kif>[] = Array.from({ length: E }, () => new Map());
    for (let j = 0; j < n; j++) {
      const t = kifAt(inQ, j);
      this.tableDomain(t, `edge ${j % E}`);
      inTypes[j % E]!.set(key(t), t);
    }
    /** float values (before toq) per edge and input type */
    const raw = new Map<string, Float32Array>();
    const rounds = Math.max(...inTypes.map((m) => m.size));
    for (let r = 0; r < rounds; r++) {
      const types = inTypes.map((m) => [...m.values()][r] ?? [...m.values()][0]!);
      const doms = types.map(domain);
      const M = Math.max(...doms.map((d) => d.n));
      const xs = new Float32Array(M * E);
      for (let e = 0; e < E; e++)
        for (let m = 0; m < M; m++) xs[m * E + e] = doms[e]!.min + Math.min(m, doms[e]!.n - 1) * doms[e]!.step;
      // rows in chunks: the MLP activations take E·rows·d_hl floats
      const ys = new Float32Array(M * E);
      const rows = Math.max(1, Math.floor(2 ** 22 / (E * Math.max(this.dHl, 1))));
      for (let m0 = 0; m0 < M; m0 += rows) {
        const m1 = Math.min(M, m0 + rows);
        ys.set(
          tf.tidy(
            () =>
              this.edgeValues(
                tf.tensor(xs.subarray(m0 * E, m1 * E), [m1 - m0, this.nIn, this.nOut]),
                false,
              ).dataSync() as Float32Array,
          ),
          m0 * E,
        );
      }
      for (let e = 0; e < E; e++) {
        const col = new Float32Array(doms[e]!.n);
        for (let m = 0; m < col.length; m++) col[m] = ys[m * E + e]!;
        raw.set(`${e}|${key(types[e]!)}`, col);
      }
    }
    const tables: TableExport[] = [];
    const index = new Map<string, number>();
    const edgeTable = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      const a = kifAt(inQ, j);
      const b = kifAt(outQ, j);
      if (b.k + b.i + b.f <= 0) {
        edgeTable[j] = -1;
        continue;
      }
      const k = `${j % E}|${key(a)}|${key(b)}`;
      let t = index.get(k);
      if (t === undefined) {
        const col = raw.get(`${j % E}|${key(a)}`)!;
        const d = domain(a);
        const values = tf.tidy(() =>
          quantizeTensor(tf.tensor(col), tf.scalar(b.k), tf.scalar(b.i), tf.scalar(b.f), outQ.round, outQ.overflow).dataSync(),
        );
        t = tables.length;
        tables.push({
          input: a,
          output: b,
          min: d.min,
          step: d.step,
          values: Float64Array.from(values),
        });
        index.set(k, t);
      }
      edgeTable[j] = t;
    }
    return { edgeTable, tables };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...this.configOf('nOut', 'nHl', 'dHl', 'subnnActivation', 'activation', 'useBias', 'batchNorm'),
      ...this.configOf('bnCenter', 'bnScale', 'bnMomentum', 'bnEpsilon', 'tableIdxs', 'parallelizationFactor'),
      toqConf: qconf(this.toq ?? null, this.toqConf),
    };
  }
}

export interface QConvTArgs extends Omit<QDenseTArgs, 'nOut'> {
  filters: number;
  kernelSize: number | number[];
  strides?: number | number[];
  padding?: Padding;
}

/** QConvT1D / QConvT2D: QDenseT on im2col patches, one edge per (output position, patch element, filter). */
abstract class QConvTBase extends QDenseT {
  readonly filters: number;
  readonly kernelSize: number[];
  readonly strides: number[];
  readonly padding: Padding;
  private geoms: Window1D[] = [];

  protected abstract rank(): number;

  constructor(args: QConvTArgs) {
    const { filters, kernelSize, strides, padding, ...rest } = args ?? ({} as QConvTArgs);
    super({ ...rest, nOut: filters } as QDenseTArgs);
    this.filters = filters;
    const r = this.rank();
    const tuple = (v: number | number[] | undefined, what: string): number[] => {
      const t = v === undefined ? new Array<number>(r).fill(1) : typeof v === 'number' ? new Array<number>(r).fill(v) : [...v];
      if (t.length !== r || t.some((d) => !Number.isInteger(d) || d < 1))
        this.fail(`${what} must be ${r} positive integer(s), got ${JSON.stringify(v)}`);
      return t;
    };
    this.kernelSize = tuple(kernelSize, 'kernelSize');
    this.strides = tuple(strides, 'strides');
    this.padding = padding ?? 'valid';
    if (this.padding !== 'valid' && this.padding !== 'same') this.fail(`padding must be 'valid' or 'same', got '${padding}'`);
  }

  protected override defaultSubnnActivation(): string {
    return 'linear';
  }
  protected override ownArgNames(): string[] {
    return [...super.ownArgNames(), 'filters', 'kernelSize', 'strides', 'padding'];
  }

  protected override denseInputShape(s: Shape): Shape {
    const r = this.rank();
    if (s.length !== r + 2 || s.slice(1).some((d) => d === null))
      this.fail(`expects inputs [batch, ${r === 1 ? 'length' : 'height, width'}, channels] of known size, got [${s}]`);
    this.geoms = s.slice(1, -1).map((n, a) => {
      try {
        return windowGeometry(n!, this.kernelSize[a]!, this.strides[a]!, this.padding);
      } catch (e) {
        return this.fail((e as Error).message);
      }
    });
    const k = this.kernelSize.reduce((a, d) => a * d, 1);
    return [s[0]!, ...this.geoms.map((g) => g.out), k * s.at(-1)!];
  }
  protected override toDenseInput(x: tf.Tensor): tf.Tensor {
    const p = patches(x, this.geoms);
    return tf.reshape(p, [...p.shape.slice(0, -2), p.shape.at(-2)! * p.shape.at(-1)!]);
  }

  protected override inputIndex(): Int32Array {
    const inShape = this.builtInputShapes[0]!.slice(1) as number[];
    const C = inShape.at(-1)!;
    const P = this.positions.reduce((a, d) => a * d, 1);
    const K = this.kernelSize.reduce((a, d) => a * d, 1);
    const out = new Int32Array(P * K * C);
    const r = this.rank();
    for (let p = 0; p < P; p++) {
      const pos = unravel(p, this.positions);
      for (let k = 0; k < K; k++) {
        const off = unravel(k, this.kernelSize);
        let flat = 0;
        let inside = true;
        for (let a = 0; a < r; a++) {
          const g = this.geoms[a]!;
          const c = pos[a]! * g.s + off[a]! - g.padBefore;
          if (c < 0 || c >= g.in) inside = false;
          flat = flat * g.in + c;
        }
        for (let c = 0; c < C; c++) out[(p * K + k) * C + c] = inside ? flat * C + c : -1;
      }
    }
    return out;
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { nOut: _n, ...base } = super.getConfig();
    void _n;
    return {
      ...base,
      ...this.configOf('filters', 'kernelSize', 'strides', 'padding'),
    };
  }
}

function unravel(j: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    out[a] = j % shape[a]!;
    j = Math.floor(j / shape[a]!);
  }
  return out;
}

export class QConvT1D extends QConvTBase {
  static override className = 'QConvT1D';
  protected rank(): number {
    return 1;
  }
}

export class QConvT2D extends QConvTBase {
  static override className = 'QConvT2D';
  protected rank(): number {
    return 2;
  }
}

tf.serialization.registerClass(QDenseT);
tf.serialization.registerClass(QConvT1D);
tf.serialization.registerClass(QConvT2D);
