/**
 * The fast training engine: a model description (layer sizes, parameter arrays, quantizer configs) laid out
 * in one shared WebAssembly.Memory, trained by fused forward+backward+Adam steps in the compiled kernels.
 * Threads split the batch (each runs `run_slice` over its samples into its own gradient block); the main
 * thread reduces the blocks and runs the per-parameter work (weight quantizers, EBOPs, L1, Adam).
 *
 * No Node-only API here: threads come from a `ThreadPool` adapter (src/engine/pool-node.ts under Node).
 */
import { instantiate, loadKernels, WA, type KernelExports, type WasmMemory, type WasmModule } from './kernels.ts';
import { AdamState, checkArr, paramGradients, type Param } from './params.ts';

export type ActOverflow = 'WRAP' | 'SAT' | 'SAT_SYM';

/** KIF quantizer (activations), one parameter per feature (batch axis shared). */
export interface KifDesc {
  overflow: ActOverflow;
  round?: 'RND';
  k: Float32Array;
  i: Float32Array;
  f: Float32Array;
  iBounds?: [number, number];
  fBounds?: [number, number];
  /** MonoL1 coefficient (λ·Σ raw i and f, HGQ2's default regularizer) */
  l1?: number;
  /** WRAP integer-bit decay per step (default 0.01) */
  decay?: number;
}

/** KBI quantizer (weights, biases), one parameter per element. */
export interface KbiDesc {
  overflow: 'SAT' | 'SAT_SYM';
  round?: 'RND';
  k: Float32Array;
  b: Float32Array;
  i: Float32Array;
  bBounds?: [number, number];
  iBounds?: [number, number];
  /** MonoL1 coefficient (λ·Σ raw b) */
  l1?: number;
}

export interface DenseDesc {
  type: 'dense';
  inputs: number;
  units: number;
  activation: 'relu' | 'linear';
  /** inputs×units, row-major (the tfjs kernel layout) */
  kernel: Float32Array;
  bias?: Float32Array | null;
  iq?: KifDesc | null;
  kq?: KbiDesc | null;
  bq?: KbiDesc | null;
  /** EBOPs weight in the loss */
  beta?: number;
}

export interface AdamConfig {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  /** tfjs default: the backend epsilon, 1e-7 for float32 */
  epsilon?: number;
}

export interface ModelDesc {
  layers: DenseDesc[];
  loss: 'softmax_cross_entropy' | 'mse';
  optimizer: AdamConfig;
}

export interface ThreadPool {
  readonly size: number;
  /** runs run_slice(plan, t, start, count) on worker t−1 for t = 1..size, synchronously waiting for all */
  runSlices(slices: Array<[number, number]>, ownSlice: () => void): void;
  dispose(): void;
}

export type ThreadPoolFactory = (module: WasmModule, memory: WasmMemory, plan: number, ctrl: number, workers: number) => Promise<ThreadPool>;

export interface EngineOptions {
  /** worker threads including the calling thread; default: all cores (1 when no pool factory is available) */
  threads?: number;
  /** samples per cache-resident chunk (multiple of 16; default 256, 128 when a layer has more than 512 inputs) */
  chunk?: number;
  simd?: 'auto' | 'relaxed' | 'simd128';
  /** custom thread pool (browsers: Web Workers); Node uses worker_threads by default */
  poolFactory?: ThreadPoolFactory;
  /**
   * 'dynamic' (default): threads take chunks from a shared counter (robust on a busy machine; the float sum
   * order of the gradients then varies run to run at rounding level); 'static': fixed contiguous slices,
   * bit-reproducible for a given thread count.
   */
  schedule?: 'dynamic' | 'static';
}

export interface StepResult {
  /** task loss (mean over the batch) + Σ β·EBOPs + L1 terms, as the tfjs model's total loss */
  loss: number;
  taskLoss: number;
  ebops: number;
  /** Σ β_l·EBOPs_l */
  ebopsLoss: number;
  l1Loss: number;
  /** fraction of samples whose target class has the largest logit (softmax cross-entropy only; NaN for MSE) */
  accuracy: number;
}

const OVF_MODE: Record<string, number> = { WRAP: 0, SAT: 1, SAT_SYM: 2 };
const PLAN_WORDS_HEAD = 32;
const PLAN_WORDS_LAYER = 16;
export const CTRL_WORDS = 4 + 2 * 256;
const PAGE = 65536;
const MAX_PAGES = 16384; // 1 GiB

class Arena {
  constructor(public off: number) {}
  alloc(bytes: number, align = 64): number {
    this.off = Math.ceil(this.off / align) * align;
    const p = this.off;
    this.off += Math.max(bytes, 4);
    return p;
  }
}

interface LayerMem {
  K: number;
  N: number;
  flags: number;
  W: number; Wq: number; WqT: number; kq?: { b: number; i: number; k: number; mode: number };
  bias: number; bq: number; bqq?: { b: number; i: number; k: number; mode: number };
  iq?: { i: number; f: number; k: number; mode: number; prep: number; decay: number; iBounds: [number, number] };
  gWo: number; gBo: number; sumsO: number; amxO: number;
  // main-thread param-gradient scratch for dWq, dbq (reduced)
  pW: Param; pB?: Param; pKb?: Param; pKi?: Param; pBb?: Param; pBi?: Param; pIf?: Param; pIi?: Param;
  beta: number;
}

export class Engine {
  readonly memory: WasmMemory;
  readonly k: KernelExports;
  readonly relaxed: boolean;
  readonly threads: number;
  readonly chunk: number;
  schedule: 'dynamic' | 'static' = 'dynamic';
  private readonly desc: ModelDesc;
  private readonly layers: LayerMem[] = [];
  readonly params: Param[] = [];
  private plan = 0;
  private ctrl = 0;
  private threadBase = 0;
  private threadBytes = 0;
  private lossO = 0;
  private inputPtr = 0;
  private inputCap = 0; // samples
  private pool: ThreadPool | null = null;
  private readonly adam: AdamState;
  get iterations(): number { return this.adam.iterations; }
  private readonly K0: number;
  private readonly C: number;

  private constructor(desc: ModelDesc, module: WasmModule, relaxed: boolean, threads: number, chunk: number) {
    this.desc = desc;
    this.relaxed = relaxed;
    this.threads = threads;
    this.chunk = chunk;
    const L = desc.layers.length;
    this.K0 = desc.layers[0].inputs;
    this.C = desc.layers[L - 1].units;
    this.adam = new AdamState(desc.optimizer);

    // ---- plan the memory
    const ar = new Arena(1024);
    this.plan = ar.alloc(4 * (PLAN_WORDS_HEAD + PLAN_WORDS_LAYER * L));
    this.ctrl = ar.alloc(4 * CTRL_WORDS);
    const arrays: Array<{ ptr: number; src: Float32Array }> = [];
    const put = (src: Float32Array): number => { const p = ar.alloc(src.length * 4); arrays.push({ ptr: p, src }); return p; };
    const param = (name: string, src: Float32Array, trainable: boolean, bounds: [number, number] | undefined, l1: number | undefined): Param => {
      const n = src.length;
      const p: Param = { name, ptr: put(src), n, grad: ar.alloc(n * 4), m: ar.alloc(n * 4), v: ar.alloc(n * 4),
        lo: bounds ? bounds[0] : -Infinity, hi: bounds ? bounds[1] : Infinity, l1: l1 ?? 0, trainable };
      this.params.push(p);
      return p;
    };
    // per-thread layout (relative offsets)
    const CB = chunk;
    let tOff = 0;
    const talloc = (floats: number) => { tOff = Math.ceil(tOff / 64) * 64; const o = tOff; tOff += Math.max(floats, 1) * 4; return o; };
    let gOff = 0;
    const galloc = (floats: number) => { const o = gOff; gOff += Math.ceil(floats / 4) * 4; return o * 4; };
    const X = talloc(this.K0 * CB), Y = talloc(this.C * CB), Z = talloc(this.C * CB);
    let maxW = 0;
    for (const l of desc.layers) maxW = Math.max(maxW, l.units, l.inputs);
    const D0 = talloc(maxW * CB), D1 = talloc(maxW * CB);
    const scratch = talloc(48); // 192 bytes: dense_bwd_dx keeps three running row sums for four rows
    const Hoffs: number[] = [], Aoffs: number[] = [];

    desc.layers.forEach((ld, li) => {
      if (ld.type !== 'dense') throw new Error(`hgq engine: layer ${li} has unsupported type ${(ld as { type: string }).type}`);
      const K = ld.inputs, N = ld.units;
      if (!(K > 0 && N > 0 && Number.isInteger(K) && Number.isInteger(N))) throw new Error(`hgq engine: layer ${li} has invalid sizes ${K}×${N}`);
      if (li > 0 && desc.layers[li - 1].units !== K) throw new Error(`hgq engine: layer ${li} expects ${K} inputs but layer ${li - 1} has ${desc.layers[li - 1].units} units`);
      if (ld.activation !== 'relu' && ld.activation !== 'linear') throw new Error(`hgq engine: layer ${li} activation ${ld.activation} is not supported (relu or linear)`);
      const pre = `layers[${li}]`;
      const pW = param(`${pre}.kernel`, checkArr(ld.kernel, K * N, `${pre}.kernel`), true, undefined, undefined);
      const lm: LayerMem = { K, N, flags: 0, W: pW.ptr, Wq: pW.ptr, WqT: ar.alloc(K * N * 4), bias: 0, bq: 0, gWo: 0, gBo: -1, sumsO: 0, amxO: 0, pW, beta: ld.beta ?? 0 };
      const kbi = (q: KbiDesc, n: number, what: string, isBias: boolean) => {
        if ((q.round ?? 'RND') !== 'RND') throw new Error(`hgq engine: ${what} round mode ${q.round} is not supported (RND only)`);
        if (q.overflow !== 'SAT' && q.overflow !== 'SAT_SYM') throw new Error(`hgq engine: ${what} overflow ${q.overflow} is not supported (SAT, SAT_SYM)`);
        const pb = param(`${what}.b`, checkArr(q.b, n, `${what}.b`), true, q.bBounds ?? [0, 23], q.l1);
        const pi = param(`${what}.i`, checkArr(q.i, n, `${what}.i`), true, q.iBounds ?? [-24, 24], 0);
        const kk = put(checkArr(q.k, n, `${what}.k`));
        const mem = { b: pb.ptr, i: pi.ptr, k: kk, mode: OVF_MODE[q.overflow] };
        if (isBias) { lm.bqq = mem; lm.pBb = pb; lm.pBi = pi; } else { lm.kq = mem; lm.pKb = pb; lm.pKi = pi; }
      };
      if (ld.kq) { kbi(ld.kq, K * N, `${pre}.kq`, false); lm.Wq = ar.alloc(K * N * 4); }
      if (ld.bias) {
        lm.pB = param(`${pre}.bias`, checkArr(ld.bias, N, `${pre}.bias`), true, undefined, undefined);
        lm.bias = lm.pB.ptr; lm.bq = lm.bias;
        if (ld.bq) { kbi(ld.bq, N, `${pre}.bq`, true); lm.bq = ar.alloc(N * 4); }
      } else if (ld.bq) throw new Error(`hgq engine: ${pre} has a bias quantizer but no bias`);
      if (ld.iq) {
        const q = ld.iq;
        if ((q.round ?? 'RND') !== 'RND') throw new Error(`hgq engine: ${pre}.iq round mode ${q.round} is not supported (RND only)`);
        if (!(q.overflow in OVF_MODE)) throw new Error(`hgq engine: ${pre}.iq overflow ${q.overflow} is not supported`);
        const wrap = q.overflow === 'WRAP';
        const iB = q.iBounds ?? [-24, 24];
        // under WRAP i follows the data (not trained) but its L1 term still counts in the loss, as in tfjs
        lm.pIi = param(`${pre}.iq.i`, checkArr(q.i, K, `${pre}.iq.i`), !wrap, iB, q.l1);
        lm.pIf = param(`${pre}.iq.f`, checkArr(q.f, K, `${pre}.iq.f`), true, q.fBounds ?? [-24, 24], q.l1);
        lm.iq = { i: lm.pIi.ptr, f: lm.pIf.ptr, k: put(checkArr(q.k, K, `${pre}.iq.k`)), mode: OVF_MODE[q.overflow],
          prep: ar.alloc(K * 16), decay: q.decay ?? 0.01, iBounds: iB };
        lm.flags |= 2 | (wrap ? 0 : 4);
      }
      if (li > 0 && desc.layers[li - 1].activation === 'relu') lm.flags |= 1;
      if (ld.activation === 'relu') lm.flags |= 8;
      // activation buffers: H (pre-quantization input), A (quantized input)
      const H = li === 0 ? X : talloc(K * CB);
      const A = ld.iq ? talloc(K * CB) : H;
      Hoffs.push(H); Aoffs.push(A);
      lm.gWo = galloc(K * N);
      lm.gBo = ld.bias ? galloc(N) : -1;
      lm.sumsO = galloc(3 * K);
      lm.amxO = galloc(K);
      this.layers.push(lm);
    });
    const lossO = galloc(4); // f64 loss sum, f64 hits (8-aligned: every galloc is 16-aligned)
    this.lossO = lossO;
    const G = talloc(gOff);
    this.threadBytes = Math.ceil(tOff / 64) * 64;
    this.threadBase = ar.alloc(this.threadBytes * threads);
    // reduced per-step gradient scratch for dWq/dbq (main thread) lives in thread 0's block.
    const bytes = ar.off;
    const pages = Math.ceil(bytes / PAGE) + 1;
    this.memory = new WA.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    this.inputPtr = Math.ceil(bytes / 64) * 64;
    this.inputCap = Math.floor(((pages * PAGE) - this.inputPtr) / (4 * (this.K0 + this.C)));
    this.k = instantiate(module, this.memory);
    const f32 = this.f32();
    for (const a of arrays) f32.set(a.src, a.ptr / 4);

    // ---- plan table
    const pl = new Int32Array(this.memory.buffer, this.plan, PLAN_WORDS_HEAD + PLAN_WORDS_LAYER * L);
    pl[0] = L; pl[1] = CB; pl[2] = this.K0; pl[3] = this.C; pl[4] = desc.loss === 'mse' ? 1 : 0;
    pl[8] = this.threadBase; pl[9] = this.threadBytes;
    pl[10] = X; pl[11] = Y; pl[12] = D0; pl[13] = D1; pl[14] = G; pl[15] = gOff; pl[16] = lossO; pl[17] = Z;
    pl[18] = desc.layers[L - 1].activation === 'relu' ? 1 : 0;
    pl[19] = scratch;
    this.layers.forEach((lm, li) => {
      const o = PLAN_WORDS_HEAD + PLAN_WORDS_LAYER * li;
      pl[o] = lm.K; pl[o + 1] = lm.N; pl[o + 2] = lm.flags; pl[o + 3] = lm.Wq; pl[o + 4] = lm.bq;
      pl[o + 5] = lm.iq ? lm.iq.prep : 0; pl[o + 6] = Hoffs[li]; pl[o + 7] = Aoffs[li];
      pl[o + 8] = lm.gWo; pl[o + 9] = lm.gBo; pl[o + 10] = lm.sumsO; pl[o + 11] = lm.amxO;
      pl[o + 12] = lm.WqT;
    });
  }

  private f32(): Float32Array { return new Float32Array(this.memory.buffer); }

  static async create(desc: ModelDesc, opts: EngineOptions = {}): Promise<Engine> {
    if (!desc || !Array.isArray(desc.layers) || desc.layers.length === 0) throw new Error('hgq engine: the model description needs at least one layer');
    if (desc.loss !== 'softmax_cross_entropy' && desc.loss !== 'mse') throw new Error(`hgq engine: loss ${desc.loss} is not supported (softmax_cross_entropy, mse)`);
    if (!(desc.optimizer?.learningRate > 0)) throw new Error('hgq engine: optimizer.learningRate must be a positive number');
    // 256 samples per chunk; 128 for wide inputs (MNIST's 784), whose chunk of activations and quantized inputs
    // (2 × 784 × 256 × 4 bytes) with the layer's weights would overflow the 2 MB L2 (measured ~5% faster)
    const widest = Math.max(...desc.layers.map((l) => l.inputs ?? 0));
    const chunk = opts.chunk ?? (widest > 512 ? 128 : 256);
    if (!(chunk >= 16 && chunk % 16 === 0)) throw new Error(`hgq engine: chunk must be a positive multiple of 16, got ${chunk}`);
    let factory = opts.poolFactory;
    const isNode = typeof process !== 'undefined' && !!process.versions?.node;
    if (!factory && isNode) factory = (await import('./pool-node.ts')).nodePoolFactory;
    let threads = opts.threads ?? (factory ? await defaultThreads() : 1);
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256)) throw new Error(`hgq engine: threads must be an integer in 1..256, got ${threads}`);
    if (threads > 1 && !factory) throw new Error('hgq engine: threads > 1 needs a thread pool (poolFactory) in this environment');
    const { module, relaxed } = await loadKernels(opts.simd ?? 'auto');
    const e = new Engine(desc, module, relaxed, threads, chunk);
    if (opts.schedule !== undefined && opts.schedule !== 'dynamic' && opts.schedule !== 'static') throw new Error(`hgq engine: schedule must be 'dynamic' or 'static', got ${opts.schedule}`);
    e.schedule = opts.schedule ?? 'dynamic';
    if (threads > 1) e.pool = await factory!(module, e.memory, e.plan, e.ctrl, threads - 1);
    return e;
  }

  /** Copies inputs (B×K0, row-major) and targets (B×C) into memory; grows it when the batch is larger. */
  private loadBatch(x: Float32Array, y: Float32Array): number {
    if (!(x instanceof Float32Array) || x.length % this.K0 !== 0 || x.length === 0) throw new Error(`hgq engine: x must be a non-empty Float32Array of B×${this.K0} values`);
    const B = x.length / this.K0;
    if (!(y instanceof Float32Array) || y.length !== B * this.C) throw new Error(`hgq engine: y must be a Float32Array of ${B}×${this.C} values (got ${y?.length})`);
    this.reserveBatch(B);
    const yPtr = this.inputPtr + B * this.K0 * 4;
    // views from batchBuffers() already hold the batch in place: no copy
    const buf = this.memory.buffer;
    const f = this.f32();
    if (!(x.buffer === buf && x.byteOffset === this.inputPtr)) f.set(x, this.inputPtr / 4);
    if (!(y.buffer === buf && y.byteOffset === yPtr)) f.set(y, yPtr / 4);
    const pl = new Int32Array(buf, this.plan, 8);
    pl[5] = this.inputPtr; pl[6] = yPtr;
    return B;
  }

  private reserveBatch(B: number): void {
    if (B <= this.inputCap) return;
    const need = this.inputPtr + B * 4 * (this.K0 + this.C);
    const cur = this.memory.buffer.byteLength;
    if (need > MAX_PAGES * PAGE) throw new Error(`hgq engine: batch of ${B} samples does not fit in 1 GiB; use a smaller batch`);
    this.memory.grow(Math.ceil((need - cur) / PAGE));
    this.inputCap = Math.floor((this.memory.buffer.byteLength - this.inputPtr) / (4 * (this.K0 + this.C)));
  }

  /**
   * Views of the engine's own input memory for a batch of B samples: x (B×K0) and y (B×C), row-major. Filling
   * them and passing them to step() saves copying the batch into wasm memory (~0.5 ms per 32k-sample JSC batch,
   * on the main thread while the workers wait). The views stay valid until a larger batch grows the memory.
   */
  batchBuffers(B: number): { x: Float32Array; y: Float32Array } {
    if (!(Number.isInteger(B) && B > 0)) throw new Error(`hgq engine: batch size must be a positive integer, got ${B}`);
    this.reserveBatch(B);
    const buf = this.memory.buffer;
    return { x: new Float32Array(buf, this.inputPtr, B * this.K0), y: new Float32Array(buf, this.inputPtr + B * this.K0 * 4, B * this.C) };
  }

  /**
   * Bounds, forward quantization of all weights, preparation of the activation quantizers (main thread).
   * The bit parameters are clamped to their bounds before the forward pass, as the tfjs quantizers do.
   */
  private prepare(): void {
    const k = this.k;
    for (const p of this.params) if (p.lo > -Infinity || p.hi < Infinity) k.clamp(p.n, p.ptr, p.lo, p.hi);
    for (const lm of this.layers) {
      if (lm.kq) k.kbi_fwd(lm.K * lm.N, lm.W, lm.kq.b, lm.kq.i, lm.kq.k, lm.kq.mode, lm.Wq);
      k.transpose_w(lm.Wq, lm.K, lm.N, lm.WqT); // for the backward's dense_bwd_dx_t
      if (lm.bqq) k.kbi_fwd(lm.N, lm.bias, lm.bqq.b, lm.bqq.i, lm.bqq.k, lm.bqq.mode, lm.bq);
      if (lm.iq) k.prep_act(lm.K, lm.iq.i, lm.iq.f, lm.iq.k, lm.iq.mode, lm.iq.prep);
    }
  }

  /** Runs forward+backward over the batch on all threads; leaves reduced gradients in thread 0's block. */
  private forwardBackward(B: number, invB: number): { loss: number; hits: number } {
    const pl = new Int32Array(this.memory.buffer, this.plan, 8);
    pl[7] = new Int32Array(new Float32Array([invB]).buffer)[0];
    const T = this.threads;
    const slices: Array<[number, number]> = [];
    if (T > 1 && this.schedule === 'dynamic') {
      const pw = new Int32Array(this.memory.buffer, this.plan, 22);
      Atomics.store(pw, 20, 0);
      pw[21] = B;
      for (let t = 0; t < T; t++) slices.push([0, -1]);
    } else {
      const per = Math.ceil(B / T / 16) * 16;
      for (let t = 0; t < T; t++) {
        const s = Math.min(B, t * per);
        slices.push([s, Math.min(B, s + per) - s]);
      }
    }
    if (this.pool) this.pool.runSlices(slices.slice(1), () => this.k.run_slice(this.plan, 0, slices[0][0], slices[0][1]));
    else this.k.run_slice(this.plan, 0, slices[0][0], slices[0][1]);
    // reduce into thread 0's block
    const G0 = this.threadBase + new Int32Array(this.memory.buffer, this.plan, 16)[14];
    const f64 = new Float64Array(this.memory.buffer);
    let loss = f64[(G0 + this.lossO) / 8], hits = f64[(G0 + this.lossO) / 8 + 1];
    for (let t = 1; t < T; t++) {
      const Gt = G0 + t * this.threadBytes;
      for (const lm of this.layers) {
        this.k.add_into(G0 + lm.gWo, Gt + lm.gWo, lm.K * lm.N);
        if (lm.gBo >= 0) this.k.add_into(G0 + lm.gBo, Gt + lm.gBo, lm.N);
        this.k.add_into(G0 + lm.sumsO, Gt + lm.sumsO, 3 * lm.K);
        this.k.max_into(G0 + lm.amxO, Gt + lm.amxO, lm.K);
      }
      loss += f64[(Gt + this.lossO) / 8];
      hits += f64[(Gt + this.lossO) / 8 + 1];
    }
    return { loss, hits };
  }

  /** One training step on a batch: forward, loss, backward, EBOPs and L1 gradients, Adam. x, y may be batchBuffers() views (no copy). */
  step(x: Float32Array, y: Float32Array): StepResult {
    const B = this.loadBatch(x, y);
    const invB = this.desc.loss === 'mse' ? 1 / (B * this.C) : 1 / B;
    this.prepare();
    const { loss: lossSum, hits } = this.forwardBackward(B, Math.fround(invB));
    const taskLoss = lossSum * invB;
    const k = this.k;
    const G0 = this.threadBase + new Int32Array(this.memory.buffer, this.plan, 16)[14];
    // WRAP integer bits follow the data, before EBOPs are taken
    for (const lm of this.layers) {
      if (lm.iq && lm.iq.mode === 0) k.wrap_track(lm.K, lm.iq.i, lm.iq.f, G0 + lm.amxO, lm.iq.decay, lm.iq.iBounds[0], lm.iq.iBounds[1]);
    }
    // parameter gradients
    for (const p of this.params) k.zero(p.grad, p.n);
    let ebops = 0, ebopsLoss = 0;
    for (const lm of this.layers) {
      const gWq = G0 + lm.gWo;
      if (lm.kq) k.kbi_bwd(lm.K * lm.N, lm.W, lm.kq.b, lm.kq.i, lm.kq.k, lm.kq.mode, lm.Wq, gWq, lm.pW.grad, lm.pKb!.grad, lm.pKi!.grad);
      else k.add_into(lm.pW.grad, gWq, lm.K * lm.N);
      if (lm.pB) {
        if (lm.bqq) k.kbi_bwd(lm.N, lm.bias, lm.bqq.b, lm.bqq.i, lm.bqq.k, lm.bqq.mode, lm.bq, G0 + lm.gBo, lm.pB.grad, lm.pBb!.grad, lm.pBi!.grad);
        else k.add_into(lm.pB.grad, G0 + lm.gBo, lm.N);
      }
      if (lm.iq) k.kif_grads(lm.K, lm.iq.i, lm.iq.f, lm.iq.k, lm.iq.mode, G0 + lm.sumsO, lm.pIi!.grad, lm.pIf!.grad);
      if (lm.iq && lm.kq) {
        const e = k.ebops_dense(lm.K, lm.N, lm.iq.i, lm.iq.f, lm.iq.k, lm.iq.mode, lm.kq.b, lm.kq.k, lm.kq.mode,
          lm.bqq ? lm.bqq.b : 0, lm.bqq ? lm.bqq.k : 0, lm.bqq ? lm.bqq.mode : 0, Math.fround(lm.beta),
          lm.pIi!.grad, lm.pIf!.grad, lm.pKb!.grad, lm.bqq ? lm.pBb!.grad : 0);
        ebops += e;
        ebopsLoss += lm.beta * e;
      }
    }
    let l1Loss = 0;
    for (const p of this.params) if (p.l1 > 0) l1Loss += p.l1 * k.l1(p.n, p.ptr, Math.fround(p.l1), p.grad);
    // (the L1 gradient of a non-trainable parameter is computed but never applied)
    this.applyAdam();
    const accuracy = this.desc.loss === 'mse' ? NaN : hits / B;
    return { loss: taskLoss + ebopsLoss + l1Loss, taskLoss, ebops, ebopsLoss, l1Loss, accuracy };
  }

  private applyAdam(): void {
    this.adam.apply(this.k, this.params);
  }

  /** β of layer `l` (its EBOPs weight in the loss), e.g. from a β schedule at each epoch start. */
  setBeta(l: number, beta: number): void {
    if (!(l >= 0 && l < this.layers.length)) throw new Error(`hgq engine: no layer ${l} (the model has ${this.layers.length})`);
    if (!(Number.isFinite(beta) && beta >= 0)) throw new Error(`hgq engine: β must be finite and ≥ 0, got ${beta}`);
    this.layers[l].beta = beta;
  }

  /** Current values of every parameter array (copies), keyed by name (e.g. `layers[0].kq.b`). */
  readState(): EngineState {
    return this.adam.read(this.f32(), this.params);
  }

  /** Overwrites any subset of the parameters (and optionally the Adam state). */
  writeState(s: Partial<EngineState> & { values?: Record<string, Float32Array> }): void {
    this.adam.write(this.f32(), this.params, s);
  }

  /** Last step's reduced per-thread gradients (∂L_task/∂Wq etc.) and the parameter gradients, for tests. */
  debugGradients(): Record<string, Float32Array> {
    return paramGradients(this.f32(), this.params);
  }

  dispose(): void {
    this.pool?.dispose();
    this.pool = null;
  }
}

export interface EngineState {
  values: Record<string, Float32Array>;
  adam: { m: Record<string, Float32Array>; v: Record<string, Float32Array>; iterations: number; accBeta1: number; accBeta2: number };
}

async function defaultThreads(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  try {
    const os = await import('node:os');
    return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  } catch {
    return 1;
  }
}

/** createEngine(desc, {threads}) — see Engine. */
export function createEngine(desc: ModelDesc, opts: EngineOptions = {}): Promise<Engine> {
  return Engine.create(desc, opts);
}
