/**
 * The fast training engine: a model description (layer sizes, parameter arrays, quantizer configs) laid out
 * in one shared WebAssembly.Memory, trained by fused forward+backward+Adam steps in the compiled kernels.
 * Threads split the batch (each runs `run_slice` over its samples into its own gradient block); the main
 * thread reduces the blocks and runs the per-parameter work (weight quantizers, EBOPs, L1, Adam).
 *
 * No Node-only API here: threads come from a `WorkerPool` (src/engine/pool-node.ts under Node; see pool.ts).
 */
import { instantiate, loadKernels, WA, type KernelExports, type WasmMemory, type WasmModule } from './kernels.ts';
import { AdamState, checkArr, paramGradients, ParamArena, type KbiMem, type KifMem } from './params.ts';
import { AREA_WORDS, CTRL_BYTES, defaultThreads, poolFactoryFor, Rounds } from './pool.ts';
import type { EngineOptions, EngineState, ModelDesc, Param, StepResult, TrainEngine } from './types.ts';

// the chain's description types, where tests and benches have imported them from
export type { DenseDesc, ModelDesc } from './types.ts';

const PLAN_WORDS_HEAD = 32;
const PLAN_WORDS_LAYER = 16;
const PAGE = 65536;
const MAX_PAGES = 16384; // 1 GiB

interface LayerMem {
  K: number;
  N: number;
  /** run_slice's layer flags (see assembly/engine.ts) */
  flags: number;
  W: number; Wq: number; WqT: number; bias: number; bq: number;
  pW: Param; pB?: Param; kq?: KbiMem; bqq?: KbiMem; iq?: KifMem;
  /** byte offsets in each thread's gradient block: ∂L/∂Wq, ∂L/∂bq (−1: no bias), input-quantizer sums, |x| maxima */
  gWo: number; gBo: number; sumsO: number; amxO: number;
  beta: number;
}

/** Bump allocator of one thread's block (offsets relative to the block, 64-byte aligned). */
class ThreadBlock {
  bytes = 0;
  alloc(floats: number): number { this.bytes = Math.ceil(this.bytes / 64) * 64; const o = this.bytes; this.bytes += Math.max(floats, 1) * 4; return o; }
}

export class Engine implements TrainEngine {
  readonly memory: WasmMemory;
  readonly k: KernelExports;
  readonly relaxed: boolean;
  readonly threads: number;
  readonly chunk: number;
  schedule: 'dynamic' | 'static' = 'dynamic';
  private readonly desc: ModelDesc;
  private readonly layers: LayerMem[] = [];
  readonly params: Param[];
  private readonly plan: number;
  private readonly rounds: Rounds;
  private threadBase = 0;
  private threadBytes = 0;
  private lossO = 0;
  private inputPtr = 0;
  private inputCap = 0; // samples
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
    const ar = new ParamArena(1024);
    this.params = ar.params;
    this.plan = ar.alloc(4 * (PLAN_WORDS_HEAD + PLAN_WORDS_LAYER * L));
    const ctrl = ar.alloc(CTRL_BYTES), area = ar.alloc(threads * AREA_WORDS * 8);
    for (let li = 0; li < L; li++) this.layers.push(this.layerParams(ar, li));
    const tb = this.threadLayout(chunk);
    this.threadBase = ar.alloc(this.threadBytes * threads);
    const bytes = ar.off;
    const pages = Math.ceil(bytes / PAGE) + 1;
    this.memory = new WA.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    this.inputPtr = Math.ceil(bytes / 64) * 64;
    this.inputCap = Math.floor(((pages * PAGE) - this.inputPtr) / (4 * (this.K0 + this.C)));
    this.k = instantiate(module, this.memory);
    ar.copyInto(this.memory.buffer);
    this.writePlan(tb);
    this.rounds = new Rounds(this.k, this.memory, threads, ctrl, area);
  }

  /** Checks layer li and lays out its parameters (kernel, bias, their quantizers, the input quantizer). */
  private layerParams(ar: ParamArena, li: number): LayerMem {
    const layers = this.desc.layers, ld = layers[li]!;
    if (ld.type !== 'dense') throw new Error(`hgq engine: layer ${li} has unsupported type ${(ld as { type: string }).type}`);
    const K = ld.inputs, N = ld.units;
    if (!(K > 0 && N > 0 && Number.isInteger(K) && Number.isInteger(N))) throw new Error(`hgq engine: layer ${li} has invalid sizes ${K}×${N}`);
    if (li > 0 && layers[li - 1]!.units !== K) throw new Error(`hgq engine: layer ${li} expects ${K} inputs but layer ${li - 1} has ${layers[li - 1]!.units} units`);
    if (ld.activation !== 'relu' && ld.activation !== 'linear') throw new Error(`hgq engine: layer ${li} activation ${ld.activation} is not supported (relu or linear)`);
    const pre = `layers[${li}]`;
    const pW = ar.param(`${pre}.kernel`, checkArr(ld.kernel, K * N, `${pre}.kernel`), true);
    const lm: LayerMem = { K, N, flags: 0, W: pW.ptr, Wq: pW.ptr, WqT: ar.alloc(K * N * 4), bias: 0, bq: 0, gWo: 0, gBo: -1, sumsO: 0, amxO: 0, pW, beta: ld.beta ?? 0 };
    if (ld.kq) { lm.kq = ar.kbi(ld.kq, K * N, `${pre}.kq`); lm.Wq = ar.alloc(K * N * 4); }
    if (ld.bias) {
      lm.pB = ar.param(`${pre}.bias`, checkArr(ld.bias, N, `${pre}.bias`), true);
      lm.bias = lm.pB.ptr; lm.bq = lm.bias;
      if (ld.bq) { lm.bqq = ar.kbi(ld.bq, N, `${pre}.bq`); lm.bq = ar.alloc(N * 4); }
    } else if (ld.bq) throw new Error(`hgq engine: ${pre} has a bias quantizer but no bias`);
    if (ld.iq) {
      lm.iq = ar.kif(ld.iq, K, `${pre}.iq`);
      lm.flags |= 2 | (lm.iq.mode === 0 ? 0 : 4);
    }
    if (li > 0 && layers[li - 1]!.activation === 'relu') lm.flags |= 1;
    if (ld.activation === 'relu') lm.flags |= 8;
    return lm;
  }

  /**
   * Each thread's block: a chunk's inputs/targets/logits, two gradient buffers, every layer's activations H
   * (pre-quantization) and A (quantized), then its gradient area (per-layer ∂L/∂Wq, ∂L/∂bq, quantizer sums and
   * maxima, the f64 loss and hit count). Returns the plan-table offsets.
   */
  private threadLayout(CB: number): { X: number; Y: number; Z: number; D0: number; D1: number; scratch: number; G: number; gradFloats: number; H: number[]; A: number[] } {
    const tb = new ThreadBlock();
    let gOff = 0;
    const galloc = (floats: number) => { const o = gOff; gOff += Math.ceil(floats / 4) * 4; return o * 4; };
    const X = tb.alloc(this.K0 * CB), Y = tb.alloc(this.C * CB), Z = tb.alloc(this.C * CB);
    const maxW = Math.max(...this.layers.map((l) => Math.max(l.N, l.K)));
    const D0 = tb.alloc(maxW * CB), D1 = tb.alloc(maxW * CB);
    const scratch = tb.alloc(48); // 192 bytes: dense_bwd_dx keeps three running row sums for four rows
    const H: number[] = [], A: number[] = [];
    this.layers.forEach((lm, li) => {
      H.push(li === 0 ? X : tb.alloc(lm.K * CB));
      A.push(lm.iq ? tb.alloc(lm.K * CB) : H[li]!);
      lm.gWo = galloc(lm.K * lm.N);
      lm.gBo = lm.pB ? galloc(lm.N) : -1;
      lm.sumsO = galloc(3 * lm.K);
      lm.amxO = galloc(lm.K);
    });
    this.lossO = galloc(4); // f64 loss sum, f64 hits (8-aligned: every galloc is 16-aligned)
    const G = tb.alloc(gOff);
    this.threadBytes = Math.ceil(tb.bytes / 64) * 64;
    return { X, Y, Z, D0, D1, scratch, G, gradFloats: gOff, H, A };
  }

  /** The i32 plan table run_slice reads (layout: assembly/engine.ts). */
  private writePlan(tb: ReturnType<Engine['threadLayout']>): void {
    const L = this.layers.length;
    const pl = new Int32Array(this.memory.buffer, this.plan, PLAN_WORDS_HEAD + PLAN_WORDS_LAYER * L);
    pl[0] = L; pl[1] = this.chunk; pl[2] = this.K0; pl[3] = this.C; pl[4] = this.desc.loss === 'mse' ? 1 : 0;
    pl[8] = this.threadBase; pl[9] = this.threadBytes;
    pl[10] = tb.X; pl[11] = tb.Y; pl[12] = tb.D0; pl[13] = tb.D1; pl[14] = tb.G; pl[15] = tb.gradFloats; pl[16] = this.lossO; pl[17] = tb.Z;
    pl[18] = this.desc.layers[L - 1]!.activation === 'relu' ? 1 : 0;
    pl[19] = tb.scratch;
    this.layers.forEach((lm, li) => {
      const o = PLAN_WORDS_HEAD + PLAN_WORDS_LAYER * li;
      pl[o] = lm.K; pl[o + 1] = lm.N; pl[o + 2] = lm.flags; pl[o + 3] = lm.Wq; pl[o + 4] = lm.bq;
      pl[o + 5] = lm.iq ? lm.iq.prep : 0; pl[o + 6] = tb.H[li]!; pl[o + 7] = tb.A[li]!;
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
    const factory = await poolFactoryFor(opts.poolFactory);
    const threads = opts.threads ?? (factory ? await defaultThreads() : 1);
    if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256)) throw new Error(`hgq engine: threads must be an integer in 1..256, got ${threads}`);
    if (threads > 1 && !factory) throw new Error('hgq engine: threads > 1 needs a thread pool (poolFactory) in this environment');
    const { module, relaxed } = await loadKernels(opts.simd ?? 'auto');
    const e = new Engine(desc, module, relaxed, threads, chunk);
    if (opts.schedule !== undefined && opts.schedule !== 'dynamic' && opts.schedule !== 'static') throw new Error(`hgq engine: schedule must be 'dynamic' or 'static', got ${opts.schedule}`);
    e.schedule = opts.schedule ?? 'dynamic';
    if (factory) await e.rounds.start(factory, module);
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
    this.rounds.run((t) => [['run_slice', this.plan, t, slices[t]![0], slices[t]![1]]]);
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
      if (lm.kq) k.kbi_bwd(lm.K * lm.N, lm.W, lm.kq.b, lm.kq.i, lm.kq.k, lm.kq.mode, lm.Wq, gWq, lm.pW.grad, lm.kq.pb.grad, lm.kq.pi.grad);
      else k.add_into(lm.pW.grad, gWq, lm.K * lm.N);
      if (lm.pB) {
        if (lm.bqq) k.kbi_bwd(lm.N, lm.bias, lm.bqq.b, lm.bqq.i, lm.bqq.k, lm.bqq.mode, lm.bq, G0 + lm.gBo, lm.pB.grad, lm.bqq.pb.grad, lm.bqq.pi.grad);
        else k.add_into(lm.pB.grad, G0 + lm.gBo, lm.N);
      }
      if (lm.iq) k.kif_grads(lm.K, lm.iq.i, lm.iq.f, lm.iq.k, lm.iq.mode, G0 + lm.sumsO, lm.iq.pi.grad, lm.iq.pf.grad);
      if (lm.iq && lm.kq) {
        const e = k.ebops_dense(lm.K, lm.N, lm.iq.i, lm.iq.f, lm.iq.k, lm.iq.mode, lm.kq.b, lm.kq.k, lm.kq.mode,
          lm.bqq ? lm.bqq.b : 0, lm.bqq ? lm.bqq.k : 0, lm.bqq ? lm.bqq.mode : 0, Math.fround(lm.beta),
          lm.iq.pi.grad, lm.iq.pf.grad, lm.kq.pb.grad, lm.bqq ? lm.bqq.pb.grad : 0);
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
    this.rounds.dispose();
  }
}

/** createEngine(desc, {threads}) — see Engine. */
export function createEngine(desc: ModelDesc, opts: EngineOptions = {}): Promise<Engine> {
  return Engine.create(desc, opts);
}
