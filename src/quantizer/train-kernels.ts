/**
 * Fused training kernels of the KIF WRAP quantizer (the default activation quantizer), forward and backward,
 * registered on the wasm and cpu backends with their gradient.
 *
 * Why: the tf-op path costs ~12 passes over every activation tensor per step (scale, round, unscale, absmax for
 * the integer-bit tracking, the residual and its reduction in the backward), and the two multiplications by a
 * broadcast [1, P] parameter are ~10x slower than elementwise ops on tfjs-wasm. Here the forward is one pass
 * (x_q and the per-parameter absmax of x_q, then the tracked i from it) and the backward one pass (Σ dy·(x_q − x)
 * per parameter, x_q recomputed from the saved x). On wasm the passes are a small simd128 module
 * (assembly/quantizer.ts) that imports the backend's own memory and works on the tensors in place; on cpu they
 * are JavaScript loops.
 *
 * Exactness: the same float32 operations as the tf-op path (ops.ts roundCodes, `x·2^f`, `·2^-f`), so both paths
 * give the same bits; ∂f per element is fl32(fl32(dy·fl32(x_q − x))·fl32(−ln2)) as there, sums over shared
 * axes are accumulated in float64 (the tf path sums in float32). Parameters follow a "prefix-homogeneous"
 * pattern (element j uses parameter j mod P), like the inference kernels.
 */
import * as tf from '@tensorflow/tfjs';
import type { OverflowMode, RoundMode } from '../fixed/types.ts';
import { ceilLog2 } from '../fixed/interval.ts';
import { fusedEnabled, pow2, ROUND_CODES, withArrays } from './kernels.ts';
import { wasmKernels, type WasmBackendish } from './wasm-module.ts';
import { roundHalfEven } from '../util/rounding.ts';

type Info = tf.TensorInfo;
const NLN2 = Math.fround(-Math.LN2);

interface CpuBackendish {
  data: { get(id: object): { values?: unknown } };
  readSync(id: object): unknown;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): Info;
}

// ---------------------------------------------------------------------------------------------------------
// per-parameter arithmetic (float32 exactly as the tf ops do it)

/** f = clip(round(f_raw)) and its 2^f, 2^-f (float32), repeated `rep` times. */
function prepScales(
  fRaw: Float32Array,
  fLo: number,
  fHi: number,
  rep: number,
  scale: Float32Array,
  step: Float32Array,
): Float64Array {
  const P = fRaw.length;
  const f = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    const fp = Math.min(Math.max(roundHalfEven(fRaw[p]!), fLo), fHi);
    f[p] = fp;
    const s = Math.fround(pow2(fp)),
      st = Math.fround(pow2(-fp));
    for (let r = 0; r < rep; r++) {
      scale[r * P + p] = s;
      step[r * P + p] = st;
    }
  }
  return f;
}

/**
 * WRAP tracking (quantizer.ts trackI for KIF): i ← clip(max(i − decay, ceil(log2(absmax(x_q) + 2^-f))), iLo, iHi),
 * each step in float32 as the tf ops compute it.
 */
function trackI(
  amax: Float32Array,
  rep: number,
  f: Float64Array,
  iRaw: Float32Array,
  decay: number,
  iLo: number,
  iHi: number,
  out: Float32Array,
): void {
  const P = f.length;
  for (let p = 0; p < P; p++) {
    let a = amax[p]!;
    for (let r = 1; r < rep; r++) a = Math.max(a, amax[r * P + p]!);
    const needed = ceilLog2(Math.fround(a + Math.fround(pow2(-f[p]!))));
    const decayed = Math.fround(iRaw[p]! - decay);
    out[p] = Math.min(Math.max(Math.max(decayed, needed), iLo), iHi);
  }
}

// ---------------------------------------------------------------------------------------------------------
// JavaScript loops (cpu backend), the same float32 operations as the wasm module

function codes(y: number, m: number): number {
  const fr = Math.fround;
  switch (m) {
    case 1:
      return fr(Math.floor(fr(y + y)) - Math.floor(y));
    case 0:
      return Math.floor(y) + 0;
    case 2:
      return roundHalfEven(y);
    case 5:
      return fr(Math.ceil(fr(y + y)) - Math.ceil(y));
    default: {
      const a = Math.abs(y);
      const v =
        m === 3 ? Math.floor(a) : m === 4 ? fr(Math.ceil(fr(a + a)) - Math.ceil(a)) : fr(Math.floor(fr(a + a)) - Math.floor(a));
      return (y < 0 ? -v : v) + 0;
    }
  }
}

function jsWrapFwd(
  x: Float32Array,
  P: number,
  scale: Float32Array,
  step: Float32Array,
  m: number,
  out: Float32Array,
  amax: Float32Array,
): void {
  amax.fill(0);
  const fr = Math.fround;
  for (let j = 0, p = 0; j < x.length; j++) {
    const q = fr(codes(fr(x[j]! * scale[p]!), m) * step[p]!);
    out[j] = q;
    const a = Math.abs(q);
    if (a > amax[p]!) amax[p] = a;
    if (++p === P) p = 0;
  }
}

function jsWrapBwd(
  x: Float32Array,
  dy: Float32Array,
  P: number,
  scale: Float32Array,
  step: Float32Array,
  m: number,
  acc: Float64Array,
): void {
  acc.fill(0);
  const fr = Math.fround;
  for (let j = 0, p = 0; j < x.length; j++) {
    const xs = x[j]!;
    const q = fr(codes(fr(xs * scale[p]!), m) * step[p]!);
    acc[p] += fr(dy[j]! * fr(q - xs));
    if (++p === P) p = 0;
  }
}

// ---------------------------------------------------------------------------------------------------------
// kernels

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Replicate a parameter pattern whose length is not a multiple of 4 so the SIMD loop covers whole rows. */
function replication(n: number, P: number): number {
  return P % 4 !== 0 && n % (4 * P) === 0 ? 4 : 1;
}

interface FwdAttrs {
  round: number;
  fLo: number;
  fHi: number;
  iLo: number;
  iHi: number;
}

/**
 * The WRAP kernels' sizes: n elements of x, P parameters (f's), and on wasm (wk set) the parameters
 * replicated rep times (Pv = P·rep).
 */
function wrapLayout(x: Info, f: Info, backend: unknown) {
  const n = size(x.shape),
    P = size(f.shape);
  const wb = backend as WasmBackendish;
  const wk = wb.wasm ? wasmKernels(wb) : null;
  const rep = wk ? replication(n, P) : 1;
  return { n, P, wb, wk, rep, Pv: P * rep };
}

function wrapFwdKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info[] {
  const { x, f, i, decay } = inputs as { x: Info; f: Info; i: Info; decay: Info };
  const a = attrs as unknown as FwdAttrs;
  const { n, P, wb, wk, rep, Pv } = wrapLayout(x, f, backend);
  if (wk) {
    const out = wb.makeOutput(x.shape, 'float32');
    const iNew = wb.makeOutput(f.shape, 'float32');
    const scratch = wb.wasm._malloc(12 * Pv) >>> 0; // scale, step, amax: f32[Pv] each
    try {
      const heap = new Float32Array(wb.wasm.HEAPU8.buffer); // after every allocation (growth detaches views)
      const off = (t: Info): number => wb.dataIdMap.get(t.dataId).memoryOffset;
      const view = (t: Info): Float32Array => heap.subarray(off(t) >> 2, (off(t) >> 2) + size(t.shape));
      const s0 = scratch >> 2;
      const scale = heap.subarray(s0, s0 + Pv),
        step = heap.subarray(s0 + Pv, s0 + 2 * Pv),
        amax = heap.subarray(s0 + 2 * Pv, s0 + 3 * Pv);
      const fInt = prepScales(view(f), a.fLo, a.fHi, rep, scale, step);
      wk.wrap_fwd(off(x), n, Pv, scratch, scratch + 4 * Pv, a.round, off(out), scratch + 8 * Pv);
      trackI(amax, rep, fInt, view(i), view(decay)[0]!, a.iLo, a.iHi, view(iNew));
    } finally {
      wb.wasm._free(scratch);
    }
    return [out, iNew];
  }
  const cb = backend as unknown as CpuBackendish;
  const arr = (t: Info): Float32Array => {
    const v = cb.data.get(t.dataId)?.values ?? cb.readSync(t.dataId);
    return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
  };
  const scale = new Float32Array(P),
    step = new Float32Array(P),
    amax = new Float32Array(P);
  const fInt = prepScales(arr(f), a.fLo, a.fHi, 1, scale, step);
  const out = new Float32Array(n),
    iNew = new Float32Array(P);
  jsWrapFwd(arr(x), P, scale, step, a.round, out, amax);
  trackI(amax, 1, fInt, arr(i), arr(decay)[0]!, a.iLo, a.iHi, iNew);
  return [cb.makeTensorInfo(x.shape, 'float32', out), cb.makeTensorInfo(f.shape, 'float32', iNew)];
}

function wrapBwdKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info {
  const { dy, x, f } = inputs as { dy: Info; x: Info; f: Info };
  const a = attrs as unknown as FwdAttrs;
  const { n, P, wb, wk, rep, Pv } = wrapLayout(x, f, backend);
  let acc: Float64Array;
  let df: Float32Array;
  let out: Info | null = null;
  if (wk) {
    out = wb.makeOutput(f.shape, 'float32');
    const scratch = wb.wasm._malloc(16 * Pv) >>> 0; // acc: f64[Pv] (malloc is 8-aligned), scale, step: f32[Pv]
    try {
      const buf = wb.wasm.HEAPU8.buffer;
      const heap = new Float32Array(buf);
      const off = (t: Info): number => wb.dataIdMap.get(t.dataId).memoryOffset;
      const s0 = (scratch >> 2) + 2 * Pv;
      const scale = heap.subarray(s0, s0 + Pv),
        step = heap.subarray(s0 + Pv, s0 + 2 * Pv);
      prepScales(heap.subarray(off(f) >> 2, (off(f) >> 2) + P), a.fLo, a.fHi, rep, scale, step);
      wk.wrap_bwd(off(x), off(dy), n, Pv, scratch + 8 * Pv, scratch + 12 * Pv, a.round, scratch);
      acc = new Float64Array(buf, scratch, Pv).slice();
      df = heap.subarray(off(out) >> 2, (off(out) >> 2) + P);
    } finally {
      wb.wasm._free(scratch);
    }
  } else {
    const cb = backend as unknown as CpuBackendish;
    const arr = (t: Info): Float32Array => {
      const v = cb.data.get(t.dataId)?.values ?? cb.readSync(t.dataId);
      return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
    };
    const scale = new Float32Array(P),
      step = new Float32Array(P);
    prepScales(arr(f), a.fLo, a.fHi, 1, scale, step);
    acc = new Float64Array(P);
    jsWrapBwd(arr(x), arr(dy), P, scale, step, a.round, acc);
    df = new Float32Array(P);
  }
  for (let p = 0; p < P; p++) {
    let s = acc[p]!;
    for (let r = 1; r < rep; r++) s += acc[r * P + p]!;
    df[p] = Math.fround(Math.fround(s) * NLN2);
  }
  return out ?? (backend as unknown as CpuBackendish).makeTensorInfo(f.shape, 'float32', df);
}

/** Registers kernels on the cpu and wasm backends, once (the module may be evaluated more than once). */
function registerOnCpuAndWasm(kernels: ReadonlyArray<readonly [string, unknown]>): void {
  for (const backendName of ['wasm', 'cpu'])
    for (const [kernelName, kernelFunc] of kernels)
      if (!tf.getKernel(kernelName, backendName))
        tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as tf.KernelFunc });
}

function registerGradientOnce(config: tf.GradConfig): void {
  if (!tf.getGradient(config.kernelName)) tf.registerGradient(config);
}

/** Runs a gradient kernel on named inputs with the forward kernel's attributes; its outputs in order. */
function runGrad(kernelName: string, inputs: Record<string, tf.Tensor>, attrs: unknown): tf.Tensor[] {
  return tf.engine().runKernel(kernelName, inputs as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor[];
}

/**
 * The tape gradient of a forward kernel whose gradient is one kernel: that kernel runs on dy and the saved
 * inputs (by name) with the forward's attributes, and `grads` hands its outputs to the inputs' names.
 */
function registerGradKernel(
  kernelName: string,
  gradKernel: string,
  save: string[],
  grads: (outs: tf.Tensor[], saved: Record<string, tf.Tensor>) => Record<string, () => tf.Tensor>,
): void {
  registerGradientOnce({
    kernelName,
    inputsToSave: save,
    gradFunc: (dy, savedList, attrs) => {
      const saved = Object.fromEntries(save.map((n, j) => [n, savedList[j]!]));
      return grads(runGrad(gradKernel, { dy: dy as tf.Tensor, ...saved }, attrs), saved);
    },
  });
}

/** Gradients for the inputs r0, r1, … (the raw parameters of the regularizer kernels), in order. */
function rawGrads(outs: tf.Tensor[]): Record<string, () => tf.Tensor> {
  return Object.fromEntries(outs.map((t, j) => [`r${j}`, () => t]));
}

const FWD = 'HgqKifWrapTrain';
const BWD = 'HgqKifWrapTrainGrad';
registerOnCpuAndWasm([
  [FWD, wrapFwdKernel],
  [BWD, wrapBwdKernel],
]);
registerGradientOnce({
  kernelName: FWD,
  inputsToSave: ['x', 'f'],
  gradFunc: (dy, saved, attrs) => {
    const [x, f] = saved as [tf.Tensor, tf.Tensor];
    const d = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor;
    // x: straight through; f: the raw parameter, its rounding straight through; i and decay: none (WRAP)
    return {
      x: () => d,
      f: () => tf.engine().runKernel(BWD, { dy: d, x, f } as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor,
      i: () => tf.zerosLike(f), // only asked for if someone differentiates w.r.t. these
      decay: () => tf.zeros([]),
    };
  },
});

/**
 * Whether the fused training kernels apply: enabled, a cpu backend or a wasm backend whose memory the module
 * can import, and a prefix-homogeneous parameter shape. Otherwise the tf-op path runs (webgl, tfjs-node, …).
 */
export function fusedTrainApplies(xShape: number[], paramShape: number[]): boolean {
  if (!fusedEnabled()) return false;
  const name = tf.getBackend();
  if (name === 'wasm') {
    if (!wasmKernels(tf.backend() as unknown as WasmBackendish)) return false;
  } else if (name !== 'cpu') return false;
  if (xShape.length !== paramShape.length) return false;
  let a = 0;
  while (a < paramShape.length && paramShape[a] === 1) a++;
  for (let b = a; b < paramShape.length; b++) if (paramShape[b] !== xShape[b]) return false;
  return true;
}

/**
 * KIF WRAP training step of a quantizer: x_q = round(x·2^f)·2^-f with f = clip(round(fRaw)) (gradients: x straight
 * through, fRaw gets −ln2·Σ dy·(x_q − x)), and the tracked integer bits
 * iNew = clip(max(iRaw − decay, ceil(log2(absmax(x_q) + 2^-f)))) (no gradient).
 */
export function fusedWrapTrainKif(
  x: tf.Tensor,
  fRaw: tf.Tensor,
  iRaw: tf.Tensor,
  decay: tf.Tensor,
  round: RoundMode,
  fBounds: [number, number],
  iBounds: [number, number],
): { xq: tf.Tensor; iNew: tf.Tensor } {
  const attrs = { round: ROUND_CODES[round], fLo: fBounds[0], fHi: fBounds[1], iLo: iBounds[0], iHi: iBounds[1] };
  const [xq, iNew] = tf
    .engine()
    .runKernel(FWD, { x, f: fRaw, i: iRaw, decay } as unknown as tf.NamedTensorMap, attrs) as tf.Tensor[];
  return { xq: xq!, iNew: iNew! };
}

// ---------------------------------------------------------------------------------------------------------
// SAT / SAT_SYM training (weights and biases by default): JavaScript loops on both backends. Weight tensors are
// small, so here the win is ~45 tfjs ops (forward and backward) per quantizer and step replaced by two.

interface SatAttrs {
  kbi: number;
  round: number;
  sym: number;
  lo1: number;
  hi1: number;
  lo2: number;
  hi2: number;
}
const LN2F = Math.fround(Math.LN2);

/** Per-parameter values of quantizer.ts satTrain, each in float32 as the tf ops compute it. */
function satParams(p1: Float32Array, p2: Float32Array, k: Float32Array, a: SatAttrs) {
  const fr = Math.fround;
  const P = p1.length;
  const scale = new Float32Array(P),
    step = new Float32Array(P),
    top = new Float32Array(P),
    lo = new Float32Array(P),
    hi = new Float32Array(P);
  for (let p = 0; p < P; p++) {
    const r1 = Math.min(Math.max(roundHalfEven(p1[p]!), a.lo1), a.hi1);
    const r2 = Math.min(Math.max(roundHalfEven(p2[p]!), a.lo2), a.hi2);
    // KIF: p1 = i, p2 = f; KBI: p1 = b, p2 = i, f = b − i
    const i = a.kbi ? r2 : r1;
    const f = a.kbi ? fr(r1 - r2) : r2;
    const iEff = Math.max(i, -f);
    scale[p] = fr(pow2(f));
    step[p] = fr(pow2(-f));
    top[p] = fr(pow2(iEff));
    hi[p] = fr(top[p]! - step[p]!);
    lo[p] = -fr(k[p]! * (a.sym ? hi[p]! : top[p]!));
  }
  return { scale, step, top, lo, hi };
}

function satFwdKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info {
  const { x, p1, p2, k } = inputs as { x: Info; p1: Info; p2: Info; k: Info };
  const a = attrs as unknown as SatAttrs;
  return withArrays(backend as never, [x, p1, p2, k], [x.shape], ([xa, p1a, p2a, ka], [out]) => {
    const { scale, step, lo, hi } = satParams(p1a!, p2a!, ka!, a);
    const fr = Math.fround;
    const P = scale.length,
      m = a.round,
      xs = xa!,
      o = out!;
    for (let j = 0, p = 0; j < xs.length; j++) {
      const xc = Math.min(Math.max(xs[j]!, lo[p]!), hi[p]!);
      o[j] = fr(codes(fr(xc * scale[p]!), m) * step[p]!);
      if (++p === P) p = 0;
    }
  })[0]!;
}

function satBwdKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info[] {
  const { dy, x, p1, p2, k } = inputs as { dy: Info; x: Info; p1: Info; p2: Info; k: Info };
  const a = attrs as unknown as SatAttrs;
  return withArrays(
    backend as never,
    [dy, x, p1, p2, k],
    [x.shape, p1.shape, p1.shape],
    ([dya, xa, p1a, p2a, ka], [dxo, d1, d2]) => {
      const { scale, step, top, lo, hi } = satParams(p1a!, p2a!, ka!, a);
      const fr = Math.fround;
      const P = scale.length,
        m = a.round,
        xs = xa!,
        dys = dya!,
        kk = ka!;
      const sf = new Float64Array(P),
        si = new Float64Array(P);
      const stepLn2 = step.map((v) => fr(v * LN2F)),
        topLn2 = top.map((v) => fr(v * LN2F));
      for (let j = 0, p = 0; j < xs.length; j++) {
        const x0 = xs[j]!,
          d = dys[j]!;
        const over = x0 > hi[p]! ? 1 : 0,
          under = x0 < lo[p]! ? 1 : 0;
        const xc = Math.min(Math.max(x0, lo[p]!), hi[p]!);
        const xq = fr(codes(fr(xc * scale[p]!), m) * step[p]!);
        dxo![j] = d * (1 - (over + under));
        // ∂x_q/∂f = −ln2·(x_q − x_c) + ln2·2^-f·(over − sym·k·under); ∂x_q/∂i = ln2·2^i·(over − k·under)
        const dfe = fr(fr(fr(xq - xc) * NLN2) + fr(stepLn2[p]! * fr(over - fr(under * fr(kk[p]! * a.sym)))));
        const die = fr(topLn2[p]! * fr(over - fr(under * kk[p]!)));
        sf[p] += fr(d * dfe);
        si[p] += fr(d * die);
        if (++p === P) p = 0;
      }
      for (let p = 0; p < P; p++) {
        const df = fr(sf[p]!),
          di = fr(si[p]!);
        // KIF: (∂i, ∂f); KBI: (∂b, ∂i_raw) = (∂f, ∂i − ∂f)
        d1![p] = a.kbi ? df : di;
        d2![p] = a.kbi ? fr(di - df) : df;
      }
    },
  );
}

const SAT_FWD = 'HgqSatTrain';
const SAT_BWD = 'HgqSatTrainGrad';
registerOnCpuAndWasm([
  [SAT_FWD, satFwdKernel],
  [SAT_BWD, satBwdKernel],
]);
registerGradKernel(SAT_FWD, SAT_BWD, ['x', 'p1', 'p2', 'k'], ([dx, d1, d2], { p1 }) => ({
  x: () => dx!,
  p1: () => d1!,
  p2: () => d2!,
  k: () => tf.zerosLike(p1!),
}));

/**
 * SAT / SAT_SYM training forward of quantizer.ts satTrain as one kernel with a one-kernel gradient. KIF: p1 = i_raw,
 * p2 = f_raw, bounds1 = i bounds, bounds2 = f bounds; KBI: p1 = b_raw, p2 = i_raw, bounds1 = b, bounds2 = i.
 */
export function fusedSatTrain(
  x: tf.Tensor,
  p1: tf.Tensor,
  p2: tf.Tensor,
  k: tf.Tensor,
  kbi: boolean,
  round: RoundMode,
  overflow: OverflowMode,
  bounds1: [number, number],
  bounds2: [number, number],
): tf.Tensor {
  if (overflow === 'WRAP') throw new Error('fusedSatTrain: WRAP has its own kernel');
  const attrs: SatAttrs = {
    kbi: kbi ? 1 : 0,
    round: ROUND_CODES[round],
    sym: overflow === 'SAT_SYM' ? 1 : 0,
    lo1: bounds1[0],
    hi1: bounds1[1],
    lo2: bounds2[0],
    hi2: bounds2[1],
  };
  return tf
    .engine()
    .runKernel(SAT_FWD, { x, p1, p2, k } as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

// ---------------------------------------------------------------------------------------------------------
// bits for EBOPs (quantizer.ts bits()): one kernel and a one-kernel gradient instead of ~12 small ops and saves

interface BitsAttrs {
  kif: number;
  sat: number;
  loA: number;
  hiA: number;
  loB: number;
  hiB: number;
}

/** KBI: round(clip(b)); KIF: relu(round(clip(i)) + round(clip(f))); plus k under SAT. */
function bitsKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info {
  const { a, b, k } = inputs as { a: Info; b?: Info; k: Info };
  const at = attrs as unknown as BitsAttrs;
  return withArrays(backend as never, [a, b ?? a, k], [a.shape], ([aa, ba, ka], [out]) => {
    for (let p = 0; p < aa!.length; p++) {
      const ra = roundHalfEven(Math.min(Math.max(aa![p]!, at.loA), at.hiA));
      let bits = at.kif ? Math.max(ra + roundHalfEven(Math.min(Math.max(ba![p]!, at.loB), at.hiB)), 0) : ra;
      if (at.sat) bits = Math.fround(bits + ka![p]!);
      out![p] = bits;
    }
  })[0]!;
}

/** Straight-through rounding; zero outside the clip bounds (inclusive, as tf.clipByValue) and where KIF's relu is off. */
function bitsGradKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info[] {
  const { dy, a, b } = inputs as { dy: Info; a: Info; b?: Info };
  const at = attrs as unknown as BitsAttrs;
  return withArrays(backend as never, [dy, a, b ?? a], at.kif ? [a.shape, a.shape] : [a.shape], ([dya, aa, ba], [da, db]) => {
    for (let p = 0; p < aa!.length; p++) {
      const av = aa![p]!,
        d = dya![p]!;
      const inA = av >= at.loA && av <= at.hiA;
      if (!at.kif) {
        da![p] = inA ? d : 0;
        continue;
      }
      const bv = ba![p]!;
      const inB = bv >= at.loB && bv <= at.hiB;
      const on =
        roundHalfEven(Math.min(Math.max(av, at.loA), at.hiA)) + roundHalfEven(Math.min(Math.max(bv, at.loB), at.hiB)) > 0;
      da![p] = on && inA ? d : 0;
      db![p] = on && inB ? d : 0;
    }
  });
}

// KIF (inputs a = i, b = f) and KBI (a = b only) are two kernel names: the tape saves exactly the inputs each needs
const BITS = 'HgqBits',
  BITS_KBI = 'HgqBitsKbi';
const BITS_GRAD = 'HgqBitsGrad';
registerOnCpuAndWasm([
  [BITS, bitsKernel],
  [BITS_KBI, bitsKernel],
  [BITS_GRAD, bitsGradKernel],
]);
registerGradKernel(BITS, BITS_GRAD, ['a', 'b'], ([da, db], { a }) => ({ a: () => da!, b: () => db!, k: () => tf.zerosLike(a!) }));
registerGradKernel(BITS_KBI, BITS_GRAD, ['a'], ([da], { a }) => ({ a: () => da!, k: () => tf.zerosLike(a!) }));

/** Whether the small-tensor kernels (bits) apply: enabled, on cpu or wasm. */
export function fusedSmallApplies(): boolean {
  return fusedEnabled() && (tf.getBackend() === 'wasm' || tf.getBackend() === 'cpu');
}

/**
 * Bits of a quantizer's parameters for EBOPs with straight-through gradients into the raw parameters. KBI: a = b_raw
 * (b bounds), b = null; KIF: a = i_raw, b = f_raw. `sat` adds k.
 */
export function fusedBits(
  a: tf.Tensor,
  b: tf.Tensor | null,
  k: tf.Tensor,
  sat: boolean,
  boundsA: [number, number],
  boundsB: [number, number],
): tf.Tensor {
  const attrs: BitsAttrs = {
    kif: b ? 1 : 0,
    sat: sat ? 1 : 0,
    loA: boundsA[0],
    hiA: boundsA[1],
    loB: boundsB[0],
    hiB: boundsB[1],
  };
  const inputs = b ? { a, b, k } : { a, k };
  return tf
    .engine()
    .runKernel(b ? BITS : BITS_KBI, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

// ---------------------------------------------------------------------------------------------------------
// L1 pressure of several parameter tensors (a layer's quantizers) as one kernel, gradient one kernel, no saves

interface L1Attrs {
  l1s: number[];
  shapes: number[][];
}

function l1Kernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info {
  const a = attrs as unknown as L1Attrs;
  const ins = a.l1s.map((_, j) => (inputs as Record<string, Info>)[`r${j}`]!);
  return withArrays(backend as never, ins, [[]], (arrs, [out]) => {
    let s = 0;
    arrs.forEach((r, j) => {
      let t = 0;
      for (let p = 0; p < r.length; p++) t += r[p]!;
      s += t * Math.fround(a.l1s[j]!);
    });
    out![0] = s;
  })[0]!;
}

function l1GradKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info[] {
  const a = attrs as unknown as L1Attrs;
  const { dy } = inputs as { dy: Info };
  return withArrays(backend as never, [dy], a.shapes, ([d], outs) => {
    outs.forEach((o, j) => o.fill(Math.fround(d![0]! * Math.fround(a.l1s[j]!))));
  });
}

const L1 = 'HgqL1';
const L1_GRAD = 'HgqL1Grad';
registerOnCpuAndWasm([
  [L1, l1Kernel],
  [L1_GRAD, l1GradKernel],
]);
registerGradKernel(L1, L1_GRAD, [], rawGrads);

/** Σ_j l1s[j]·Σ raws[j] (accumulated in float64) with gradient l1s[j] per element: one kernel each way. */
export function fusedL1(raws: tf.Tensor[], l1s: number[]): tf.Scalar {
  const inputs = Object.fromEntries(raws.map((t, j) => [`r${j}`, t]));
  const attrs = { l1s, shapes: raws.map((t) => t.shape) };
  return tf.engine().runKernel(L1, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Scalar;
}

// ---------------------------------------------------------------------------------------------------------
// the loss term of a layer: β·factor·EBOPs + L1, and a dense layer's EBOPs Σ(a @ B) + s·Σc, one kernel each way

interface TailAttrs {
  factor: number;
  l1s: number[];
  shapes: number[][];
}

function regTailKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info {
  const at = attrs as unknown as TailAttrs;
  const ins = inputs as Record<string, Info>;
  const raws = at.l1s.map((_, j) => ins[`r${j}`]!);
  return withArrays(backend as never, [ins['e']!, ins['beta']!, ...raws], [[]], ([e, beta, ...rs], [out]) => {
    const fr = Math.fround;
    let l1 = 0;
    rs.forEach((r, j) => {
      let t = 0;
      for (let p = 0; p < r.length; p++) t += r[p]!;
      l1 += t * fr(at.l1s[j]!);
    });
    const eb = fr((at.factor === 1 ? e![0]! : fr(e![0]! * at.factor)) * beta![0]!);
    out![0] = rs.length ? fr(eb + fr(l1)) : eb;
  })[0]!;
}

function regTailGradKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info[] {
  const at = attrs as unknown as TailAttrs;
  const { dy, e, beta } = inputs as { dy: Info; e: Info; beta: Info };
  return withArrays(backend as never, [dy, e, beta], [[], [], ...at.shapes], ([d, ea, ba], [de, db, ...outs]) => {
    const fr = Math.fround;
    const g = d![0]!;
    // as the tf ops: ∂(e·factor·β)/∂e = (dy·β)·factor, ∂/∂β = dy·(e·factor); ∂L1/∂raw = dy·l1
    de![0] = at.factor === 1 ? fr(g * ba![0]!) : fr(fr(g * ba![0]!) * at.factor);
    db![0] = fr(g * (at.factor === 1 ? ea![0]! : fr(ea![0]! * at.factor)));
    outs.forEach((o, j) => o.fill(fr(g * fr(at.l1s[j]!))));
  });
}

interface BilAttrs {
  cScale: number;
  cLen: number;
}

function bilinearKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info {
  const at = attrs as unknown as BilAttrs;
  const { a, B, c } = inputs as { a: Info; B: Info; c?: Info };
  const K = a.shape[a.shape.length - 1]!,
    N = B.shape[1]!;
  return withArrays(backend as never, c ? [a, B, c] : [a, B], [[]], ([aa, Ba, ca], [out]) => {
    let s = 0;
    for (let k = 0; k < K; k++) {
      let colA = 0,
        rowB = 0;
      for (let r = k; r < aa!.length; r += K) colA += aa![r]!;
      for (let n = 0; n < N; n++) rowB += Ba![k * N + n]!;
      s += colA * rowB;
    }
    if (ca) {
      let t = 0;
      for (let n = 0; n < ca.length; n++) t += ca[n]!;
      s += t * at.cScale;
    }
    out![0] = s;
  })[0]!;
}

function bilinearGradKernel({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): Info[] {
  const at = attrs as unknown as BilAttrs;
  const { dy, a, B } = inputs as { dy: Info; a: Info; B: Info };
  const K = a.shape[a.shape.length - 1]!,
    N = B.shape[1]!;
  const shapes = at.cLen >= 0 ? [a.shape, B.shape, [at.cLen]] : [a.shape, B.shape];
  return withArrays(backend as never, [dy, a, B], shapes, ([d, aa, Ba], [da, dB, dc]) => {
    const fr = Math.fround;
    const g = d![0]!;
    for (let k = 0; k < K; k++) {
      let colA = 0,
        rowB = 0;
      for (let r = k; r < aa!.length; r += K) colA += aa![r]!;
      for (let n = 0; n < N; n++) rowB += Ba![k * N + n]!;
      const gA = fr(g * rowB),
        gB = fr(g * colA);
      for (let r = k; r < aa!.length; r += K) da![r] = gA;
      for (let n = 0; n < N; n++) dB![k * N + n] = gB;
    }
    if (dc) dc.fill(fr(g * at.cScale));
  });
}

const TAIL = 'HgqRegTail',
  TAIL_GRAD = 'HgqRegTailGrad',
  BIL = 'HgqBilinearSum',
  BIL_GRAD = 'HgqBilinearSumGrad';
registerOnCpuAndWasm([
  [TAIL, regTailKernel],
  [TAIL_GRAD, regTailGradKernel],
  [BIL, bilinearKernel],
  [BIL_GRAD, bilinearGradKernel],
]);
registerGradKernel(TAIL, TAIL_GRAD, ['e', 'beta'], ([de, db, ...raws]) => ({
  e: () => de!,
  beta: () => db!,
  ...rawGrads(raws),
}));
registerGradKernel(BIL, BIL_GRAD, ['a', 'B'], ([da, dB, dc]) => ({ a: () => da!, B: () => dB!, ...(dc ? { c: () => dc } : {}) }));

/**
 * e·factor·β + Σ_j l1s[j]·Σ raws[j]: a layer's loss term from its EBOPs `e` (scalar) as one kernel with a one-kernel
 * gradient (into e, β and the raw parameters), in place of ~4 ops per quantizer plus the products and sums.
 */
export function fusedRegTail(e: tf.Tensor, beta: tf.Tensor, factor: number, raws: tf.Tensor[], l1s: number[]): tf.Scalar {
  const inputs = { e, beta, ...Object.fromEntries(raws.map((t, j) => [`r${j}`, t])) };
  const attrs: TailAttrs = { factor, l1s, shapes: raws.map((t) => t.shape) };
  return tf.engine().runKernel(TAIL, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Scalar;
}

/**
 * Σ(a @ B) + cScale·Σ c (a: [R, K], B: [K, N], c optional) in float64, rounded once to float32 (exact for integer
 * bit counts below 2^24, where the tf-op sum of the matmul is exact too); gradient: ∂a[r,k] = Σ_n B[k,n],
 * ∂B[k,n] = Σ_r a[r,k], ∂c = cScale. A dense layer's EBOPs from its bit maps.
 */
export function fusedBilinearSum(a: tf.Tensor, B: tf.Tensor, c: tf.Tensor | null, cScale: number): tf.Scalar {
  const attrs: BilAttrs = { cScale, cLen: c ? c.size : -1 };
  const inputs = c ? { a, B, c } : { a, B };
  return tf.engine().runKernel(BIL, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Scalar;
}
