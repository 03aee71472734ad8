/**
 * Parameter arrays in the engine's WebAssembly memory and their Adam state, shared by the dense-chain engine
 * (engine.ts) and the graph engine (graph.ts): the optimizer step, state read/write for syncing with the tfjs
 * model, and the gradients tests look at.
 */
import type { KernelExports } from './kernels.ts';
import type { AdamConfig, EngineState, KbiDesc, KifDesc, Param } from './types.ts';

export function checkArr(a: Float32Array | undefined | null, n: number, what: string): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error(`hgq engine: ${what} must be a Float32Array of length ${n}`);
  if (a.length !== n) throw new Error(`hgq engine: ${what} has length ${a.length}, expected ${n}`);
  return a;
}

const fr = Math.fround;

const OVERFLOW_CODE: Record<string, number> = { WRAP: 0, SAT: 1, SAT_SYM: 2 };

/** A weight quantizer's arrays in wasm memory (byte offsets): raw bits b, integer bits i, sign k; mode 1 SAT, 2 SAT_SYM. */
export interface KbiMem {
  b: number;
  i: number;
  k: number;
  mode: number;
  pb: Param;
  pi: Param;
}

/**
 * An activation quantizer's arrays: raw i, f, sign k, mode (0 WRAP, 1 SAT, 2 SAT_SYM), its per-step prepared
 * constants (prep, 16 bytes per feature), WRAP tracking, and the batch sums / |x| maxima its gradients come from.
 */
export interface KifMem {
  i: number;
  f: number;
  k: number;
  mode: number;
  prep: number;
  decay: number;
  iBounds: [number, number];
  pi: Param;
  pf: Param;
  sums: number;
  amx: number;
}

/**
 * The static part of an engine's memory plan: a bump allocator, the arrays to copy in once the memory exists,
 * and the parameter records (value, gradient, Adam moments) with their quantizer configs checked.
 */
export class ParamArena {
  readonly params: Param[] = [];
  private readonly arrays: Array<{ ptr: number; src: Float32Array | Int32Array }> = [];
  constructor(public off: number) {}

  alloc(bytes: number, align = 64): number {
    this.off = Math.ceil(this.off / align) * align;
    const p = this.off;
    this.off += Math.max(bytes, 4);
    return p;
  }

  /** Reserves a copy of `src`, written by copyInto. */
  put(src: Float32Array | Int32Array): number {
    const p = this.alloc(src.length * 4);
    this.arrays.push({ ptr: p, src });
    return p;
  }

  param(name: string, src: Float32Array, trainable: boolean, bounds?: [number, number], l1?: number): Param {
    const n = src.length;
    const p: Param = {
      name,
      ptr: this.put(src),
      n,
      grad: this.alloc(n * 4),
      m: this.alloc(n * 4),
      v: this.alloc(n * 4),
      lo: bounds ? bounds[0] : -Infinity,
      hi: bounds ? bounds[1] : Infinity,
      l1: l1 ?? 0,
      trainable,
    };
    this.params.push(p);
    return p;
  }

  /** A weight quantizer of n elements (`what` names it in errors and parameter names). */
  kbi(q: KbiDesc, n: number, what: string): KbiMem {
    if ((q.round ?? 'RND') !== 'RND') throw new Error(`hgq engine: ${what} round mode ${q.round} is not supported (RND only)`);
    if (q.overflow !== 'SAT' && q.overflow !== 'SAT_SYM')
      throw new Error(`hgq engine: ${what} overflow ${q.overflow} is not supported (SAT, SAT_SYM)`);
    const pb = this.param(`${what}.b`, checkArr(q.b, n, `${what}.b`), true, q.bBounds ?? [0, 23], q.l1);
    const pi = this.param(`${what}.i`, checkArr(q.i, n, `${what}.i`), true, q.iBounds ?? [-24, 24], 0);
    return { b: pb.ptr, i: pi.ptr, k: this.put(checkArr(q.k, n, `${what}.k`)), mode: OVERFLOW_CODE[q.overflow]!, pb, pi };
  }

  /** An activation quantizer of K features. */
  kif(q: KifDesc, K: number, what: string): KifMem {
    if ((q.round ?? 'RND') !== 'RND') throw new Error(`hgq engine: ${what} round mode ${q.round} is not supported (RND only)`);
    if (!(q.overflow in OVERFLOW_CODE)) throw new Error(`hgq engine: ${what} overflow ${q.overflow} is not supported`);
    const wrap = q.overflow === 'WRAP';
    const iB = q.iBounds ?? [-24, 24];
    // under WRAP i follows the data (not trained) but its L1 term still counts in the loss, as in tfjs
    const pi = this.param(`${what}.i`, checkArr(q.i, K, `${what}.i`), !wrap, iB, q.l1);
    const pf = this.param(`${what}.f`, checkArr(q.f, K, `${what}.f`), true, q.fBounds ?? [-24, 24], q.l1);
    return {
      i: pi.ptr,
      f: pf.ptr,
      k: this.put(checkArr(q.k, K, `${what}.k`)),
      mode: OVERFLOW_CODE[q.overflow]!,
      prep: this.alloc(K * 16),
      decay: q.decay ?? 0.01,
      iBounds: iB,
      pi,
      pf,
      sums: this.alloc(K * 12),
      amx: this.alloc(K * 4),
    };
  }

  /** Writes the reserved arrays into the engine's memory. */
  copyInto(buffer: ArrayBuffer | SharedArrayBuffer): void {
    const f32 = new Float32Array(buffer),
      i32 = new Int32Array(buffer);
    for (const a of this.arrays) (a.src instanceof Int32Array ? i32 : f32).set(a.src, a.ptr / 4);
  }
}

/** adam()'s arguments after the arrays: lr, β1, β2, ε, 1 − β1^t, 1 − β2^t, 1 − β1, 1 − β2, lo, hi. */
export type AdamArgs = [number, number, number, number, number, number, number, number, number, number];

/** Adam with tf.train.adam's semantics: float32 running powers of β1, β2 (accBeta) and its hyper-parameters. */
export class AdamState {
  iterations = 0;
  private accBeta1: number;
  private accBeta2: number;
  private learningRate: number;

  constructor(private readonly o: AdamConfig) {
    this.learningRate = o.learningRate;
    this.accBeta1 = fr(o.beta1 ?? 0.9);
    this.accBeta2 = fr(o.beta2 ?? 0.999);
  }

  /** One step on every trainable parameter from its reduced gradient. */
  apply(k: KernelExports, params: readonly Param[]): void {
    const h = this.stepArgs();
    for (const p of params) if (p.trainable) k.adam(p.n, p.ptr, p.grad, p.m, p.v, ...h);
    this.advance();
  }

  /** This step's adam() arguments after (n, p, g, m, v): for callers that split the arrays over threads. */
  stepArgs(): AdamArgs {
    const o = this.o;
    const b1 = o.beta1 ?? 0.9,
      b2 = o.beta2 ?? 0.999,
      eps = o.epsilon ?? 1e-7;
    return [
      fr(this.learningRate),
      fr(b1),
      fr(b2),
      fr(eps),
      fr(1 - this.accBeta1),
      fr(1 - this.accBeta2),
      fr(1 - b1),
      fr(1 - b2),
      -Infinity,
      Infinity,
    ];
  }

  /** Counts the step applied with stepArgs(). */
  advance(): void {
    this.accBeta1 = fr(this.accBeta1 * fr(this.o.beta1 ?? 0.9));
    this.accBeta2 = fr(this.accBeta2 * fr(this.o.beta2 ?? 0.999));
    this.iterations++;
  }

  /** Current values and Adam moments of every parameter array (copies), keyed by name. */
  read(f: Float32Array, params: readonly Param[]): EngineState {
    const values: Record<string, Float32Array> = {},
      m: Record<string, Float32Array> = {},
      v: Record<string, Float32Array> = {};
    for (const p of params) {
      values[p.name] = f.slice(p.ptr / 4, p.ptr / 4 + p.n);
      m[p.name] = f.slice(p.m / 4, p.m / 4 + p.n);
      v[p.name] = f.slice(p.v / 4, p.v / 4 + p.n);
    }
    const { iterations, accBeta1, accBeta2, learningRate } = this;
    return { values, adam: { m, v, iterations, accBeta1, accBeta2, learningRate } };
  }

  /** Overwrites any subset of the parameters (and optionally the Adam state). */
  write(f: Float32Array, params: readonly Param[], s: Partial<EngineState> & { values?: Record<string, Float32Array> }): void {
    const byName = new Map(params.map((p) => [p.name, p]));
    const put = (rec: Record<string, Float32Array> | undefined, field: 'ptr' | 'm' | 'v') => {
      for (const [name, arr] of Object.entries(rec ?? {})) {
        const p = byName.get(name);
        if (!p) throw new Error(`hgq engine: unknown parameter ${name}; known: ${[...byName.keys()].join(', ')}`);
        checkArr(arr, p.n, name);
        f.set(arr, p[field] / 4);
      }
    };
    put(s.values, 'ptr');
    if (s.adam) {
      put(s.adam.m, 'm');
      put(s.adam.v, 'v');
      this.iterations = s.adam.iterations;
      this.accBeta1 = s.adam.accBeta1;
      this.accBeta2 = s.adam.accBeta2;
      const lr = s.adam.learningRate;
      if (lr !== undefined) {
        if (!(lr > 0)) throw new Error(`hgq engine: the learning rate must be a positive number, got ${lr}`);
        this.learningRate = lr;
      }
    }
  }
}

/** Last step's gradients of every parameter array (copies), for tests. */
export function paramGradients(f: Float32Array, params: readonly Param[]): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const p of params) out[p.name] = f.slice(p.grad / 4, p.grad / 4 + p.n);
  return out;
}
