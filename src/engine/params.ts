/**
 * Parameter arrays in the engine's WebAssembly memory and their Adam state, shared by the dense-chain engine
 * (engine.ts) and the graph engine (graph.ts): the optimizer step, state read/write for syncing with the tfjs
 * model, and the gradients tests look at.
 */
import type { AdamConfig, EngineState } from './engine.ts';
import type { KernelExports } from './kernels.ts';

/** One trainable (or tracked) parameter array in wasm memory (byte offsets). */
export interface Param {
  name: string;
  ptr: number;
  n: number;
  grad: number;
  m: number;
  v: number;
  lo: number;
  hi: number;
  l1: number;
  trainable: boolean;
}

export function checkArr(a: Float32Array | undefined | null, n: number, what: string): Float32Array {
  if (!(a instanceof Float32Array)) throw new Error(`hgq engine: ${what} must be a Float32Array of length ${n}`);
  if (a.length !== n) throw new Error(`hgq engine: ${what} has length ${a.length}, expected ${n}`);
  return a;
}

const fr = Math.fround;

/** Adam with tf.train.adam's semantics: float32 running powers of β1, β2 (accBeta) and its hyper-parameters. */
export class AdamState {
  iterations = 0;
  private accBeta1: number;
  private accBeta2: number;

  constructor(private readonly o: AdamConfig) {
    this.accBeta1 = fr(o.beta1 ?? 0.9);
    this.accBeta2 = fr(o.beta2 ?? 0.999);
  }

  /** One step on every trainable parameter from its reduced gradient. */
  apply(k: KernelExports, params: readonly Param[]): void {
    const o = this.o;
    const b1 = o.beta1 ?? 0.9, b2 = o.beta2 ?? 0.999, eps = o.epsilon ?? 1e-7;
    const omb1 = fr(1 - this.accBeta1), omb2 = fr(1 - this.accBeta2);
    for (const p of params) {
      if (!p.trainable) continue;
      k.adam(p.n, p.ptr, p.grad, p.m, p.v, fr(o.learningRate), fr(b1), fr(b2), fr(eps), omb1, omb2, fr(1 - b1), fr(1 - b2), -Infinity, Infinity);
    }
    this.accBeta1 = fr(this.accBeta1 * fr(b1));
    this.accBeta2 = fr(this.accBeta2 * fr(b2));
    this.iterations++;
  }

  /** Current values and Adam moments of every parameter array (copies), keyed by name. */
  read(f: Float32Array, params: readonly Param[]): EngineState {
    const values: Record<string, Float32Array> = {}, m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
    for (const p of params) {
      values[p.name] = f.slice(p.ptr / 4, p.ptr / 4 + p.n);
      m[p.name] = f.slice(p.m / 4, p.m / 4 + p.n);
      v[p.name] = f.slice(p.v / 4, p.v / 4 + p.n);
    }
    return { values, adam: { m, v, iterations: this.iterations, accBeta1: this.accBeta1, accBeta2: this.accBeta2 } };
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
      put(s.adam.m, 'm'); put(s.adam.v, 'v');
      this.iterations = s.adam.iterations;
      this.accBeta1 = s.adam.accBeta1; this.accBeta2 = s.adam.accBeta2;
    }
  }
}

/** Last step's gradients of every parameter array (copies), for tests. */
export function paramGradients(f: Float32Array, params: readonly Param[]): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const p of params) out[p.name] = f.slice(p.grad / 4, p.grad / 4 + p.n);
  return out;
}
