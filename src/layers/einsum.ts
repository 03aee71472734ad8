/**
 * QEinsumDense and QEinsumDenseBatchnorm (HGQ2 names and semantics; Keras EinsumDense arguments).
 *
 * `equation` is '<input>,<kernel>-><output>' with one letter per axis; the input's and the output's first
 * letter is the batch axis. Letters in input and kernel but not the output are contracted (any number), letters
 * in all three are "grouped" (a separate kernel slice per group, a batched matmul). The einsum is computed as
 * transpose + reshape + matmul, so it trains on wasm (which has no Einsum kernel). Not supported (clear error):
 * '...', repeated letters, a letter summed within one operand only, the batch letter in the kernel.
 *
 * QEinsumDenseBatchnorm folds batch normalization of the einsum output into the quantized kernel and bias
 * exactly as HGQ2 (einsum_dense_batchnorm.py): scaler = γ / sqrt(var + 1e-7) — Keras' backend epsilon, not the
 * layer's `epsilon` — fused kernel = kernel·scaler along the normalized axes, fused bias = bias + (−mean·scaler),
 * then kq / bq quantize the fused values. Training uses the batch moments of einsum(iq(x), kernel) (unquantized
 * kernel) and moves the statistics by `momentum` (0.99); inference and calibration use the moving statistics.
 */
import * as tf from '@tensorflow/tfjs';
import type { QuantizerMode } from '../quantizer/index.ts';
import { updateMovingStatistics, type ConstExport, type Shape } from './base.ts';
import { applyActivation, checkActivation, type Activation } from './dense.ts';
import { KERNEL_ARG_NAMES, type KernelLayerArgs, QKernelLayer } from './kernel.ts';
import { matMul2d } from './matmul.ts';

/** Keras backend epsilon(): what HGQ2's batch-norm fold adds to the variance. */
export const FOLD_EPSILON = 1e-7;

const prod = (a: readonly number[]): number => a.reduce((x, y) => x * y, 1);

/**
 * tfjs-layers snake-cases every string of a saved config and camel-cases it on load ('bC' → 'b_c' → 'bC',
 * but 'C' → 'c'), so configs store each capital letter X as '^x'; the constructor accepts both spellings.
 */
export function encodeLetters(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `^${c.toLowerCase()}`);
}
export function decodeLetters(s: string): string {
  return s.replace(/\^([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A parsed einsum equation and how it maps onto one (batched) matmul. */
export interface EinsumPlan {
  equation: string;
  inSpec: string;
  kerSpec: string;
  outSpec: string;
  /** letter classes: G in all three, I input+output, K input+kernel (contracted), J kernel+output */
  G: string;
  I: string;
  K: string;
  J: string;
}

export function parseEinsumEquation(equation: string, who = 'einsum'): EinsumPlan {
  const bad = (why: string): never => {
    throw new Error(`${who}: equation '${equation}' is not supported: ${why}`);
  };
  if (typeof equation !== 'string') bad('expected a string like "bc,cC->bC"');
  const eq = decodeLetters(equation.replace(/\s+/g, ''));
  if (eq.includes('...')) bad("ellipsis ('...') is not supported; write every axis with its own letter");
  const m = /^([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$/.exec(eq);
  if (!m) bad('expected exactly two operands and an output, e.g. "bc,cC->bC" or "bnc,cC->bnC"');
  const [, inSpec, kerSpec, outSpec] = m as unknown as [string, string, string, string];
  for (const [s, what] of [
    [inSpec, 'input'],
    [kerSpec, 'kernel'],
    [outSpec, 'output'],
  ] as const) {
    if (new Set(s).size !== s.length) bad(`the ${what} spec '${s}' repeats a letter (traces/diagonals are not supported)`);
  }
  if (inSpec[0] !== outSpec[0])
    bad(`the first letter of the input ('${inSpec[0]}') and of the output ('${outSpec[0]}') must be the same batch axis`);
  if (kerSpec.includes(inSpec[0]!)) bad(`the batch letter '${inSpec[0]}' cannot appear in the kernel`);
  for (const c of outSpec) if (!inSpec.includes(c) && !kerSpec.includes(c)) bad(`output letter '${c}' appears in no operand`);
  for (const c of inSpec)
    if (!kerSpec.includes(c) && !outSpec.includes(c)) bad(`input letter '${c}' is summed within the input alone`);
  for (const c of kerSpec)
    if (!inSpec.includes(c) && !outSpec.includes(c)) bad(`kernel letter '${c}' is summed within the kernel alone`);
  const G = [...outSpec].filter((c) => inSpec.includes(c) && kerSpec.includes(c)).join('');
  const I = [...outSpec].filter((c) => inSpec.includes(c) && !kerSpec.includes(c)).join('');
  const K = [...inSpec].filter((c) => kerSpec.includes(c) && !outSpec.includes(c)).join('');
  const J = [...outSpec].filter((c) => kerSpec.includes(c) && !inSpec.includes(c)).join('');
  if (!K.length) bad('no axis is contracted (an outer product is not a dense layer)');
  return { equation: eq, inSpec, kerSpec, outSpec, G, I, K, J };
}

/** Permutation taking axes labelled `from` into the order `to` (both strings of the same letters). */
function perm(from: string, to: string): number[] {
  return [...to].map((c) => from.indexOf(c));
}
const isIdentity = (p: number[]): boolean => p.every((v, j) => v === j);
const transpose = (x: tf.Tensor, p: number[]): tf.Tensor => (isIdentity(p) ? x : tf.transpose(x, p));

/** einsum(plan, x, k) through transpose + reshape + matmul. `dims` maps every letter but the batch to its size. */
export function einsumMatmul(plan: EinsumPlan, x: tf.Tensor, k: tf.Tensor, dims: Record<string, number>): tf.Tensor {
  const { G, I, K, J, inSpec, kerSpec, outSpec } = plan;
  const size = (s: string) => prod([...s].map((c) => (c === inSpec[0] ? x.shape[0]! : dims[c]!)));
  const xt = transpose(x, perm(inSpec, G + I + K));
  const kt = transpose(k, perm(kerSpec, G + K + J));
  let y: tf.Tensor;
  if (!G.length) {
    y = matMul2d(tf.reshape(xt, [size(I), size(K)]), tf.reshape(kt, [size(K), size(J)]));
  } else {
    y = tf.matMul(
      tf.reshape(xt, [size(G), size(I), size(K)]) as tf.Tensor3D,
      tf.reshape(kt, [size(G), size(K), size(J)]) as tf.Tensor3D,
    );
  }
  const mid = G + I + J;
  y = tf.reshape(
    y,
    [...mid].map((c) => (c === inSpec[0] ? x.shape[0]! : dims[c]!)),
  );
  return transpose(y, perm(mid, outSpec));
}

/** Keras `_analyze_einsum_string` bias shape: from the first bias letter in the output to its end, 1 elsewhere. */
export function biasShapeFor(outSpec: string, axes: string, outDims: number[]): number[] {
  const first = Math.min(...[...axes].map((c) => outSpec.indexOf(c)));
  return [...outSpec.slice(first)].map((c, j) => (axes.includes(c) ? outDims[first + j]! : 1));
}

export interface QEinsumDenseArgs extends KernelLayerArgs {
  equation: string;
  /** per-sample output shape (Keras `output_shape`, batch excluded); a single number for a rank-2 output */
  outputShape: number | (number | null)[];
  activation?: Activation | null;
  /** output letters that carry a bias (Keras `bias_axes`), null/absent = no bias */
  biasAxes?: string | null;
  /** HGQ2's `ebops_scaler`: multiplies this layer's EBOPs (default 1) */
  ebopsScaler?: number;
}

/**
 * An einsum as a dense layer applied at `positions` places (the `matmul` entry of its export, which the tracer
 * reads): out[outputIndex[p·units + u]] = Σ_c in[inputIndex[p·nIn + c]] · kernel[c·units + u] + bias[outputIndex[…]]
 * with per-sample row-major flat indices, `kernel` reshaped to [nIn, units] and `bias` broadcast to the output.
 */
export interface EinsumMatmulView {
  positions: number;
  nIn: number;
  units: number;
  inputIndex: Int32Array;
  outputIndex: Int32Array;
  kernel: ConstExport;
  bias: ConstExport | null;
}

export class QEinsumDense extends QKernelLayer {
  static className = 'QEinsumDense';
  readonly equation: string;
  readonly plan: EinsumPlan;
  /** Keras' `partial_output_shape` (the `outputShape` argument; `outputShape` is tfjs' own getter) */
  readonly partialOutputShape: (number | null)[];
  readonly activation: Activation;
  readonly biasAxes: string | null;
  readonly ebopsScaler: number;
  /** size of every non-batch letter, from the built input shape and `outputShape` */
  dims: Record<string, number> = {};
  kernelShape: number[] = [];
  biasShape: number[] | null = null;
  /** per-sample output shape */
  outDims: number[] = [];

  constructor(args: QEinsumDenseArgs) {
    super(args);
    this.plan = parseEinsumEquation(args?.equation, `${this.getClassName()} '${this.name}'`);
    this.equation = this.plan.equation;
    const os = args.outputShape;
    const osl =
      typeof os === 'number'
        ? [os]
        : Array.isArray(os)
          ? [...os]
          : this.fail(`outputShape must be a number or a list (the per-sample output shape), got ${JSON.stringify(os)}`);
    if (osl.length !== this.plan.outSpec.length - 1) {
      this.fail(
        `outputShape [${osl}] must have ${this.plan.outSpec.length - 1} entries (the output '${this.plan.outSpec}' without its batch axis)`,
      );
    }
    if (osl.some((d) => d !== null && (!Number.isInteger(d) || d < 1)))
      this.fail(`outputShape entries must be positive integers or null, got [${osl}]`);
    this.partialOutputShape = osl;
    this.activation = checkActivation(this, args.activation);
    this.biasAxes = typeof args.biasAxes === 'string' ? decodeLetters(args.biasAxes) : (args.biasAxes ?? null);
    if (this.biasAxes !== null) {
      if (typeof this.biasAxes !== 'string' || !this.biasAxes.length)
        this.fail(`biasAxes must be a string of output letters, got ${JSON.stringify(args.biasAxes)}`);
      for (const c of this.biasAxes)
        if (!this.plan.outSpec.slice(1).includes(c))
          this.fail(`bias axis '${c}' is not a non-batch letter of the output '${this.plan.outSpec}'`);
    }
    this.ebopsScaler = args.ebopsScaler ?? 1;
    if (!Number.isFinite(this.ebopsScaler) || this.ebopsScaler < 0)
      this.fail(`ebopsScaler must be finite and ≥ 0, got ${args.ebopsScaler}`);
  }

  protected ownArgNames(): string[] {
    return ['equation', 'outputShape', 'activation', 'biasAxes', 'ebopsScaler', ...KERNEL_ARG_NAMES];
  }

  /** Letter sizes from an input shape (and outputShape for kernel-only letters); checks consistency. */
  private resolveDims(shape: Shape): { dims: Record<string, number>; out: number[] } {
    const { inSpec, outSpec } = this.plan;
    if (shape.length !== inSpec.length)
      this.fail(`input of rank ${shape.length} ([${shape}]) does not match the equation's input '${inSpec}'`);
    const dims: Record<string, number> = {};
    for (let a = 1; a < inSpec.length; a++) {
      const d = shape[a];
      if (d === null || d === undefined) this.fail(`input axis ${a} ('${inSpec[a]}') must have a known size, got [${shape}]`);
      dims[inSpec[a]!] = d;
    }
    for (let a = 1; a < outSpec.length; a++) {
      const c = outSpec[a]!;
      const want = this.partialOutputShape[a - 1];
      if (dims[c] === undefined) {
        if (want === null || want === undefined)
          this.fail(`outputShape must give the size of output axis '${c}' (it is not an input axis)`);
        dims[c] = want;
      } else if (want !== null && want !== undefined && want !== dims[c]) {
        this.fail(`outputShape says axis '${c}' has size ${want}, but the input has ${dims[c]}`);
      }
    }
    return { dims, out: [...outSpec.slice(1)].map((c) => dims[c]!) };
  }

  protected buildLayer([shape]: Shape[]): void {
    const { dims, out } = this.resolveDims(shape!);
    this.dims = dims;
    this.outDims = out;
    this.kernelShape = [...this.plan.kerSpec].map((c) => dims[c]!);
    if (this.biasAxes !== null) this.biasShape = biasShapeFor(this.plan.outSpec, this.biasAxes, [1, ...out]);
    this.addKernelAndBias(this.kernelShape, this.biasShape, this.biasTrainable());
    this.buildExtra();
  }

  protected biasTrainable(): boolean {
    return true;
  }
  /** Subclass hook: more weights after kernel and bias. */
  protected buildExtra(): void {}

  /** The quantized kernel and bias used by the forward pass (the batch-norm variant folds first). */
  protected qWeights(mode: QuantizerMode, _qx: tf.Tensor): { k: tf.Tensor; b: tf.Tensor | null } {
    const m = mode === true;
    return { k: this.kq.call(this.kernel.read(), m), b: this.bq ? this.bq.call(this.bias!.read(), m) : null };
  }

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const { k, b } = this.qWeights(mode, x!);
    let y = einsumMatmul(this.plan, x!, k, this.dims);
    if (b) y = tf.add(y, b);
    return applyActivation(y, this.activation);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = inputShape as Shape;
    return [s[0] ?? null, ...this.resolveDims(s).out];
  }

  /**
   * HGQ2 QEinsumDense._compute_ebops: einsum('<in>,<ker>->', bits_in, bits_kernel) + mean(bits_bias)·Π output,
   * times ebops_scaler. The first term is the sum of the forward einsum of the bit maps (every letter is either
   * contracted or kept); mean·size is written Σ·(size/bias size) so it stays an exact integer.
   */
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      const inShape = [1, ...(this.builtInputShapes[0]!.slice(1) as number[])];
      const bitsIn = this.iqs[0] ? this.iqs[0].bitsFor(inShape) : tf.zeros(inShape);
      let e: tf.Tensor = tf.sum(einsumMatmul(this.plan, bitsIn, this.kq.bits(), this.dims));
      if (this.bq) e = tf.add(e, tf.mul(tf.sum(this.bq.bitsFor(this.biasShape!)), prod(this.outDims) / prod(this.biasShape!)));
      return (this.ebopsScaler === 1 ? e : tf.mul(e, this.ebopsScaler)) as tf.Scalar;
    });
  }

  /** Kernel and bias (before kq/bq) as used in inference: the raw weights here, folded in the batch-norm variant. */
  protected inferenceWeights(): { k: tf.Tensor; b: tf.Tensor | null } {
    return { k: tf.clone(this.kernel.read()), b: this.bias ? tf.clone(this.bias.read()) : null };
  }

  protected exportLayer(): Record<string, unknown> {
    const { k, b } = this.inferenceWeights();
    try {
      const kernel = this.exportWeight(this.kq, k);
      const bias = this.bq ? this.exportWeight(this.bq, b!) : null;
      return { equation: this.equation, activation: this.activation, kernel, bias, matmul: this.matmulView(kernel, bias) };
    } finally {
      tf.dispose([k, ...(b ? [b] : [])]);
    }
  }

  /** The einsum as a dense layer applied at positions (see EinsumMatmulView), or null for grouped letters. */
  private matmulView(kernel: ConstExport, bias: ConstExport | null): EinsumMatmulView | null {
    const { G, I, K, J, inSpec, kerSpec, outSpec } = this.plan;
    if (G.length) return null;
    const d = (c: string) => this.dims[c]!;
    const Iw = I.slice(1); // I without the batch letter (always first: it leads the output)
    const Isz = [...Iw].map(d),
      Ksz = [...K].map(d),
      Jsz = [...J].map(d);
    const positions = prod(Isz),
      nIn = prod(Ksz),
      units = prod(Jsz);
    const stridesOf = (spec: string) => {
      const s: Record<string, number> = {};
      let acc = 1;
      for (let a = spec.length - 1; a >= 1; a--) {
        s[spec[a]!] = acc;
        acc *= d(spec[a]!);
      }
      return s;
    };
    const kStr: Record<string, number> = {};
    {
      let acc = 1;
      for (let a = kerSpec.length - 1; a >= 0; a--) {
        kStr[kerSpec[a]!] = acc;
        acc *= d(kerSpec[a]!);
      }
    }
    const inStr = stridesOf(inSpec),
      outStr = stridesOf(outSpec);
    const unravel = (n: number, letters: string, sizes: number[]): Record<string, number> => {
      const r: Record<string, number> = {};
      for (let a = letters.length - 1; a >= 0; a--) {
        r[letters[a]!] = n % sizes[a]!;
        n = Math.floor(n / sizes[a]!);
      }
      return r;
    };
    const at = (idx: Record<string, number>, str: Record<string, number>) =>
      Object.entries(idx).reduce((s, [c, v]) => s + (str[c] ?? 0) * v, 0);
    const inputIndex = new Int32Array(positions * nIn);
    const outputIndex = new Int32Array(positions * units);
    for (let p = 0; p < positions; p++) {
      const ip = unravel(p, Iw, Isz);
      for (let c = 0; c < nIn; c++) inputIndex[p * nIn + c] = at({ ...ip, ...unravel(c, K, Ksz) }, inStr);
      for (let u = 0; u < units; u++) outputIndex[p * units + u] = at({ ...ip, ...unravel(u, J, Jsz) }, outStr);
    }
    // kernel [K..., J...] row-major, with its exact types
    const n = nIn * units;
    const kv = new Float64Array(n);
    const quant = { ...kernel.quant, shape: [nIn, units], k: new Uint8Array(n), i: new Int32Array(n), f: new Int32Array(n) };
    for (let c = 0; c < nIn; c++) {
      const kc = unravel(c, K, Ksz);
      for (let u = 0; u < units; u++) {
        const src = at({ ...kc, ...unravel(u, J, Jsz) }, kStr);
        const dst = c * units + u;
        kv[dst] = kernel.values[src]!;
        quant.k[dst] = kernel.quant.k[src]!;
        quant.i[dst] = kernel.quant.i[src]!;
        quant.f[dst] = kernel.quant.f[src]!;
      }
    }
    let biasFull: ConstExport | null = null;
    if (bias) {
      // broadcast the bias (right-aligned, Keras bias shape) to the per-sample output
      const out = this.outDims;
      const bs = bias.shape;
      const m = prod(out);
      const bv = new Float64Array(m);
      const bq = { ...bias.quant, shape: [...out], k: new Uint8Array(m), i: new Int32Array(m), f: new Int32Array(m) };
      for (let o = 0; o < m; o++) {
        let rem = o,
          src = 0,
          bstride = 1;
        for (let a = out.length - 1, ba = bs.length - 1; a >= 0; a--, ba--) {
          const coord = rem % out[a]!;
          rem = Math.floor(rem / out[a]!);
          if (ba >= 0) {
            if (bs[ba]! !== 1) src += coord * bstride;
            bstride *= bs[ba]!;
          }
        }
        bv[o] = bias.values[src]!;
        bq.k[o] = bias.quant.k[src]!;
        bq.i[o] = bias.quant.i[src]!;
        bq.f[o] = bias.quant.f[src]!;
      }
      biasFull = { shape: [...out], values: bv, quant: bq };
    }
    return { positions, nIn, units, inputIndex, outputIndex, kernel: { shape: [nIn, units], values: kv, quant }, bias: biasFull };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      equation: encodeLetters(this.equation),
      outputShape: [...this.partialOutputShape],
      activation: this.activation,
      biasAxes: this.biasAxes === null ? null : encodeLetters(this.biasAxes),
      ...this.kernelConfig(),
      ebopsScaler: this.ebopsScaler,
    };
  }
}

export interface QEinsumDenseBatchnormArgs extends QEinsumDenseArgs {
  /** output letters normalized (default: biasAxes) */
  normalizeAxes?: string | null;
  momentum?: number;
  /** kept for Keras/HGQ2 config parity; the fold uses Keras' backend epsilon 1e-7 exactly as HGQ2 does */
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
}

export class QEinsumDenseBatchnorm extends QEinsumDense {
  static override className = 'QEinsumDenseBatchnorm';
  readonly normalizeAxes: string;
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  gamma: tf.LayerVariable | null = null;
  movingMean!: tf.LayerVariable;
  movingVariance!: tf.LayerVariable;
  /** shape of γ and the statistics: the normalized output axes, in output order */
  normShape: number[] = [];
  /** normalized letters in kernel order (HGQ2's fused kernel equation) */
  private normKerOrder = '';
  /** reduction axes of the batch moments (output axes not normalized, batch included) */
  private reductionAxes: number[] = [];
  /** the offset's broadcast shape (Keras bias shape of the normalized axes) */
  private offsetShape: number[] = [];

  constructor(args: QEinsumDenseBatchnormArgs) {
    super(args);
    if (this.biasAxes === null) this.fail('biasAxes is required (the folded batch norm needs a bias), e.g. biasAxes: "C"');
    this.normalizeAxes = typeof args.normalizeAxes === 'string' ? decodeLetters(args.normalizeAxes) : this.biasAxes;
    const { kerSpec, outSpec } = this.plan;
    for (const c of this.normalizeAxes) {
      if (!kerSpec.includes(c)) this.fail(`normalize axis '${c}' is not a kernel axis of '${this.equation}'`);
      if (!outSpec.includes(c)) this.fail(`normalize axis '${c}' is not an output axis of '${this.equation}'`);
      if (!this.biasAxes.includes(c)) this.fail(`normalize axis '${c}' is not a bias axis ('${this.biasAxes}')`);
    }
    const inKer = [...kerSpec].filter((c) => this.normalizeAxes.includes(c)).join('');
    const inOut = [...outSpec].filter((c) => this.normalizeAxes.includes(c)).join('');
    if (inKer !== inOut)
      this.fail(`normalize axes must appear in the same order in the kernel and the output ('${inKer}' vs '${inOut}')`);
    this.normKerOrder = inKer;
    this.momentum = args.momentum ?? 0.99;
    this.epsilon = args.epsilon ?? 1e-3;
    this.center = args.center ?? true;
    this.scale = args.scale ?? true;
    if (!(this.momentum >= 0 && this.momentum < 1)) this.fail(`momentum must be in [0, 1), got ${args.momentum}`);
    if (!(this.epsilon > 0)) this.fail(`epsilon must be > 0, got ${args.epsilon}`);
  }

  protected override ownArgNames(): string[] {
    return [...super.ownArgNames(), 'normalizeAxes', 'momentum', 'epsilon', 'center', 'scale'];
  }

  protected override biasTrainable(): boolean {
    return this.center;
  }

  protected override buildExtra(): void {
    const { outSpec } = this.plan;
    const letters = [...outSpec].map((c, a) => ({ c, a })).filter(({ c }) => this.normalizeAxes.includes(c));
    this.normShape = letters.map(({ c }) => this.dims[c]!);
    this.reductionAxes = [...outSpec].map((_, a) => a).filter((a) => !this.normalizeAxes.includes(outSpec[a]!));
    this.offsetShape = biasShapeFor(outSpec, this.normalizeAxes, [1, ...this.outDims]);
    if (this.scale) this.gamma = this.addWeight('bn_gamma', this.normShape, 'float32', tf.initializers.ones(), undefined, true);
    this.movingMean = this.addWeight('moving_mean', this.normShape, 'float32', tf.initializers.zeros(), undefined, false);
    this.movingVariance = this.addWeight('moving_variance', this.normShape, 'float32', tf.initializers.ones(), undefined, false);
  }

  /**
   * HGQ2 get_fused_qkernel_and_qbias before the quantizers, op by op in float32 (each tfjs op rounds to
   * float32 like TF): scaler = γ / sqrt(var + ε); kernel·scaler; bias + reshape(−mean·scaler).
   */
  fold(mean: tf.Tensor, variance: tf.Tensor): { k: tf.Tensor; b: tf.Tensor } {
    return tf.tidy(() => {
      const sq = tf.sqrt(tf.add(variance, tf.scalar(FOLD_EPSILON)));
      const scaler = this.gamma ? tf.div(this.gamma.read(), sq) : tf.div(tf.scalar(1), sq);
      const { kerSpec } = this.plan;
      const kShape = [...kerSpec].map((c) => (this.normKerOrder.includes(c) ? this.dims[c]! : 1));
      const k = tf.mul(this.kernel.read(), tf.reshape(scaler, kShape));
      const offset = tf.reshape(tf.mul(tf.neg(mean), scaler), this.offsetShape);
      const b = tf.add(this.bias!.read(), offset);
      return { k, b };
    }) as unknown as { k: tf.Tensor; b: tf.Tensor };
  }

  protected override qWeights(mode: QuantizerMode, qx: tf.Tensor): { k: tf.Tensor; b: tf.Tensor } {
    const training = mode === true;
    let mean: tf.Tensor, variance: tf.Tensor;
    if (training && this.trainable) {
      const x = einsumMatmul(this.plan, qx, this.kernel.read(), this.dims);
      ({ mean, variance } = tf.moments(x, this.reductionAxes));
      updateMovingStatistics(this.movingMean, this.movingVariance, mean, variance, this.momentum);
    } else {
      mean = this.movingMean.read();
      variance = this.movingVariance.read();
    }
    const { k, b } = this.fold(mean, variance);
    return { k: this.kq.call(k, training), b: this.bq!.call(b, training) };
  }

  protected override inferenceWeights(): { k: tf.Tensor; b: tf.Tensor } {
    return this.fold(this.movingMean.read(), this.movingVariance.read());
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      normalizeAxes: encodeLetters(this.normalizeAxes),
      ...this.configOf('momentum', 'epsilon', 'center', 'scale'),
    };
  }
}

tf.serialization.registerClass(QEinsumDense);
tf.serialization.registerClass(QEinsumDenseBatchnorm);
