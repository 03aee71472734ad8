/**
 * Fused inference kernels, registered on the cpu and wasm backends: one JavaScript pass over the tensor memory
 * instead of ~16 tfjs ops, several of them broadcasting comparisons or min/max, which tfjs-wasm runs ~100x slower
 * than a multiply (measured: [32768,64] vs [1,64] maximum ≈ 1 s, mul ≈ 13 ms). Training has its own fused kernels
 * (train-kernels.ts). Arithmetic is done in float64,
 * where every step is exact (x·2^f, floor, integer codes of up to 53 bits), so the results are the exact
 * fixed-point values of docs/fixed-point.md §2–3 — the same as src/fixed's float path, and as the tf-op path in ops.ts
 * within its float32-exact range. Parameters are per "prefix-homogeneous" pattern: the parameter tensor has
 * shape [1, …, 1, d_h, …, d_{n−1}] against x's [·, …, ·, d_h, …, d_{n−1}], so element j uses parameter
 * j mod P. That covers per element, per activation, per channel (last axis) and per tensor; other patterns
 * and other backends use the tf-op path.
 */
import * as tf from '@tensorflow/tfjs';
import type { OverflowMode, RoundMode } from '../fixed/types.ts';
import { wasmKernels, type WasmBackendish } from './wasm-module.ts';

export const ROUND_CODES: Record<RoundMode, number> = {
  TRN: 0,
  RND: 1,
  RND_CONV: 2,
  TRN_ZERO: 3,
  RND_ZERO: 4,
  RND_MIN_INF: 5,
  RND_INF: 6,
};
const OVERFLOW_CODES: Record<OverflowMode, number> = { WRAP: 0, SAT: 1, SAT_SYM: 2 };

/** 2^e for integer e by table (Math.pow costs tens of ns per call; parameters are integers). */
const POW2_OFF = 1100;
const POW2 = Float64Array.from({ length: 2 * POW2_OFF + 1 }, (_, j) => 2 ** (j - POW2_OFF));
export function pow2(e: number): number {
  const v = POW2[e + POW2_OFF]; // undefined for a fractional or out-of-range e
  return v !== undefined ? v : 2 ** e;
}

/** Round y (float64, exact input) to an integer with mode code m; never -0. */
function roundDouble(y: number, m: number): number {
  const fl = Math.floor(y);
  const r = y - fl; // exact
  let up: boolean;
  switch (m) {
    case 0:
      return fl + 0;
    case 1:
      up = r >= 0.5;
      break;
    case 2:
      up = r > 0.5 || (r === 0.5 && fl % 2 !== 0);
      break;
    case 3:
      up = r > 0 && y < 0;
      break;
    case 4:
      up = r > 0.5 || (r === 0.5 && y < 0);
      break;
    case 5:
      up = r > 0.5;
      break;
    default:
      up = r > 0.5 || (r === 0.5 && fl >= 0);
      break;
  }
  return (up ? fl + 1 : fl) + 0;
}

// ---------------------------------------------------------------------------------------------------------
// loops on plain arrays

/** x rounded to multiples of 2^-f (no overflow handling). */
function roundLoop(x: Float32Array, f: Float32Array, out: Float32Array, m: number): void {
  const P = f.length;
  const scale = new Float64Array(P),
    step = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    scale[p] = pow2(f[p]!);
    step[p] = pow2(-f[p]!);
  }
  const n = x.length;
  if (m === 1) {
    // RND, the default: floor(y + 1/2) is exact in float64 for float32 inputs
    for (let j = 0, p = 0; j < n; j++) {
      out[j] = Math.floor(x[j]! * scale[p]! + 0.5) * step[p]! + 0;
      if (++p === P) p = 0;
    }
    return;
  }
  for (let j = 0, p = 0; j < n; j++) {
    out[j] = roundDouble(x[j]! * scale[p]!, m) * step[p]!;
    if (++p === P) p = 0;
  }
}

/** A type's width W = k + i + f and its code range [lo, hi] under overflow mode o (2: SAT_SYM, symmetric). */
function codeRange(k: number, i: number, f: number, o: number): { signed: boolean; W: number; hi: number; lo: number } {
  const signed = k > 0;
  const hi = pow2(i + f) - 1;
  return { signed, W: (signed ? 1 : 0) + i + f, hi, lo: !signed ? 0 : o === 2 ? -hi : -hi - 1 };
}

/** Inference quantization (docs/fixed-point.md §3, docs/quantizers.md §2): SAT/SAT_SYM clip then round, WRAP rounds then keeps the low W bits; W <= 0 gives 0. */
function quantizeLoop(
  x: Float32Array,
  k: Float32Array,
  i: Float32Array,
  f: Float32Array,
  out: Float32Array,
  m: number,
  o: number,
): void {
  const P = f.length;
  const scale = new Float64Array(P),
    step = new Float64Array(P),
    hi = new Float64Array(P),
    lo = new Float64Array(P);
  const mod = new Float64Array(P),
    half = new Float64Array(P),
    alive = new Uint8Array(P);
  for (let p = 0; p < P; p++) {
    const r = codeRange(k[p]!, i[p]!, f[p]!, o);
    alive[p] = r.W > 0 ? 1 : 0;
    scale[p] = pow2(f[p]!);
    step[p] = pow2(-f[p]!);
    hi[p] = r.hi;
    lo[p] = r.lo;
    mod[p] = pow2(r.W);
    half[p] = r.signed ? pow2(r.W - 1) : Infinity;
  }
  const n = x.length;
  if (m === 1) {
    quantizeRnd(x, out, o, P, alive, scale, step, hi, lo, mod, half);
    return;
  }
  for (let j = 0, p = 0; j < n; j++) {
    let v = 0;
    if (alive[p]) {
      const y = x[j]! * scale[p]!;
      let c: number;
      if (o === 0) {
        const M = mod[p]!;
        c = roundDouble(y, m) % M;
        if (c < 0) c += M;
        if (c >= half[p]!) c -= M;
      } else {
        c = y >= hi[p]! ? hi[p]! : y <= lo[p]! ? lo[p]! : roundDouble(y, m);
      }
      v = c * step[p]! + 0;
    }
    out[j] = v;
    if (++p === P) p = 0;
  }
}

/**
 * quantizeLoop for RND, the default (~10x faster: no per-element mode switch, no float `%`). floor(y + 1/2) is
 * exact in float64 for y = float32·2^f (see roundLoop); WRAP keeps the low W bits as c − 2^W·floor((c + h)·2^-W)
 * with h = 2^(W−1) signed, 0 unsigned: every term is an integer or a power-of-two scaling, so it is exact, and
 * equals the general loop's `%` form.
 */
function quantizeRnd(
  x: Float32Array,
  out: Float32Array,
  o: number,
  P: number,
  alive: Uint8Array,
  scale: Float64Array,
  step: Float64Array,
  hi: Float64Array,
  lo: Float64Array,
  mod: Float64Array,
  half: Float64Array,
): void {
  const n = x.length;
  if (o === 0) {
    const inv = new Float64Array(P),
      off = new Float64Array(P);
    for (let p = 0; p < P; p++) {
      inv[p] = alive[p] ? 1 / mod[p]! : 0;
      off[p] = half[p] === Infinity ? 0 : half[p]!;
    }
    for (let j = 0, p = 0; j < n; j++) {
      const c = Math.floor(x[j]! * scale[p]! + 0.5);
      const M = mod[p]!;
      out[j] = alive[p] ? (c - M * Math.floor((c + off[p]!) * inv[p]!)) * step[p]! + 0 : 0;
      if (++p === P) p = 0;
    }
    return;
  }
  for (let j = 0, p = 0; j < n; j++) {
    const y = x[j]! * scale[p]!;
    const c = y >= hi[p]! ? hi[p]! : y <= lo[p]! ? lo[p]! : Math.floor(y + 0.5);
    out[j] = alive[p] ? c * step[p]! + 0 : 0;
    if (++p === P) p = 0;
  }
}

// ---------------------------------------------------------------------------------------------------------
// backend glue

type Info = tf.TensorInfo;
interface Backendish {
  // wasm
  typedArrayFromHeap?: (t: Info) => Float32Array;
  makeOutput?: (shape: number[], dtype: 'float32') => Info;
  // cpu
  data?: { get(id: object): { values?: unknown } };
  makeTensorInfo?: (shape: number[], dtype: 'float32', values: Float32Array) => Info;
  readSync(id: object): unknown;
}

/** Allocate outputs first (wasm heap growth invalidates views), then view inputs. */
export function withArrays(
  backend: Backendish,
  ins: Info[],
  outShapes: number[][],
  body: (ins: Float32Array[], outs: Float32Array[]) => void,
): Info[] {
  if (backend.typedArrayFromHeap && backend.makeOutput) {
    const outs = outShapes.map((s) => backend.makeOutput!(s, 'float32'));
    const outArrs = outs.map((o) => backend.typedArrayFromHeap!(o));
    const inArrs = ins.map((t) => backend.typedArrayFromHeap!(t));
    body(inArrs, outArrs);
    return outs;
  }
  const inArrs = ins.map((t) => {
    const v = backend.data?.get(t.dataId)?.values ?? backend.readSync(t.dataId);
    return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
  });
  const outArrs = outShapes.map((s) => new Float32Array(s.reduce((a, b) => a * b, 1)));
  body(inArrs, outArrs);
  return outArrs.map((a, j) => backend.makeTensorInfo!(outShapes[j]!, 'float32', a));
}

// ---------------------------------------------------------------------------------------------------------
// RND on the wasm backend: the simd128 kernels of assembly/quantizer.ts on the tensors in place (~10x the JS
// loops; calibrating MNIST runs 39M activations through them per checkpoint). Their float32 arithmetic is exact
// where every parameter power of two and clip bound is an exact float32 (checked here; otherwise the JS loops).

/** Per-parameter block for infer_round / infer_quant (layout in assembly/quantizer.ts), or null if not exact in f32. */
function wasmParams(
  f: Float32Array,
  k: Float32Array | null,
  i: Float32Array | null,
  o: number,
  prm: Float32Array,
  aliveBits: Int32Array,
): boolean {
  const P = f.length;
  for (let p = 0; p < P; p++) {
    const ff = f[p]!;
    if (!(Math.abs(ff) <= 100)) return false;
    prm[p] = pow2(ff);
    prm[P + p] = pow2(-ff);
    if (!k || !i) continue;
    const r = codeRange(k[p]!, i[p]!, ff, o);
    aliveBits[5 * P + p] = r.W > 0 ? -1 : 0;
    if (o === 0) {
      if (!(Math.abs(r.W) <= 100)) return false;
      prm[2 * P + p] = pow2(r.W);
      prm[3 * P + p] = pow2(-r.W);
      prm[4 * P + p] = r.signed ? pow2(r.W - 1) : 0;
    } else {
      if (!(i[p]! + ff <= 24)) return false; // the clip bounds 2^(i+f) − 1 must be exact
      prm[2 * P + p] = r.hi;
      prm[3 * P + p] = r.lo;
    }
  }
  return true;
}

/** Runs an RND inference kernel in wasm memory; null when not applicable (then the JS loops run). */
function wasmRnd(backend: Backendish, x: Info, f: Info, k: Info | null, i: Info | null, o: number): Info | null {
  const wb = backend as unknown as WasmBackendish;
  const wk = wb.wasm ? wasmKernels(wb) : null;
  if (!wk || x.dtype !== 'float32') return null;
  const n = x.shape.reduce((a, b) => a * b, 1),
    P = f.shape.reduce((a, b) => a * b, 1);
  const out = wb.makeOutput(x.shape, 'float32');
  const prm = wb.wasm._malloc(24 * P) >>> 0;
  try {
    const heap = new Float32Array(wb.wasm.HEAPU8.buffer); // after the allocations (growth detaches views)
    const off = (t: Info): number => wb.dataIdMap.get(t.dataId).memoryOffset;
    const view = (t: Info): Float32Array => heap.subarray(off(t) >> 2, (off(t) >> 2) + P);
    const pv = heap.subarray(prm >> 2, (prm >> 2) + 6 * P);
    if (!wasmParams(view(f), k && view(k), i && view(i), o, pv, new Int32Array(pv.buffer, pv.byteOffset, 6 * P))) {
      (backend as unknown as { disposeData(id: object): void }).disposeData(out.dataId);
      return null;
    }
    if (k) wk.infer_quant(off(x), n, P, prm, o, off(out));
    else wk.infer_round(off(x), n, P, prm, off(out));
  } finally {
    wb.wasm._free(prm);
  }
  return out;
}

const KERNELS: { name: string; func: tf.KernelFunc }[] = [
  {
    name: 'HgqRound',
    func: ({ inputs, backend, attrs }) => {
      const { x, f } = inputs as { x: Info; f: Info };
      if (attrs!['round'] === 1) {
        const r = wasmRnd(backend as Backendish, x, f, null, null, 0);
        if (r) return r;
      }
      return withArrays(backend as Backendish, [x, f], [x.shape], ([xa, fa], [o]) =>
        roundLoop(xa!, fa!, o!, attrs!['round'] as number),
      )[0]!;
    },
  },
  {
    name: 'HgqQuantize',
    func: ({ inputs, backend, attrs }) => {
      const { x, k, i, f } = inputs as { x: Info; k: Info; i: Info; f: Info };
      if (attrs!['round'] === 1) {
        const r = wasmRnd(backend as Backendish, x, f, k, i, attrs!['overflow'] as number);
        if (r) return r;
      }
      return withArrays(backend as Backendish, [x, k, i, f], [x.shape], ([xa, ka, ia, fa], [o]) =>
        quantizeLoop(xa!, ka!, ia!, fa!, o!, attrs!['round'] as number, attrs!['overflow'] as number),
      )[0]!;
    },
  },
];

const FUSED_BACKENDS = ['cpu', 'wasm'];
// Registered by name at import; a kernel registry entry needs no live backend.
for (const backendName of FUSED_BACKENDS)
  for (const { name, func } of KERNELS)
    if (!tf.getKernel(name, backendName)) tf.registerKernel({ kernelName: name, backendName, kernelFunc: func });

let enabled = true;
/**
 * Turn the fused kernels off (true: use them where they apply), the inference ones here and the training ones
 * (train-kernels.ts). Tests use this to check the tf-op path too.
 */
export function setFusedKernels(on: boolean): void {
  enabled = on;
}
export function fusedEnabled(): boolean {
  return enabled;
}

/** Whether the fused kernels apply: enabled, cpu or wasm backend, and a prefix-homogeneous parameter shape. */
export function fusedApplies(xShape: number[], paramShape: number[]): boolean {
  if (!enabled || !FUSED_BACKENDS.includes(tf.getBackend())) return false;
  if (xShape.length !== paramShape.length) return false;
  let a = 0;
  while (a < paramShape.length && paramShape[a] === 1) a++;
  for (let b = a; b < paramShape.length; b++) if (paramShape[b] !== xShape[b]) return false;
  return true;
}

function run(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown>): tf.Tensor {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
}

/** x rounded to multiples of 2^-f (f integer-valued, parameter shape). */
export function fusedRound(x: tf.Tensor, f: tf.Tensor, round: RoundMode): tf.Tensor {
  return run('HgqRound', { x, f }, { round: ROUND_CODES[round] });
}

/** Inference quantization with integer-valued k, i, f of parameter shape. */
export function fusedQuantize(
  x: tf.Tensor,
  k: tf.Tensor,
  i: tf.Tensor,
  f: tf.Tensor,
  round: RoundMode,
  overflow: OverflowMode,
): tf.Tensor {
  return run('HgqQuantize', { x, k, i, f }, { round: ROUND_CODES[round], overflow: OVERFLOW_CODES[overflow] });
}
