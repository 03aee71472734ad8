/**
 * Table layers (HGQ2 names): QUnaryFunctionLUT — any unary function realized as a table over every value its
 * quantized input can take, with a quantized output — and QSoftmax built from two such tables (exp of
 * max − x, then the reciprocal of the sum).
 *
 * Exactness: the inference output is oq(f(iq(x))) computed by tfjs elementwise; `exportQuantized()` builds
 * each table by running the very same tfjs ops on the backend in use over the input type's whole domain,
 * so table lookups reproduce inference bit for bit (on that backend).
 */
import * as tf from '@tensorflow/tfjs';
import type { Quantizer, QuantizerMode } from '../quantizer/index.ts';
import { quantizeTensor } from '../quantizer/index.ts';
import type { Kif } from '../fixed/types.ts';
import { QLayer, qconf, type QConf, type QLayerArgs, type QuantizerExport, type Shape } from './base.ts';

export type UnaryFn = (x: tf.Tensor) => tf.Tensor;

const FUNCTIONS = new Map<string, UnaryFn>([
  ['tanh', (x) => tf.tanh(x)],
  ['sigmoid', (x) => tf.sigmoid(x)],
  ['exp', (x) => tf.exp(x)],
  ['relu', (x) => tf.relu(x)],
  ['softplus', (x) => tf.softplus(x)],
  ['square', (x) => tf.square(x)],
  ['abs', (x) => tf.abs(x)],
  ['sin', (x) => tf.sin(x)],
  ['cos', (x) => tf.cos(x)],
  ['linear', (x) => x],
]);

/** Registers a user function under a name, so layers using it can be saved and loaded by that name. */
export function registerLutFunction(name: string, fn: UnaryFn): void {
  if (!/^[A-Za-z][\w.-]*$/.test(name)) throw new Error(`registerLutFunction: bad name '${name}' (letters, digits, _ . -)`);
  FUNCTIONS.set(name, fn);
}

/**
 * HGQ2's table cost: extra = in_bits − 6 (LUT6 inputs); per element
 * out_bits·max(1.5625 − 0.109375·out_bits, 1)·2^max(extra, 0), or 0.5·2^extra when extra > 6.
 */
export function tableEbops(inBits: tf.Tensor, outBits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const extra = tf.sub(inBits, 6);
    const small = tf.mul(
      tf.mul(outBits, tf.maximum(tf.sub(1.5625, tf.mul(outBits, 0.109375)), 1)),
      tf.pow(2, tf.maximum(extra, 0)),
    );
    const large = tf.mul(tf.pow(2, extra), 0.5);
    return tf.sum(tf.where(tf.greater(extra, 6), large, small)) as tf.Scalar;
  });
}

/** One lookup table: the input type's domain (min + j·step, j = 0..n−1) mapped to exact outputs. */
export interface TableExport {
  input: Kif;
  output: Kif;
  /** first domain value and step: entry j is the output for input min + j·step */
  min: number;
  step: number;
  values: Float64Array;
}

const MAX_TABLE_BITS = 20;

/** A registered unary function by name, or undefined. */
export function lutFunction(name: string): UnaryFn | undefined {
  return FUNCTIONS.get(name);
}

/** Domain of a fixed-point type: every value it holds, ascending, as min + j·step for j < n. */
export function domain(t: Kif): { min: number; step: number; n: number } {
  const w = t.k + t.i + t.f;
  if (w <= 0) return { min: 0, step: 1, n: 1 };
  const i = Math.max(t.i, -t.f);
  const step = 2 ** -t.f;
  const min = -t.k * 2 ** i;
  const n = 2 ** (t.k + i + t.f);
  return { min, step, n };
}

/**
 * Tables for every distinct (input type, output type) pair among `inQ`/`outQ` elements, with `fn` evaluated
 * in tfjs exactly as in inference. Returns the tables and, per element, the index of its table.
 */
function buildTables(
  inQ: QuantizerExport,
  outQ: QuantizerExport,
  fn: (x: tf.Tensor) => tf.Tensor,
  what: string,
): { tables: TableExport[]; index: Int32Array } {
  const n = inQ.k.length;
  const index = new Int32Array(n);
  const keyOf = new Map<string, number>();
  const tables: TableExport[] = [];
  for (let j = 0; j < n; j++) {
    const a: Kif = { k: inQ.k[j] as 0 | 1, i: inQ.i[j]!, f: inQ.f[j]! };
    const jo = outQ.k.length === 1 ? 0 : j;
    const b: Kif = { k: outQ.k[jo] as 0 | 1, i: outQ.i[jo]!, f: outQ.f[jo]! };
    const key = `${a.k},${a.i},${a.f}|${b.k},${b.i},${b.f}`;
    let t = keyOf.get(key);
    if (t === undefined) {
      const d = domain(a);
      if (d.n > 2 ** MAX_TABLE_BITS)
        throw new Error(
          `${what}: input type (${a.k},${a.i},${a.f}) has 2^${Math.log2(d.n)} values; tables are limited to 2^${MAX_TABLE_BITS} entries (narrow the input quantizer)`,
        );
      const values = tf.tidy(() => {
        const x = tf.add(tf.mul(tf.range(0, d.n, 1, 'float32'), d.step), d.min);
        const y = fn(x);
        return quantizeTensor(y, tf.scalar(b.k), tf.scalar(b.i), tf.scalar(b.f), outQ.round, outQ.overflow).dataSync();
      });
      t = tables.length;
      tables.push({ input: a, output: b, min: d.min, step: d.step, values: Float64Array.from(values) });
      keyOf.set(key, t);
    }
    index[j] = t;
  }
  return { tables, index };
}

export interface QUnaryFunctionLUTArgs extends QLayerArgs {
  /** a registered function name (tanh, sigmoid, exp, relu, softplus, square, abs, sin, cos, linear, or registerLutFunction) */
  activation: string;
}

export class QUnaryFunctionLUT extends QLayer {
  static className = 'QUnaryFunctionLUT';
  readonly activation: string;
  private readonly fn: UnaryFn;

  constructor(args: QUnaryFunctionLUTArgs) {
    // the output quantizer is on by default: it defines the table's output type ('table' place defaults)
    super({ enableOq: true, ...args, oqConf: { place: 'table', ...(args?.oqConf ?? {}) } });
    const name = args?.activation;
    const fn = typeof name === 'string' ? FUNCTIONS.get(name) : undefined;
    if (!fn)
      this.fail(
        `unknown activation '${String(name)}'; use one of ${[...FUNCTIONS.keys()].join(', ')} or registerLutFunction(name, fn)`,
      );
    this.activation = name;
    this.fn = fn;
  }
  protected ownArgNames(): string[] {
    return ['activation'];
  }
  protected buildLayer([s]: Shape[]): void {
    if (s!.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${s}]`);
  }
  protected forward([x]: tf.Tensor[]): tf.Tensor {
    return this.fn(x!);
  }
  override computeOutputShape(s: Shape | Shape[]): Shape {
    return [...(s as Shape)];
  }
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      if (!this.iqs[0] || !this.oq) return tf.scalar(0);
      const shape = [1, ...(this.builtInputShapes[0]!.slice(1) as number[])];
      return tableEbops(this.bitsAt(this.iqs[0], shape), this.bitsAt(this.oq, shape));
    });
  }
  protected exportLayer(): Record<string, unknown> {
    const shape = this.builtInputShapes[0]!.slice(1) as number[];
    const inQ = this.exportQuantizer(this.iqs[0] ?? null, shape);
    const outQ = this.exportQuantizer(this.oq, shape);
    if (!inQ || !outQ) this.fail('export needs both the input and the output quantizer enabled (they define the table)');
    return {
      op: 'table',
      function: this.activation,
      ...buildTables(inQ, outQ, this.fn, `${this.getClassName()} '${this.name}'`),
    };
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), activation: this.activation };
  }
}

export interface QSoftmaxArgs extends QLayerArgs {
  /** subtract the max first (exp of max − x): the table input is then ≥ 0 and bounded */
  stable?: boolean;
  expIqConf?: QConf;
  expOqConf?: QConf;
  invIqConf?: QConf;
  invOqConf?: QConf;
  /** heterogeneous tables (per element); default false = one table per softmax (HGQ2 default) */
  allowHeterogeneousTable?: boolean;
  inputScaler?: number;
  parallelizationFactor?: number;
}

/** Keras' backend epsilon, which HGQ2's reciprocal table adds. */
const EPS = 1e-7;

/**
 * Softmax over the last axis from tables (HGQ2 QSoftmax): x ← iq(x); d = max(x) − x (stable);
 * e = exp_oq(exp(−s·exp_iq(d))); r = inv_oq(1/(inv_iq(Σ e) + 1e-7)); y = e·r.
 */
export class QSoftmax extends QLayer {
  static className = 'QSoftmax';
  readonly stable: boolean;
  readonly allowHeterogeneousTable: boolean;
  readonly inputScaler: number;
  readonly parallelizationFactor: number;
  private readonly confs: Record<'expIq' | 'expOq' | 'invIq' | 'invOq', QConf>;
  expIq: Quantizer | null = null;
  expOq!: Quantizer;
  invIq!: Quantizer;
  invOq!: Quantizer;

  constructor(args: QSoftmaxArgs = {}) {
    super(args);
    this.stable = args.stable ?? true;
    this.allowHeterogeneousTable = args.allowHeterogeneousTable ?? false;
    this.inputScaler = args.inputScaler ?? 1;
    this.parallelizationFactor = args.parallelizationFactor ?? -1;
    if (!Number.isFinite(this.inputScaler) || this.inputScaler <= 0)
      this.fail(`inputScaler must be > 0, got ${args.inputScaler}`);
    this.confs = {
      expIq: args.expIqConf ?? null,
      expOq: args.expOqConf ?? null,
      invIq: args.invIqConf ?? null,
      invOq: args.invOqConf ?? null,
    };
  }
  protected ownArgNames(): string[] {
    return [
      'stable',
      'expIqConf',
      'expOqConf',
      'invIqConf',
      'invOqConf',
      'allowHeterogeneousTable',
      'inputScaler',
      'parallelizationFactor',
    ];
  }
  protected buildLayer([s]: Shape[]): void {
    if (s!.slice(1).some((d) => d === null)) this.fail(`needs a fully known per-sample shape, got [${s}]`);
    // one table per softmax unless heterogeneous; a loaded config already carries its axis lists
    const g = (c: QConf) =>
      this.allowHeterogeneousTable || c?.homogeneousAxes != null || c?.heterogeneousAxes != null || c?.granularity
        ? {}
        : { granularity: 'tensor' as const };
    // hls4ml-compatible table outputs: unsigned, SAT, RND_CONV (as HGQ2 forces)
    const tableOut = { k0: 0 as const, overflowMode: 'SAT' as const, roundMode: 'RND_CONV' as const };
    const sumShape = [...s!.slice(0, -1), 1];
    if (this.stable)
      this.expIq = this.makeQuantizer('exp_iq', { ...g(this.confs.expIq), ...(this.confs.expIq ?? {}) }, 'datalane', s!);
    this.expOq = this.makeQuantizer(
      'exp_oq',
      { place: 'table', ...g(this.confs.expOq), ...(this.confs.expOq ?? {}), ...tableOut },
      'table',
      s!,
    );
    this.invIq = this.makeQuantizer('inv_iq', { ...g(this.confs.invIq), ...(this.confs.invIq ?? {}) }, 'datalane', sumShape);
    this.invOq = this.makeQuantizer(
      'inv_oq',
      { place: 'table', ...g(this.confs.invOq), ...(this.confs.invOq ?? {}), ...tableOut },
      'table',
      sumShape,
    );
    this.wqs.push(...(this.expIq ? [this.expIq] : []), this.expOq, this.invIq, this.invOq);
  }
  private expFn = (d: tf.Tensor): tf.Tensor => tf.exp(tf.mul(d, this.stable ? -this.inputScaler : this.inputScaler));
  private invFn = (s: tf.Tensor): tf.Tensor => tf.div(1, tf.add(s, EPS));

  protected forward([x]: tf.Tensor[], mode: QuantizerMode): tf.Tensor {
    const ax = x!.rank - 1;
    let d = x!;
    if (this.stable) d = this.expIq!.call(tf.sub(tf.max(x!, ax, true), x!), mode);
    const e = this.expOq.call(this.expFn(d), mode);
    const r = this.invOq.call(this.invFn(this.invIq.call(tf.sum(e, ax, true), mode)), mode);
    return tf.mul(e, r);
  }
  override computeOutputShape(s: Shape | Shape[]): Shape {
    return [...(s as Shape)];
  }
  /** HGQ2 QSoftmax._compute_ebops plus its two tables' own costs. */
  ebopsTensor(): tf.Scalar {
    return tf.tidy(() => {
      const shape = [1, ...(this.builtInputShapes[0]!.slice(1) as number[])];
      const sumShape = [...shape.slice(0, -1), 1];
      const ax = shape.length - 1;
      const expBits = this.bitsAt(this.expOq, shape);
      const invBits = this.bitsAt(this.invOq, sumShape);
      let e: tf.Tensor = tf.add(tf.sub(tf.sum(expBits), tf.sum(tf.min(expBits, ax))), tf.sum(tf.mul(expBits, invBits)));
      if (this.stable && this.iqs[0]) e = tf.add(e, tf.sum(this.bitsAt(this.iqs[0], shape)));
      const maxInstance = sumShape.reduce((a, b) => a * b, 1);
      if (this.parallelizationFactor > 0) e = tf.mul(e, this.parallelizationFactor / maxInstance);
      if (this.expIq) e = tf.add(e, tableEbops(this.bitsAt(this.expIq, shape), expBits));
      e = tf.add(e, tableEbops(this.bitsAt(this.invIq, sumShape), invBits));
      return e as tf.Scalar;
    });
  }
  protected exportLayer(): Record<string, unknown> {
    const shape = this.builtInputShapes[0]!.slice(1) as number[];
    const sumShape = [...shape.slice(0, -1), 1];
    const what = `${this.getClassName()} '${this.name}'`;
    const expIn = this.expIq ? this.exportQuantizer(this.expIq, shape)! : null;
    const expOut = this.exportQuantizer(this.expOq, shape)!;
    const invIn = this.exportQuantizer(this.invIq, sumShape)!;
    const invOut = this.exportQuantizer(this.invOq, sumShape)!;
    if (!expIn) this.fail('export needs stable: true (the exp table input must be quantized)');
    return {
      op: 'softmax',
      stable: this.stable,
      axis: shape.length - 1,
      exp: { inputQuantizer: expIn, outputQuantizer: expOut, ...buildTables(expIn, expOut, this.expFn, what) },
      inv: { inputQuantizer: invIn, outputQuantizer: invOut, ...buildTables(invIn, invOut, this.invFn, what) },
    };
  }
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...this.configOf('stable', 'allowHeterogeneousTable', 'inputScaler', 'parallelizationFactor'),
      expIqConf: qconf(this.expIq, this.confs.expIq),
      expOqConf: qconf(this.expOq ?? null, this.confs.expOq),
      invIqConf: qconf(this.invIq ?? null, this.confs.invIq),
      invOqConf: qconf(this.invOq ?? null, this.confs.invOq),
    };
  }
}

tf.serialization.registerClass(QUnaryFunctionLUT);
tf.serialization.registerClass(QSoftmax);
