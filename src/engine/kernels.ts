/**
 * Loading the compiled engine kernels (assembly/engine.ts → src/engine/wasm/*.wasm). Browser-safe: Node's fs
 * and v8 are imported dynamically only when running under Node. The relaxed-SIMD build (FMA) is used when the
 * runtime validates it; Node 20 needs a V8 flag for that, which we set programmatically (no user flags).
 */

/** Arguments of the dense layer's input gradient (both weight layouts). */
type DenseBwdDxArgs = [
  dz: number,
  N: number,
  W: number,
  K: number,
  CB: number,
  nbPad: number,
  flags: number,
  hIn: number,
  aIn: number,
  prep: number,
  dzOut: number,
  sums: number,
  scratch: number,
];
/** Arguments the losses share (softmax_ce also counts hits). */
type LossArgs = [
  z: number,
  y: number,
  C: number,
  CB: number,
  nbPad: number,
  nbValid: number,
  invB: number,
  dz: number,
  flags: number,
];
/** Arguments the pooling kernels share: the window gather (idx, KK taps, Pn windows) of n rows into `out`. */
type PoolArgs = [A: number, S: number, n: number, C: number, idx: number, KK: number, Pn: number, out: number];

/** The EBOPs kernels' operands: the input quantizer's (i, f, k) and the weight quantizer's (b, k) arrays with their modes. */
type EbopsOperands = [iI: number, iF: number, iK: number, inMode: number, wB: number, wK: number, wMode: number];

export interface KernelExports {
  prep_act(n: number, iraw: number, fraw: number, k: number, mode: number, prep: number): void;
  act_q(
    h: number,
    a: number,
    K: number,
    CB: number,
    nbPad: number,
    nbValid: number,
    flags: number,
    prep: number,
    absmax: number,
  ): void;
  dense_fwd(
    aIn: number,
    K: number,
    W: number,
    N: number,
    bias: number,
    out: number,
    CB: number,
    nbPad: number,
    flags: number,
    prep: number,
    aOut: number,
    absmax: number,
    nbValid: number,
    scratch: number,
  ): void;
  dense_bwd_dw(aIn: number, K: number, dz: number, N: number, CB: number, nbPad: number, gW: number, gB: number): void;
  dense_bwd_dx(...a: DenseBwdDxArgs): void;
  /** dense_bwd_dx with the weights transposed (W is WT, N×K) */
  dense_bwd_dx_t(...a: DenseBwdDxArgs): void;
  transpose_w(src: number, K: number, N: number, dst: number): void;
  transpose_w_rows(src: number, K: number, N: number, dst: number, r0: number, nr: number): void;
  softmax_ce(...a: [...LossArgs, hits: number]): number;
  mse(...a: LossArgs): number;
  transpose_in(src: number, K: number, row0: number, nb: number, dst: number, CB: number, nbPad: number): void;
  zero(p: number, n: number): void;
  add_into(dst: number, src: number, n: number): void;
  max_into(dst: number, src: number, n: number): void;
  run_slice(plan: number, t: number, start: number, count: number): void;
  kbi_fwd(n: number, w: number, braw: number, iraw: number, k: number, mode: number, out: number): void;
  kbi_bwd(
    n: number,
    w: number,
    braw: number,
    iraw: number,
    k: number,
    mode: number,
    wq: number,
    g: number,
    gw: number,
    gb: number,
    gi: number,
  ): void;
  kif_grads(n: number, iraw: number, fraw: number, k: number, mode: number, sums: number, gi: number, gf: number): void;
  wrap_track(n: number, iraw: number, fraw: number, absmax: number, decay: number, iLo: number, iHi: number): void;
  ebops_dense(
    ...a: [
      K: number,
      N: number,
      ...EbopsOperands,
      bB: number,
      bK: number,
      bMode: number,
      beta: number,
      gInI: number,
      gInF: number,
      gWB: number,
      gBB: number,
    ]
  ): number;
  ebops_dense_rows(
    ...a: [nr: number, N: number, ...EbopsOperands, beta: number, gInI: number, gInF: number, gWB: number, out: number]
  ): void;
  ebops_bias(N: number, bB: number, bK: number, bMode: number, beta: number, gBB: number, out: number): void;
  l1(n: number, p: number, lambda: number, g: number): number;
  sum_f64(n: number, p: number): number;
  add_scalar(n: number, g: number, c: number): void;
  clamp(n: number, p: number, lo: number, hi: number): void;
  adam(
    n: number,
    p: number,
    g: number,
    m: number,
    v: number,
    lr: number,
    b1: number,
    b2: number,
    eps: number,
    omb1: number,
    omb2: number,
    c1: number,
    c2: number,
    lo: number,
    hi: number,
  ): void;
  // graph path (src/engine/graph.ts)
  act_q_bwd(
    g: number,
    h: number,
    a: number,
    K: number,
    S: number,
    n: number,
    flags: number,
    prep: number,
    dst: number,
    sums: number,
  ): void;
  relu_mask(d: number, out: number, n: number): void;
  copy_f32(dst: number, src: number, n: number): void;
  perm_rows(src: number, srcS: number, dst: number, dstS: number, A: number, Bn: number, len: number): void;
  im2col(A: number, S: number, c0: number, C: number, idx: number, KK: number, Pn: number, P: number, cb: number): void;
  col2im_add(dP: number, cb: number, C: number, idx: number, KK: number, Pn: number, dA: number, S: number, c0: number): void;
  pool_max_fwd(...a: PoolArgs): void;
  pool_max_bwd(...a: [...PoolArgs, dz: number, dA: number]): void;
  pool_avg_fwd(...a: [...PoolArgs, div: number, mode: number]): void;
  pool_avg_bwd(
    S: number,
    n: number,
    C: number,
    idx: number,
    KK: number,
    Pn: number,
    dz: number,
    div: number,
    mode: number,
    dA: number,
  ): void;
  bn_stats(A: number, K: number, S: number, nValid: number, mean: number, variance: number): void;
  bn_dx_add(dA: number, A: number, K: number, S: number, nValid: number, gm: number, gv: number, mean: number): void;
  chan_affine(A: number, S: number, n: number, r0: number, R: number, C: number, s: number, o: number, out: number): void;
  chan_affine_bwd(
    dy: number,
    A: number,
    S: number,
    n: number,
    r0: number,
    R: number,
    C: number,
    s: number,
    dA: number,
    gs: number,
    go: number,
  ): void;
  ew_fwd(op: number, a: number, b: number, out: number, n: number): void;
  ew_bwd(op: number, a: number, b: number, g: number, ga: number, gb: number, n: number): void;
  // table layers (QDenseT): see assembly/engine.ts for the layouts
  lut_fwd(...a: [...LutRows, iqPrep: number, iqFlags: number, amx: number, ...LutMlp, Y: number, scratch: number]): void;
  lut_q(...a: [...LutNorm, tqPrep: number, part: number]): void;
  lut_q_bwd(...a: [...LutNorm, tqPrep: number, dz: number, G: number, tqSums: number, rsum: number]): void;
  lut_bwd(
    ...a: [
      ...LutRows,
      iqPrep: number,
      iqFlags: number,
      iqSums: number,
      ...LutMlp,
      gtab: number,
      G: number,
      Y: number,
      coef: number,
      flags: number,
      dA: number,
      nAcc: number,
      scratch: number,
    ]
  ): void;
  relu_fwd(p: number, n: number): void;
}

/** The table kernels' input rows: input X (rows of Pn blocks of S columns, nbValid real samples each), rows r0..r0+nr, nOut edges each. */
type LutRows = [X: number, S: number, nbValid: number, r0: number, nr: number, nOut: number, Pn: number];
/** The per-edge MLP: hidden layers, width, sub-network activation code, weight address table. */
type LutMlp = [nHl: number, d: number, act: number, wtab: number];
/** The edge values' normalization: Y rows, per-output coefficients, √n_in, flags (bit0 batch norm). */
type LutNorm = [
  Y: number,
  S: number,
  r0: number,
  nr: number,
  nOut: number,
  Pn: number,
  coef: number,
  sqrtN: number,
  flags: number,
];

// The project compiles without the DOM lib, so the WebAssembly API is typed locally (no global declarations).
/** A compiled WebAssembly module (opaque). */
export type WasmModule = object & { readonly __wasmModule?: never };
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (m: WasmModule, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface LoadedKernels {
  module: WasmModule;
  /** true when the relaxed-SIMD (FMA) build was selected */
  relaxed: boolean;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

async function readArtifact(name: string): Promise<Uint8Array> {
  const url = new URL(`./wasm/${name}`, import.meta.url);
  if (isNode) {
    const { readFile } = await import('node:fs/promises');
    return new Uint8Array(await readFile(url));
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`hgq engine: cannot fetch ${url} (${res.status})`);
  return new Uint8Array(await res.arrayBuffer());
}

let relaxedFlagTried = false;

/** Whether this runtime accepts the relaxed-SIMD build (turning V8's flag on under Node 20 if needed). */
export async function relaxedSimdSupported(bytes: Uint8Array): Promise<boolean> {
  if (WA.validate(bytes)) return true;
  if (isNode && !relaxedFlagTried) {
    relaxedFlagTried = true;
    try {
      const v8 = await import('node:v8');
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      return false;
    }
    return WA.validate(bytes);
  }
  return false;
}

const cache = new Map<string, Promise<LoadedKernels>>();

/**
 * Compiles the kernels. `simd: 'auto'` picks relaxed-SIMD when available, `'relaxed'` requires it,
 * `'simd128'` forces the plain build (deterministic across hosts: no FMA contraction).
 */
export function loadKernels(simd: 'auto' | 'relaxed' | 'simd128' = 'auto'): Promise<LoadedKernels> {
  let p = cache.get(simd);
  if (!p) {
    p = (async () => {
      if (simd !== 'simd128') {
        const rbytes = await readArtifact('engine.relaxed.wasm');
        if (await relaxedSimdSupported(rbytes)) {
          return { module: await WA.compile(rbytes), relaxed: true };
        }
        if (simd === 'relaxed')
          throw new Error('hgq engine: relaxed SIMD is not supported by this runtime; use simd: "auto" or "simd128"');
      }
      const bytes = await readArtifact('engine.simd.wasm');
      if (!WA.validate(bytes)) {
        throw new Error('hgq engine: this runtime lacks WebAssembly SIMD (simd128); use the tfjs engine (--engine tfjs)');
      }
      return { module: await WA.compile(bytes), relaxed: false };
    })();
    cache.set(simd, p);
  }
  return p;
}

export function instantiate(module: WasmModule, memory: WasmMemory): KernelExports {
  const inst = new WA.Instance(module, { env: { memory } });
  return inst.exports as unknown as KernelExports;
}
