/**
 * The fast training engine: a model description (layer sizes, parameter arrays, quantizer configs) laid out
 * in one shared WebAssembly.Memory, trained by fused forward+backward+Adam steps in the compiled kernels.
 * Each step is three rounds over all threads: the weight quantization for the forward, split by input rows;
 * forward+backward, split by samples (each thread runs `run_slice` into its own gradient block); the
 * per-parameter work (reducing the blocks, quantizer backward, EBOPs, L1, Adam), split by input rows again.
 * (The quantization cannot join the previous step's last round: the bit parameters are clamped in place before
 * it, as tfjs does, and readState() between steps must see them unclamped.)
 *
 * No Node-only API here: threads come from a `WorkerPool` (src/engine/pool-node.ts under Node; see pool.ts).
 */
import { batchSize, EngineBase, engineRuntime } from './base.ts';
import { instantiate, WA, type KernelExports, type WasmMemory, type WasmModule } from './kernels.ts';
import { AdamState, checkArr, ParamArena, type AdamArgs, type KbiMem, type KifMem } from './params.ts';
import { AREA_WORDS, CTRL_BYTES, Rounds, type Call } from './pool.ts';
import type { EngineOptions, ModelDesc, Param, StepResult, TrainEngine } from './types.ts';

// the chain's description types, where tests and benches have imported them from
export type { DenseDesc, ModelDesc } from './types.ts';

const fr = Math.fround;
const PLAN_WORDS_HEAD = 32;
const PLAN_WORDS_LAYER = 16;
const PAGE = 65536;
const MAX_PAGES = 16384; // 1 GiB
/** parameter floats from which the per-parameter rounds use all threads */
const PARALLEL_PARAMS = 1 << 15;

interface LayerMem {
  K: number;
  N: number;
  /** run_slice's layer flags (see assembly/engine.ts) */
  flags: number;
  W: number;
  Wq: number;
  WqT: number;
  bias: number;
  bq: number;
  pW: Param;
  pB?: Param;
  kq?: KbiMem;
  bqq?: KbiMem;
  iq?: KifMem;
  /** byte offsets in each thread's gradient block: ∂L/∂Wq, ∂L/∂bq (−1: no bias), input-quantizer sums, |x| maxima */
  gWo: number;
  gBo: number;
  sumsO: number;
  amxO: number;
  /** f64 EBOPs of each input row and of the bias (ebops_dense_rows, ebops_bias) */
  ebopsRows: number;
  ebopsBias: number;
  beta: number;
}

/** A layer's parameters indexed like its kernel (K×N): the kernel and its quantizer's bits. */
function weightRowParams(lm: LayerMem): Param[] {
  return lm.kq ? [lm.pW, lm.kq.pb, lm.kq.pi] : [lm.pW];
}

/** A layer's parameters indexed by input (K): its input quantizer's bits. */
function inputParams(lm: LayerMem): Param[] {
  return lm.iq ? [lm.iq.pi, lm.iq.pf] : [];
}

/** A layer's parameters indexed by unit (N): the bias and its quantizer's bits. */
function biasParams(lm: LayerMem): Param[] {
  return lm.pB ? (lm.bqq ? [lm.pB, lm.bqq.pb, lm.bqq.pi] : [lm.pB]) : [];
}

function clampCall(calls: Call[], p: Param, o: number, n: number): void {
  if (p.lo > -Infinity || p.hi < Infinity) calls.push(['clamp', n, p.ptr + 4 * o, p.lo, p.hi]);
}

/** Bump allocator of one thread's block (offsets relative to the block, 64-byte aligned). */
class ThreadBlock {
  bytes = 0;
  alloc(floats: number): number {
    this.bytes = Math.ceil(this.bytes / 64) * 64;
    const o = this.bytes;
    this.bytes += Math.max(floats, 1) * 4;
    return o;
  }
}

export class Engine extends EngineBase implements TrainEngine {
  readonly memory: WasmMemory;
  readonly k: KernelExports;
  readonly relaxed: boolean;
  readonly threads: number;
  readonly chunk: number;
  schedule: 'dynamic' | 'static' = 'dynamic';
  private readonly desc: ModelDesc;
  private readonly layers: LayerMem[] = [];
  readonly params: Param[];
  private readonly paramFloats: number;
  private readonly plan: number;
  protected readonly rounds: Rounds;
  private threadBase = 0;
  private threadBytes = 0;
  private lossO = 0;
  private inputPtr = 0;
  private inputCap = 0; // samples
  protected readonly adam: AdamState;
  private readonly K0: number;
  private readonly C: number;

  private constructor(desc: ModelDesc, module: WasmModule, relaxed: boolean, threads: number, chunk: number) {
    super();
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
    const ctrl = ar.alloc(CTRL_BYTES),
      area = ar.alloc(threads * AREA_WORDS * 8);
    for (let li = 0; li < L; li++) this.layers.push(this.layerParams(ar, li));
    this.paramFloats = this.params.reduce((n, p) => n + p.n, 0);
    const tb = this.threadLayout(chunk);
    this.threadBase = ar.alloc(this.threadBytes * threads);
    const bytes = ar.off;
    const pages = Math.ceil(bytes / PAGE) + 1;
    this.memory = new WA.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    this.inputPtr = Math.ceil(bytes / 64) * 64;
    this.inputCap = Math.floor((pages * PAGE - this.inputPtr) / (4 * (this.K0 + this.C)));
    this.k = instantiate(module, this.memory);
    ar.copyInto(this.memory.buffer);
    this.writePlan(tb);
    this.rounds = new Rounds(this.k, this.memory, threads, ctrl, area);
  }

  /** Checks layer li and lays out its parameters (kernel, bias, their quantizers, the input quantizer). */
  private layerParams(ar: ParamArena, li: number): LayerMem {
    const layers = this.desc.layers,
      ld = layers[li]!;
    if (ld.type !== 'dense') throw new Error(`hgq engine: layer ${li} has unsupported type ${(ld as { type: string }).type}`);
    const K = ld.inputs,
      N = ld.units;
    if (!(K > 0 && N > 0 && Number.isInteger(K) && Number.isInteger(N)))
      throw new Error(`hgq engine: layer ${li} has invalid sizes ${K}×${N}`);
    if (li > 0 && layers[li - 1]!.units !== K)
      throw new Error(`hgq engine: layer ${li} expects ${K} inputs but layer ${li - 1} has ${layers[li - 1]!.units} units`);
    if (ld.activation !== 'relu' && ld.activation !== 'linear')
      throw new Error(`hgq engine: layer ${li} activation ${ld.activation} is not supported (relu or linear)`);
    const pre = `layers[${li}]`;
    const pW = ar.param(`${pre}.kernel`, checkArr(ld.kernel, K * N, `${pre}.kernel`), true);
    const lm: LayerMem = {
      K,
      N,
      flags: 0,
      W: pW.ptr,
      Wq: pW.ptr,
      WqT: ar.alloc(K * N * 4),
      bias: 0,
      bq: 0,
      gWo: 0,
      gBo: -1,
      sumsO: 0,
      amxO: 0,
      ebopsRows: ar.alloc(8 * K),
      ebopsBias: ar.alloc(8),
      pW,
      beta: ld.beta ?? 0,
    };
    if (ld.kq) {
      lm.kq = ar.kbi(ld.kq, K * N, `${pre}.kq`);
      lm.Wq = ar.alloc(K * N * 4);
    }
    if (ld.bias) {
      lm.pB = ar.param(`${pre}.bias`, checkArr(ld.bias, N, `${pre}.bias`), true);
      lm.bias = lm.pB.ptr;
      lm.bq = lm.bias;
      if (ld.bq) {
        lm.bqq = ar.kbi(ld.bq, N, `${pre}.bq`);
        lm.bq = ar.alloc(N * 4);
      }
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
  private threadLayout(CB: number): {
    X: number;
    Y: number;
    Z: number;
    D0: number;
    D1: number;
    scratch: number;
    G: number;
    gradFloats: number;
    H: number[];
    A: number[];
  } {
    const tb = new ThreadBlock();
    let gOff = 0;
    const galloc = (floats: number) => {
      const o = gOff;
      gOff += Math.ceil(floats / 4) * 4;
      return o * 4;
    };
    const X = tb.alloc(this.K0 * CB),
      Y = tb.alloc(this.C * CB),
      Z = tb.alloc(this.C * CB);
    const maxW = Math.max(...this.layers.map((l) => Math.max(l.N, l.K)));
    const D0 = tb.alloc(maxW * CB),
      D1 = tb.alloc(maxW * CB);
    const scratch = tb.alloc(48); // 192 bytes: dense_bwd_dx keeps three running row sums for four rows
    const H: number[] = [],
      A: number[] = [];
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
    pl[0] = L;
    pl[1] = this.chunk;
    pl[2] = this.K0;
    pl[3] = this.C;
    pl[4] = this.desc.loss === 'mse' ? 1 : 0;
    pl[8] = this.threadBase;
    pl[9] = this.threadBytes;
    pl[10] = tb.X;
    pl[11] = tb.Y;
    pl[12] = tb.D0;
    pl[13] = tb.D1;
    pl[14] = tb.G;
    pl[15] = tb.gradFloats;
    pl[16] = this.lossO;
    pl[17] = tb.Z;
    pl[18] = this.desc.layers[L - 1]!.activation === 'relu' ? 1 : 0;
    pl[19] = tb.scratch;
    this.layers.forEach((lm, li) => {
      const o = PLAN_WORDS_HEAD + PLAN_WORDS_LAYER * li;
      pl[o] = lm.K;
      pl[o + 1] = lm.N;
      pl[o + 2] = lm.flags;
      pl[o + 3] = lm.Wq;
      pl[o + 4] = lm.bq;
      pl[o + 5] = lm.iq ? lm.iq.prep : 0;
      pl[o + 6] = tb.H[li]!;
      pl[o + 7] = tb.A[li]!;
      pl[o + 8] = lm.gWo;
      pl[o + 9] = lm.gBo;
      pl[o + 10] = lm.sumsO;
      pl[o + 11] = lm.amxO;
      pl[o + 12] = lm.WqT;
    });
  }

  static async create(desc: ModelDesc, opts: EngineOptions = {}): Promise<Engine> {
    const rt = await engineRuntime(desc, opts);
    // 256 samples per chunk; 128 for wide inputs (MNIST's 784), whose chunk of activations and quantized inputs
    // (2 × 784 × 256 × 4 bytes) with the layer's weights would overflow the 2 MB L2 (measured ~5% faster)
    const widest = Math.max(...desc.layers.map((l) => l.inputs ?? 0));
    const chunk = opts.chunk ?? (widest > 512 ? 128 : 256);
    if (!(chunk >= 16 && chunk % 16 === 0)) throw new Error(`hgq engine: chunk must be a positive multiple of 16, got ${chunk}`);
    const e = new Engine(desc, rt.module, rt.relaxed, rt.threads, chunk);
    if (opts.schedule !== undefined && opts.schedule !== 'dynamic' && opts.schedule !== 'static')
      throw new Error(`hgq engine: schedule must be 'dynamic' or 'static', got ${opts.schedule}`);
    e.schedule = opts.schedule ?? 'dynamic';
    await e.startThreads(rt);
    return e;
  }

  /** Copies inputs (B×K0, row-major) and targets (B×C) into memory; grows it when the batch is larger. */
  private loadBatch(x: Float32Array, y: Float32Array): number {
    const B = batchSize(x, y, this.K0, this.C);
    this.reserveBatch(B);
    const yPtr = this.inputPtr + B * this.K0 * 4;
    // views from batchBuffers() already hold the batch in place: no copy
    const buf = this.memory.buffer;
    const f = this.f32();
    if (!(x.buffer === buf && x.byteOffset === this.inputPtr)) f.set(x, this.inputPtr / 4);
    if (!(y.buffer === buf && y.byteOffset === yPtr)) f.set(y, yPtr / 4);
    const pl = new Int32Array(buf, this.plan, 8);
    pl[5] = this.inputPtr;
    pl[6] = yPtr;
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
    return {
      x: new Float32Array(buf, this.inputPtr, B * this.K0),
      y: new Float32Array(buf, this.inputPtr + B * this.K0 * 4, B * this.C),
    };
  }

  /**
   * Threads sharing the per-parameter rounds: all of them, or only the calling one when the weights are too few
   * to repay waking the workers (JSC's ~5k take microseconds; MNIST's 110k about 2 ms on one thread).
   */
  private get paramThreads(): number {
    return this.paramFloats >= PARALLEL_PARAMS ? this.threads : 1;
  }

  /** Runs a per-parameter round on paramThreads threads (the same calls per element either way). */
  private paramRound(callsOf: (t: number, parts: number) => Call[]): void {
    const parts = this.paramThreads;
    if (parts === 1) this.rounds.here(callsOf(0, 1));
    else this.rounds.run((t) => callsOf(t, parts));
  }

  /** [r0, n): part t's input rows of a K-row layer (multiples of 4, so every split keeps the kernels' SIMD groups). */
  private static rows(t: number, parts: number, K: number): [number, number] {
    const per = Math.ceil(K / parts / 4) * 4;
    const r0 = Math.min(K, t * per);
    return [r0, Math.min(K, r0 + per) - r0];
  }

  /** The part that does layer l's bias (and bias-quantizer) work in the per-parameter rounds. */
  private static biasPart(l: number, parts: number): number {
    return parts - 1 - (l % parts);
  }

  /**
   * Bounds, forward quantization of all weights, preparation of the activation quantizers, split by input rows
   * over the threads. The bit parameters are clamped to their bounds before the forward pass, as the tfjs
   * quantizers do.
   */
  private prepare(): void {
    this.paramRound((t, parts) => {
      const calls: Call[] = [];
      this.layers.forEach((lm, l) => {
        const [r0, nr] = Engine.rows(t, parts, lm.K),
          e0 = r0 * lm.N,
          ne = nr * lm.N;
        if (nr > 0) {
          for (const p of weightRowParams(lm)) clampCall(calls, p, e0, ne);
          for (const p of inputParams(lm)) clampCall(calls, p, r0, nr);
          if (lm.kq)
            calls.push([
              'kbi_fwd',
              ne,
              lm.W + 4 * e0,
              lm.kq.b + 4 * e0,
              lm.kq.i + 4 * e0,
              lm.kq.k + 4 * e0,
              lm.kq.mode,
              lm.Wq + 4 * e0,
            ]);
          calls.push(['transpose_w_rows', lm.Wq, lm.K, lm.N, lm.WqT, r0, nr]); // for the backward's dense_bwd_dx_t
          if (lm.iq)
            calls.push(['prep_act', nr, lm.iq.i + 4 * r0, lm.iq.f + 4 * r0, lm.iq.k + 4 * r0, lm.iq.mode, lm.iq.prep + 16 * r0]);
        }
        if (t === Engine.biasPart(l, parts)) {
          for (const p of biasParams(lm)) clampCall(calls, p, 0, lm.N);
          if (lm.bqq) calls.push(['kbi_fwd', lm.N, lm.bias, lm.bqq.b, lm.bqq.i, lm.bqq.k, lm.bqq.mode, lm.bq]);
        }
      });
      return calls;
    });
  }

  /** Runs forward+backward over the batch on all threads, each into its gradient block; returns the loss and hit sums. */
  private forwardBackward(B: number, invB: number): { loss: number; hits: number } {
    const pl = new Int32Array(this.memory.buffer, this.plan, 8);
    pl[7] = new Int32Array(new Float32Array([invB]).buffer)[0]!;
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
    const f64 = new Float64Array(this.memory.buffer);
    let loss = 0,
      hits = 0;
    for (let t = 0; t < T; t++) {
      const o = (this.gradBlock(t) + this.lossO) / 8;
      if (t === 0) {
        loss = f64[o]!;
        hits = f64[o + 1]!;
      } else {
        loss += f64[o]!;
        hits += f64[o + 1]!;
      }
    }
    return { loss, hits };
  }

  /** Byte address of thread t's gradient block. */
  private gradBlock(t: number): number {
    return this.threadBase + t * this.threadBytes + new Int32Array(this.memory.buffer, this.plan, 16)[14]!;
  }

  /** WRAP integer bits follow the data (the |x| maxima over all threads), before EBOPs are taken. */
  private trackWrap(): void {
    const k = this.k,
      G0 = this.gradBlock(0);
    for (const lm of this.layers) {
      if (!lm.iq || lm.iq.mode !== 0) continue;
      for (let t = 1; t < this.threads; t++) k.max_into(G0 + lm.amxO, this.gradBlock(t) + lm.amxO, lm.K);
      k.wrap_track(lm.K, lm.iq.i, lm.iq.f, G0 + lm.amxO, lm.iq.decay, lm.iq.iBounds[0], lm.iq.iBounds[1]);
    }
  }

  /**
   * The per-parameter phase, split by input rows over the threads (each layer's bias part on one thread): the
   * threads' gradients reduced into thread 0's block, the quantizers' backward, EBOPs and L1 gradients, Adam.
   * Per element the same operations in the same order as on one thread, so results do not depend on the split.
   */
  private updateParams(): { ebops: number; ebopsLoss: number } {
    const adam = this.adam.stepArgs();
    const blocks = Array.from({ length: this.threads }, (_, t) => this.gradBlock(t));
    this.paramRound((t, parts) => {
      const calls: Call[] = [];
      this.layers.forEach((lm, l) => {
        const [r0, nr] = Engine.rows(t, parts, lm.K);
        if (nr > 0) this.weightRowsUpdate(calls, lm, blocks, r0, nr, adam);
        if (t === Engine.biasPart(l, parts) && lm.pB) this.biasUpdate(calls, lm, blocks, adam);
      });
      return calls;
    });
    this.adam.advance();
    let ebops = 0,
      ebopsLoss = 0;
    const f64 = new Float64Array(this.memory.buffer);
    for (const lm of this.layers) {
      if (!lm.iq || !lm.kq) continue;
      let e = 0; // summed as ebops_dense does: rows in order, then the bias
      for (let r = 0; r < lm.K; r++) e += f64[lm.ebopsRows / 8 + r]!;
      if (lm.bqq) e += f64[lm.ebopsBias / 8]!;
      ebops += e;
      ebopsLoss += lm.beta * e;
    }
    return { ebops, ebopsLoss };
  }

  /** Rows [r0, r0 + nr) of a layer's kernel, its quantizer and its input quantizer, through the whole update. */
  private weightRowsUpdate(calls: Call[], lm: LayerMem, blocks: number[], r0: number, nr: number, adam: AdamArgs): void {
    const N = lm.N,
      e0 = r0 * N,
      ne = nr * N,
      G0 = blocks[0]!,
      gWq = G0 + lm.gWo + 4 * e0,
      sums = G0 + lm.sumsO + 12 * r0;
    for (const Gt of blocks.slice(1)) {
      calls.push(['add_into', gWq, Gt + lm.gWo + 4 * e0, ne]);
      if (lm.iq) calls.push(['add_into', sums, Gt + lm.sumsO + 12 * r0, 3 * nr]);
    }
    const wp = weightRowParams(lm),
      ip = inputParams(lm);
    for (const p of wp) calls.push(['zero', p.grad + 4 * e0, ne]);
    for (const p of ip) calls.push(['zero', p.grad + 4 * r0, nr]);
    const at = (ptr: number) => ptr + 4 * e0,
      atIn = (ptr: number) => ptr + 4 * r0;
    if (lm.kq)
      calls.push([
        'kbi_bwd',
        ne,
        at(lm.W),
        at(lm.kq.b),
        at(lm.kq.i),
        at(lm.kq.k),
        lm.kq.mode,
        at(lm.Wq),
        gWq,
        at(lm.pW.grad),
        at(lm.kq.pb.grad),
        at(lm.kq.pi.grad),
      ]);
    else calls.push(['add_into', at(lm.pW.grad), gWq, ne]);
    const iq = lm.iq;
    if (iq) calls.push(['kif_grads', nr, atIn(iq.i), atIn(iq.f), atIn(iq.k), iq.mode, sums, atIn(iq.pi.grad), atIn(iq.pf.grad)]);
    if (iq && lm.kq) {
      calls.push([
        'ebops_dense_rows',
        nr,
        N,
        atIn(iq.i),
        atIn(iq.f),
        atIn(iq.k),
        iq.mode,
        at(lm.kq.b),
        at(lm.kq.k),
        lm.kq.mode,
        fr(lm.beta),
        atIn(iq.pi.grad),
        atIn(iq.pf.grad),
        at(lm.kq.pb.grad),
        lm.ebopsRows + 8 * r0,
      ]);
    }
    // (the L1 gradient of a non-trainable parameter is computed but never applied)
    for (const p of wp) if (p.l1 > 0) calls.push(['add_scalar', ne, p.grad + 4 * e0, fr(p.l1)]);
    for (const p of ip) if (p.l1 > 0) calls.push(['add_scalar', nr, p.grad + 4 * r0, fr(p.l1)]);
    for (const p of wp)
      if (p.trainable) calls.push(['adam', ne, p.ptr + 4 * e0, p.grad + 4 * e0, p.m + 4 * e0, p.v + 4 * e0, ...adam]);
    for (const p of ip)
      if (p.trainable) calls.push(['adam', nr, p.ptr + 4 * r0, p.grad + 4 * r0, p.m + 4 * r0, p.v + 4 * r0, ...adam]);
  }

  /** A layer's bias and bias quantizer through the whole update (one thread). */
  private biasUpdate(calls: Call[], lm: LayerMem, blocks: number[], adam: AdamArgs): void {
    const N = lm.N,
      gBq = blocks[0]! + lm.gBo;
    for (const Gt of blocks.slice(1)) calls.push(['add_into', gBq, Gt + lm.gBo, N]);
    const bp = biasParams(lm);
    for (const p of bp) calls.push(['zero', p.grad, N]);
    const q = lm.bqq;
    if (q) calls.push(['kbi_bwd', N, lm.bias, q.b, q.i, q.k, q.mode, lm.bq, gBq, lm.pB!.grad, q.pb.grad, q.pi.grad]);
    else calls.push(['add_into', lm.pB!.grad, gBq, N]);
    if (q && lm.iq && lm.kq) calls.push(['ebops_bias', N, q.b, q.k, q.mode, fr(lm.beta), q.pb.grad, lm.ebopsBias]);
    for (const p of bp) if (p.l1 > 0) calls.push(['add_scalar', N, p.grad, fr(p.l1)]);
    for (const p of bp) if (p.trainable) calls.push(['adam', N, p.ptr, p.grad, p.m, p.v, ...adam]);
  }

  /** One training step on a batch: forward, loss, backward, EBOPs and L1 gradients, Adam. x, y may be batchBuffers() views (no copy). */
  step(x: Float32Array, y: Float32Array): StepResult {
    const B = this.loadBatch(x, y);
    const invB = this.desc.loss === 'mse' ? 1 / (B * this.C) : 1 / B;
    this.prepare();
    const { loss: lossSum, hits } = this.forwardBackward(B, fr(invB));
    const taskLoss = lossSum * invB;
    this.trackWrap();
    // the L1 terms of the parameters as the step found them (the update below moves them)
    let l1Loss = 0;
    for (const p of this.params) if (p.l1 > 0) l1Loss += p.l1 * this.k.sum_f64(p.n, p.ptr);
    const { ebops, ebopsLoss } = this.updateParams();
    const accuracy = this.desc.loss === 'mse' ? NaN : hits / B;
    return { loss: taskLoss + ebopsLoss + l1Loss, taskLoss, ebops, ebopsLoss, l1Loss, accuracy };
  }

  /** β of layer `l` (its EBOPs weight in the loss), e.g. from a β schedule at each epoch start. */
  setBeta(l: number, beta: number): void {
    if (!(l >= 0 && l < this.layers.length)) throw new Error(`hgq engine: no layer ${l} (the model has ${this.layers.length})`);
    if (!(Number.isFinite(beta) && beta >= 0)) throw new Error(`hgq engine: β must be finite and ≥ 0, got ${beta}`);
    this.layers[l].beta = beta;
  }
}

/** createEngine(desc, {threads}) — see Engine. */
export function createEngine(desc: ModelDesc, opts: EngineOptions = {}): Promise<Engine> {
  return Engine.create(desc, opts);
}
