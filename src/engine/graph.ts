/**
 * The engine's graph path: models the chunked dense chain (engine.ts) cannot run — QBatchNormDense and
 * QBatchNormalization (batch statistics over the whole batch before normalizing), QConv1D/2D (and QDense per
 * position), pooling, merges (QAdd … QMinimum) and QConcatenate in any DAG, output quantizers. The
 * host runs the layers one by one over the whole batch, each a few compiled kernels on feature-major buffers
 * (buf[feature·S + sample], S ≥ batch a multiple of 16): convolutions as im2col chunks + the dense kernels
 * (weight sharing = the gradient summed over positions and samples), pooling and merges as row kernels.
 * A node's gradient buffer sums what its consumers send back, so any DAG in topological order works.
 * QDenseT (HGQ-LUT table layers) runs as its own node (table.ts): per-edge MLPs edge-major over sample blocks.
 * Threads (worker_threads under Node) share the memory: each heavy kernel call is split by rows, columns or
 * im2col chunks (conv weight gradients in per-thread blocks, reduced here); batch-norm folding, reductions and
 * the per-parameter work run on the calling thread between the parallel calls.
 *
 * Semantics are the tfjs layers' (src/layers): every quantizer, STE gradient, EBOPs and L1 term, Adam, WRAP
 * integer-bit tracking and the batch norm's moving statistics, equal to the tfjs training step within float32
 * rounding (test/engine-bn, engine-conv, engine-residual, engine-graph-trace, engine-table).
 */
import { batchSize, EngineBase, engineRuntime } from './base.ts';
import { instantiate, WA, type KernelExports, type WasmMemory, type WasmModule } from './kernels.ts';
import { AdamState, checkArr, ParamArena, type KbiMem, type KifMem } from './params.ts';
import { AREA_WORDS, CTRL_BYTES, Rounds, type Call } from './pool.ts';
import { TableLayer, type TableCtx } from './table.ts';
import { windowGeometry, type Padding, type Window1D } from '../layers/patches.ts';
import type {
  AddDesc,
  BnDenseDesc,
  BnDesc,
  ConcatDesc,
  ConvDesc,
  EngineOptions,
  GraphDenseDesc,
  GraphLayerDesc,
  GraphModelDesc,
  KifDesc,
  MergeOp,
  Param,
  PoolDesc,
  StepResult,
  TableDesc,
  TrainEngine,
} from './types.ts';

const MERGE_CODE: Record<MergeOp, number> = { add: 0, subtract: 1, multiply: 2, maximum: 3, minimum: 4 };

interface Input {
  src: number;
  K: number;
  iq: KifMem | null;
  A: number;
}

/** What building one node needs: the allocator, the node, its name in errors, its sources and their sizes. */
type NodeBuilder<D> = (e: GraphEngine, b: NodeBuild, d: D) => void;

interface NodeBuild {
  ar: ParamArena;
  nd: Node;
  pre: string;
  from: number[];
  srcSize: (s: number) => number;
}

interface Node {
  d: GraphLayerDesc;
  size: number;
  relu: boolean;
  ins: Input[];
  /** output quantizer: consumers read outQ */
  oq: KifMem | null;
  outQ: number;
  beta: number;
  out: number;
  dOut: number;
  // weights (dense, bndense, conv): K×N matrix
  K: number;
  N: number;
  pW?: Param;
  pB?: Param;
  W: number;
  Wq: number;
  WqT: number;
  bias: number;
  bq: number;
  kq?: KbiMem;
  bqq?: KbiMem;
  gWq: number;
  gBq: number;
  /** conv: per-thread weight-gradient blocks (thread 0 uses gWq, gBq) */
  gWt: number[];
  gBt: number[];
  // conv / pool geometry: C channels, KK window offsets, Pn output positions, idx [Pn·KK] input position or −1
  C: number;
  KK: number;
  Pn: number;
  idx: number;
  div: number;
  divMode: number;
  pf: number;
  /** merges: operation code, and the left-to-right intermediates (inputs − 2 buffers) */
  op: number;
  inter: number[];
  // bndense
  bn?: {
    pG?: Param;
    pMM: Param;
    pMV: Param;
    mean: number;
    variance: number;
    kf: number;
    bf: number;
    gKf: number;
    gBf: number;
    gm: number;
    gv: number;
    inv: Float64Array;
    s: Float64Array;
  };
  /** QBatchNormalization: per-row statistics/gradients (row = position·C + channel), per-channel s, o and their quantized values */
  cbn?: {
    pG?: Param;
    pO?: Param;
    pMM: Param;
    pMV: Param;
    rowMean: number;
    rowVar: number;
    meanRow: number;
    gm: number;
    gv: number;
    mean: Float64Array;
    inv: Float64Array;
    s: number;
    o: number;
    sq: number;
    oq: number;
    gsT: number[];
    goT: number[];
    gS: number;
    gO: number;
  };
  /** QDenseT: the table layer's memory and passes (table.ts) */
  lut?: TableLayer;
}

const PAGE = 65536;
const MAX_PAGES = 16384; // 1 GiB
const SCRATCH_BUDGET = 24 << 20; // bytes of im2col scratch (sets the conv chunk)
const fr = Math.fround;
/** round half to even, as tf.round (the bit parameters' straight-through rounding) */
const rte = (x: number): number => {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

const view = (f: Float32Array, p: number, n: number): Float32Array => f.subarray(p / 4, p / 4 + n);

/** Bits of n KIF activations as Quantizer.bits() (relu(round i + round f), +k under SAT), and where the sum is > 0. */
function actBits(f: Float32Array, q: KifMem, n: number): { bits: Float64Array; on: Uint8Array } {
  const bits = new Float64Array(n),
    on = new Uint8Array(n);
  const I = view(f, q.i, n),
    F = view(f, q.f, n),
    Kk = view(f, q.k, n);
  for (let j = 0; j < n; j++) {
    const s = rte(I[j]!) + rte(F[j]!);
    on[j] = s > 0 ? 1 : 0;
    bits[j] = Math.max(s, 0) + (q.mode === 1 ? Kk[j]! : 0);
  }
  return { bits, on };
}

/** Adds g(j) into f's gradient (and i's unless WRAP) where the activation's bits are on. */
function addAct(f: Float32Array, q: KifMem, n: number, on: Uint8Array, g: (j: number) => number): void {
  const gi = view(f, q.pi.grad, n),
    gf = view(f, q.pf.grad, n);
  for (let j = 0; j < n; j++) {
    if (!on[j]) continue;
    const x = fr(g(j));
    gf[j] = fr(gf[j]! + x);
    if (q.mode !== 0) gi[j] = fr(gi[j]! + x);
  }
}

/** Bits of n KBI weights: round(b), +k under SAT. */
function kbiBits(f: Float32Array, q: KbiMem, n: number): Float64Array {
  const B = view(f, q.b, n),
    Kk = view(f, q.k, n),
    out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = rte(B[j]!) + (q.mode === 1 ? Kk[j]! : 0);
  return out;
}

/** Whether an input's gradient is needed: it comes from another node, or feeds an input quantizer's bits. */
const needsInputGrad = (inp: Input): boolean => inp.src >= 0 || inp.iq !== null;

export class GraphEngine extends EngineBase implements TrainEngine {
  readonly threads: number;
  readonly relaxed: boolean;
  readonly memory: WasmMemory;
  readonly k: KernelExports;
  readonly params: Param[];
  private readonly nodes: Node[] = [];
  private readonly desc: GraphModelDesc;
  private readonly K0: number;
  private readonly C: number;
  protected readonly adam: AdamState;
  private staticEnd = 0;
  private scratch: number[] = []; // per thread: scratch memory of the dense kernels
  private lossP = 0; // f64 hits per thread
  protected readonly rounds: Rounds;
  private scratchPer = 0; // floats of im2col scratch per sample (largest conv)
  private maxK = 0; // largest node input (the dA buffer)
  private written = new Uint8Array(0);
  // batch-dependent layout
  private S = 0;
  private cb = 0;
  private B = 0;
  private X = 0;
  private Y = 0;
  private xIn = 0;
  private yIn = 0;
  private dA = 0;
  /** per thread: im2col patches, the conv's filter-major output/gradient, the patches' gradient */
  private P: number[] = [];
  private T: number[] = [];
  private dP: number[] = [];

  /** How each node type lays out its memory. */
  private static readonly nodeBuilders: { [T in GraphLayerDesc['type']]: NodeBuilder<Extract<GraphLayerDesc, { type: T }>> } = {
    dense: (e, b, d) => e.denseNode(b, d),
    bndense: (e, b, d) => e.denseNode(b, d),
    conv: (e, b, d) => e.convNode(b, d),
    pool: (e, b, d) => e.poolNode(b, d),
    bn: (e, b, d) => e.bnNode(b, d),
    concat: (e, b, d) => e.concatNode(b, d),
    add: (e, b, d) => e.mergeNode(b, d),
    table: (e, b, d) => e.tableNode(b, d),
  };

  private constructor(desc: GraphModelDesc, module: WasmModule, relaxed: boolean, threads: number) {
    super();
    this.desc = desc;
    this.relaxed = relaxed;
    this.threads = threads;
    this.adam = new AdamState(desc.optimizer);
    this.K0 = desc.inputs;
    if (!(Number.isInteger(desc.inputs) && desc.inputs > 0))
      throw new Error(`hgq engine: inputs must be a positive integer, got ${desc.inputs}`);
    const ar = new ParamArena(1024);
    this.params = ar.params;
    const sizes: number[] = [];
    desc.layers.forEach((d, li) => {
      const nd = this.buildNode(ar, d, li, sizes);
      sizes.push(nd.size);
      this.nodes.push(nd);
    });
    if (this.nodes.length === 0) throw new Error('hgq engine: the model description needs at least one layer');
    this.C = sizes[sizes.length - 1]!;
    for (let t = 0; t < threads; t++) this.scratch.push(ar.alloc(256)); // the dense kernels' scratch (dense_bwd_dx: 192 bytes)
    this.lossP = ar.alloc(8 * threads);
    const ctrl = ar.alloc(CTRL_BYTES),
      area = ar.alloc(threads * AREA_WORDS * 8);
    this.staticEnd = Math.ceil(ar.off / 64) * 64;
    this.written = new Uint8Array(this.nodes.length);
    this.memory = new WA.Memory({ initial: Math.ceil(this.staticEnd / PAGE) + 1, maximum: MAX_PAGES, shared: true });
    this.k = instantiate(module, this.memory);
    ar.copyInto(this.memory.buffer);
    this.rounds = new Rounds(this.k, this.memory, threads, ctrl, area);
  }

  /** Checks layer li's description, wires its inputs and lays out its parameters. */
  private buildNode(ar: ParamArena, d: GraphLayerDesc, li: number, sizes: readonly number[]): Node {
    const pre = `layers[${li}]`;
    const from = 'from' in d && d.from ? d.from : [li - 1];
    for (const s of from)
      if (!(Number.isInteger(s) && s >= -1 && s < li))
        throw new Error(`hgq engine: ${pre} takes input ${s}; inputs must be earlier layers (or −1, the model input)`);
    const nd: Node = {
      d,
      size: 0,
      relu: false,
      ins: [],
      beta: d.beta ?? 0,
      out: 0,
      dOut: 0,
      K: 0,
      N: 0,
      W: 0,
      Wq: 0,
      WqT: 0,
      bias: 0,
      bq: 0,
      gWq: 0,
      gBq: 0,
      C: 0,
      KK: 0,
      Pn: 0,
      idx: 0,
      div: 0,
      divMode: 0,
      pf: 1,
      gWt: [],
      gBt: [],
      op: 0,
      inter: [],
      oq: null,
      outQ: 0,
    };
    const b: NodeBuild = { ar, nd, pre, from, srcSize: (s) => (s < 0 ? this.desc.inputs : sizes[s]!) };
    const build = GraphEngine.nodeBuilders[d.type] as NodeBuilder<GraphLayerDesc> | undefined;
    if (!build) throw new Error(`hgq engine: ${pre} has unsupported type ${(d as { type: string }).type}`);
    build(this, b, d);
    if (d.oq) nd.oq = ar.kif(d.oq, nd.size, `${pre}.oq`);
    return nd;
  }

  /** A one-input node: K features from its source, through the optional input quantizer. */
  private oneInput({ ar, nd, pre, from, srcSize }: NodeBuild, K: number, iq: KifDesc | null | undefined): void {
    if (from.length !== 1) throw new Error(`hgq engine: ${pre} (${nd.d.type}) takes one input, got ${from.length}`);
    if (srcSize(from[0]!) !== K)
      throw new Error(`hgq engine: ${pre} expects ${K} input features but its input has ${srcSize(from[0]!)}`);
    nd.ins.push({ src: from[0]!, K, iq: iq ? ar.kif(iq, K, `${pre}.iq`) : null, A: 0 });
    this.maxK = Math.max(this.maxK, K);
  }

  /** A K×N kernel, optional bias and their quantizers (`folded`: batch-norm folding writes Wq and bq from kernel', bias'). */
  private weights(
    { ar, nd, pre }: NodeBuild,
    K: number,
    N: number,
    d: Pick<ConvDesc, 'kernel' | 'bias' | 'kq' | 'bq'>,
    folded: boolean,
  ): void {
    nd.K = K;
    nd.N = N;
    nd.pW = ar.param(`${pre}.kernel`, checkArr(d.kernel, K * N, `${pre}.kernel`), true);
    nd.W = nd.pW.ptr;
    nd.Wq = nd.W;
    if (d.kq) nd.kq = ar.kbi(d.kq, K * N, `${pre}.kq`);
    if (d.kq || folded) nd.Wq = ar.alloc(K * N * 4);
    nd.WqT = ar.alloc(K * N * 4); // N×K: the input-gradient kernel reads the quantized weights transposed
    if (d.bias) {
      nd.pB = ar.param(`${pre}.bias`, checkArr(d.bias, N, `${pre}.bias`), true);
      nd.bias = nd.pB.ptr;
      nd.bq = nd.bias;
      if (d.bq) nd.bqq = ar.kbi(d.bq, N, `${pre}.bq`);
      if (d.bq || folded) nd.bq = ar.alloc(N * 4);
    } else if (d.bq) throw new Error(`hgq engine: ${pre} has a bias quantizer but no bias`);
    nd.gWq = ar.alloc(K * N * 4);
    nd.gBq = ar.alloc(N * 4);
  }

  private activation({ nd, pre }: NodeBuild, a: string): void {
    if (a !== 'relu' && a !== 'linear') throw new Error(`hgq engine: ${pre} activation ${a} is not supported (relu or linear)`);
    nd.relu = a === 'relu';
  }

  /**
   * Window geometry of a conv or pooling node over inShape = [...spatial, C]: for each of the Pn output positions
   * and KK window offsets (both row-major, first axis slowest) the input position or −1 (TF 'same' padding).
   */
  private windows({ ar, nd, pre }: NodeBuild, inShape: number[], ks: number[], ss: number[], padding: Padding) {
    const sp = inShape.slice(0, -1),
      C = inShape[inShape.length - 1]!;
    if (!(sp.length >= 1 && ks.length === sp.length && ss.length === sp.length))
      throw new Error(`hgq engine: ${pre} window rank does not match its input [${inShape}]`);
    const g: Window1D[] = sp.map((n, a) => windowGeometry(n, ks[a]!, ss[a]!, padding));
    const KK = ks.reduce((a, b) => a * b, 1),
      Pn = g.reduce((a, w) => a * w.out, 1);
    const idx = new Int32Array(Pn * KK);
    const counts = new Float32Array(Pn);
    const oc = new Array<number>(sp.length).fill(0);
    for (let p = 0; p < Pn; p++) {
      let rem = p;
      for (let a = sp.length - 1; a >= 0; a--) {
        oc[a] = rem % g[a]!.out;
        rem = Math.floor(rem / g[a]!.out);
      }
      for (let j = 0; j < KK; j++) {
        let r = j,
          pos = 0,
          ok = true,
          stride = 1;
        for (let a = sp.length - 1; a >= 0; a--) {
          const ja = r % ks[a]!;
          r = Math.floor(r / ks[a]!);
          const x = oc[a]! * g[a]!.s + ja - g[a]!.padBefore;
          if (x < 0 || x >= sp[a]!) ok = false;
          pos += x * stride;
          stride *= sp[a]!;
        }
        idx[p * KK + j] = ok ? pos : -1;
        if (ok) counts[p]!++;
      }
    }
    nd.C = C;
    nd.KK = KK;
    nd.Pn = Pn;
    nd.idx = ar.put(idx);
    return { C, KK, Pn, counts, K: sp.reduce((a, b) => a * b, 1) * C };
  }

  private denseNode(b: NodeBuild, d: GraphDenseDesc | BnDenseDesc): void {
    const { ar, nd, pre } = b;
    this.activation(b, d.activation);
    this.oneInput(b, d.inputs, d.iq);
    this.weights(b, d.inputs, d.units, d, d.type === 'bndense');
    nd.size = d.units;
    if (d.type !== 'bndense') return;
    const K = d.inputs,
      N = d.units;
    if (!d.bias) throw new Error(`hgq engine: ${pre} (bndense) needs a bias`);
    if (!(d.momentum >= 0 && d.momentum < 1 && d.epsilon > 0))
      throw new Error(`hgq engine: ${pre} needs momentum in [0,1) and epsilon > 0`);
    nd.bn = {
      pG: d.gamma ? ar.param(`${pre}.gamma`, checkArr(d.gamma, K, `${pre}.gamma`), true) : undefined,
      pMM: ar.param(`${pre}.movingMean`, checkArr(d.movingMean, K, `${pre}.movingMean`), false),
      pMV: ar.param(`${pre}.movingVariance`, checkArr(d.movingVariance, K, `${pre}.movingVariance`), false),
      mean: ar.alloc(K * 4),
      variance: ar.alloc(K * 4),
      kf: ar.alloc(K * N * 4),
      bf: ar.alloc(N * 4),
      gKf: ar.alloc(K * N * 4),
      gBf: ar.alloc(N * 4),
      gm: ar.alloc(K * 4),
      gv: ar.alloc(K * 4),
      inv: new Float64Array(K),
      s: new Float64Array(K),
    };
  }

  private convNode(b: NodeBuild, d: ConvDesc): void {
    const { ar, nd } = b;
    this.activation(b, d.activation);
    const g = this.windows(b, d.inShape, d.kernelSize, d.strides, d.padding);
    this.oneInput(b, g.K, d.iq);
    this.weights(b, g.KK * g.C, d.filters, d, false);
    nd.size = g.Pn * d.filters;
    nd.pf = d.parallelizationFactor !== undefined && d.parallelizationFactor > 0 ? d.parallelizationFactor : g.Pn;
    nd.gWt = [nd.gWq];
    nd.gBt = [nd.gBq];
    for (let t = 1; t < this.threads; t++) {
      nd.gWt.push(ar.alloc(nd.K * nd.N * 4));
      nd.gBt.push(ar.alloc(nd.N * 4));
    }
    this.scratchPer = Math.max(this.scratchPer, g.Pn * (2 * g.KK * g.C + d.filters));
  }

  private poolNode(b: NodeBuild, d: PoolDesc): void {
    const { ar, nd, pre } = b;
    const sp = d.inShape.slice(0, -1);
    const g = d.global
      ? this.windows(b, d.inShape, sp, sp, 'valid')
      : this.windows(b, d.inShape, d.poolSize, d.strides, d.padding);
    this.oneInput(b, g.K, d.iq);
    nd.size = g.Pn * g.C;
    if (d.op === 'avg') {
      // global: tf.mul(sum, 1/n); windows: tf.div(sum, count of real elements)
      nd.divMode = d.global ? 1 : 0;
      nd.div = ar.put(d.global ? new Float32Array([1 / g.KK]) : g.counts);
    } else if (d.op !== 'max') throw new Error(`hgq engine: ${pre} pooling op ${(d as PoolDesc).op} is not supported`);
    const pos = d.global ? 1 : g.Pn;
    const pf = d.parallelizationFactor !== undefined && d.parallelizationFactor > 0 ? d.parallelizationFactor : pos;
    nd.pf = pf / pos; // EBOPs scale
  }

  private bnNode(b: NodeBuild, d: BnDesc): void {
    const { ar, nd, pre } = b;
    const C = d.inShape[d.inShape.length - 1]!,
      size = d.inShape.reduce((a, x) => a * x, 1);
    if (!(d.momentum >= 0 && d.momentum < 1 && d.epsilon > 0))
      throw new Error(`hgq engine: ${pre} needs momentum in [0,1) and epsilon > 0`);
    this.oneInput(b, size, d.iq);
    nd.C = C;
    nd.Pn = size / C;
    nd.size = size;
    nd.kq = ar.kbi(d.kq, C, `${pre}.kq`);
    nd.bqq = ar.kbi(d.bq, C, `${pre}.bq`);
    const gsT: number[] = [],
      goT: number[] = [];
    for (let t = 0; t < this.threads; t++) {
      gsT.push(ar.alloc(C * 4));
      goT.push(ar.alloc(C * 4));
    }
    nd.cbn = {
      pG: d.gamma ? ar.param(`${pre}.gamma`, checkArr(d.gamma, C, `${pre}.gamma`), true) : undefined,
      pO: d.offset ? ar.param(`${pre}.offset`, checkArr(d.offset, C, `${pre}.offset`), true) : undefined,
      pMM: ar.param(`${pre}.movingMean`, checkArr(d.movingMean, C, `${pre}.movingMean`), false),
      pMV: ar.param(`${pre}.movingVariance`, checkArr(d.movingVariance, C, `${pre}.movingVariance`), false),
      rowMean: ar.alloc(size * 4),
      rowVar: ar.alloc(size * 4),
      meanRow: ar.alloc(size * 4),
      gm: ar.alloc(size * 4),
      gv: ar.alloc(size * 4),
      mean: new Float64Array(C),
      inv: new Float64Array(C),
      s: ar.alloc(C * 4),
      o: ar.alloc(C * 4),
      sq: ar.alloc(C * 4),
      oq: ar.alloc(C * 4),
      gsT,
      goT,
      gS: ar.alloc(C * 4),
      gO: ar.alloc(C * 4),
    };
  }

  private concatNode({ ar, nd, pre, from, srcSize }: NodeBuild, d: ConcatDesc): void {
    if (from.length < 2 || d.parts.length !== from.length || d.iqs.length !== from.length)
      throw new Error(`hgq engine: ${pre} (concat) needs ≥ 2 inputs with one part size and quantizer entry each`);
    for (const [j, src] of from.entries()) {
      const K = d.outer * d.parts[j]!;
      if (srcSize(src) !== K) throw new Error(`hgq engine: ${pre} input ${j} has ${srcSize(src)} features, expected ${K}`);
      const q = d.iqs[j];
      nd.ins.push({ src, K, iq: q ? ar.kif(q, K, `${pre}.iq${j}`) : null, A: 0 });
      this.maxK = Math.max(this.maxK, K);
    }
    nd.size = d.outer * d.parts.reduce((a, b) => a + b, 0);
  }

  private tableNode(b: NodeBuild, d: TableDesc): void {
    this.activation(b, d.activation);
    if (!d.conv) {
      this.oneInput(b, d.nIn, null); // the per-edge input quantizer is the table's own
      b.nd.size = d.nOut;
      b.nd.lut = new TableLayer(b.ar, d, b.pre, this.threads);
      return;
    }
    const c = d.conv;
    const g = this.windows(b, c.inShape, c.kernelSize, c.strides, c.padding);
    if (d.nIn !== g.KK * g.C)
      throw new Error(`hgq engine: ${b.pre} nIn ${d.nIn} is not the window size × channels (${g.KK}·${g.C})`);
    this.oneInput(b, g.K, null);
    b.nd.size = g.Pn * d.nOut;
    b.nd.lut = new TableLayer(b.ar, d, b.pre, this.threads, g.Pn, { C: g.C, KK: g.KK, idx: b.nd.idx, K: g.K });
  }

  /** What a table layer's passes need from the engine (the current batch layout and the thread rounds). */
  private tableCtx(): TableCtx {
    return {
      k: this.k,
      f32: () => this.f32(),
      threads: this.threads,
      S: this.S,
      B: this.B,
      par: (c) => this.par(c),
      rows: (t, K) => this.rows(t, K),
      flat: (t, n) => this.flat(t, n),
    };
  }

  private mergeNode({ ar, nd, pre, from, srcSize }: NodeBuild, d: AddDesc): void {
    if (from.length < 2) throw new Error(`hgq engine: ${pre} (merge) needs at least two inputs`);
    const op = d.op ?? 'add';
    if (!(op in MERGE_CODE))
      throw new Error(`hgq engine: ${pre} merge op ${op} is not supported (${Object.keys(MERGE_CODE).join(', ')})`);
    if (op === 'subtract' && from.length !== 2) throw new Error(`hgq engine: ${pre} subtract takes exactly two inputs`);
    nd.op = MERGE_CODE[op];
    if (d.iqs.length !== from.length)
      throw new Error(`hgq engine: ${pre} has ${d.iqs.length} input quantizers for ${from.length} inputs`);
    for (const [j, s] of from.entries()) {
      if (srcSize(s) !== d.size) throw new Error(`hgq engine: ${pre} input ${j} has ${srcSize(s)} features, expected ${d.size}`);
      const q = d.iqs[j];
      nd.ins.push({ src: s, K: d.size, iq: q ? ar.kif(q, d.size, `${pre}.iq${j}`) : null, A: 0 });
    }
    nd.size = d.size;
  }

  static async create(desc: GraphModelDesc, opts: EngineOptions = {}): Promise<GraphEngine> {
    const rt = await engineRuntime(desc, opts);
    const e = new GraphEngine(desc, rt.module, rt.relaxed, rt.threads);
    await e.startThreads(rt);
    return e;
  }

  /** Every thread runs the calls its partition gives it; returns the sum of their results. */
  private par(callsOf: (t: number) => Call[]): number {
    return this.rounds.run(callsOf);
  }
  /** [c0, n): thread t's columns (multiples of 16). */
  private cols(t: number): [number, number] {
    const per = Math.ceil(this.S / this.threads / 16) * 16;
    const c0 = Math.min(this.S, t * per);
    return [c0, Math.min(this.S, c0 + per) - c0];
  }
  /** [r0, n): thread t's rows of K (multiples of 4). */
  private rows(t: number, K: number): [number, number] {
    const per = Math.ceil(K / this.threads / 4) * 4;
    const r0 = Math.min(K, t * per);
    return [r0, Math.min(K, r0 + per) - r0];
  }
  /** [o, n): thread t's part of n floats (multiples of 16). */
  private flat(t: number, n: number): [number, number] {
    const per = Math.ceil(n / this.threads / 16) * 16;
    const o = Math.min(n, t * per);
    return [o, Math.min(n, o + per) - o];
  }
  /** thread t's im2col chunks (start columns). */
  private chunks(t: number): number[] {
    const n = this.S / this.cb,
      per = Math.ceil(n / this.threads);
    const out: number[] = [];
    for (let j = t * per; j < Math.min(n, (t + 1) * per); j++) out.push(j * this.cb);
    return out;
  }
  private zeroPar(ptr: number, n: number): void {
    this.par((t) => {
      const [o, m] = this.flat(t, n);
      return m > 0 ? [['zero', ptr + 4 * o, m]] : [];
    });
  }

  /** Lays out the batch-dependent buffers for B samples (grows the memory when needed). */
  private layout(B: number): void {
    if (B === this.B) return;
    const ceil16 = (n: number) => Math.ceil(n / 16) * 16;
    // one im2col chunk per thread at least; every chunk's scratch within the budget
    let cb = ceil16(Math.ceil(B / this.threads));
    if (this.scratchPer > 0)
      cb = Math.max(16, Math.min(cb, Math.floor(SCRATCH_BUDGET / this.threads / (4 * this.scratchPer) / 16) * 16));
    const S = Math.ceil(B / cb) * cb;
    let off = this.staticEnd;
    const alloc = (floats: number) => {
      off = Math.ceil(off / 64) * 64;
      const p = off;
      off += Math.max(floats, 1) * 4;
      return p;
    };
    this.xIn = alloc(B * this.K0);
    this.yIn = alloc(B * this.C);
    this.X = alloc(this.K0 * S);
    this.Y = alloc(this.C * S);
    for (const nd of this.nodes) {
      nd.out = alloc(nd.size * S);
      nd.dOut = alloc(nd.size * S);
      nd.outQ = nd.oq ? alloc(nd.size * S) : nd.out;
      for (const inp of nd.ins) inp.A = inp.iq ? alloc(inp.K * S) : 0;
      nd.inter = nd.d.type === 'add' ? nd.ins.slice(2).map(() => alloc(nd.size * S)) : [];
      nd.lut?.layout(alloc, S, this.threads);
    }
    this.dA = alloc(this.maxK * S);
    let convMax = 0;
    for (const nd of this.nodes) if (nd.d.type === 'conv') convMax = Math.max(convMax, nd.K * nd.Pn * cb, nd.N * nd.Pn * cb);
    let tMax = 0;
    for (const nd of this.nodes) if (nd.d.type === 'conv') tMax = Math.max(tMax, nd.N * nd.Pn * cb);
    this.P = [];
    this.dP = [];
    this.T = [];
    for (let t = 0; t < this.threads; t++) {
      this.P.push(alloc(convMax));
      this.dP.push(alloc(convMax));
      this.T.push(alloc(tMax));
    }
    if (off > MAX_PAGES * PAGE)
      throw new Error(
        `hgq engine: a batch of ${B} samples needs ${Math.ceil(off / 2 ** 20)} MiB (over 1 GiB); use a smaller batch`,
      );
    const cur = this.memory.buffer.byteLength;
    if (off > cur) this.memory.grow(Math.ceil((off - cur) / PAGE));
    this.S = S;
    this.cb = cb;
    this.B = B;
  }

  private srcOut(s: number): number {
    return s < 0 ? this.X : this.nodes[s]!.outQ;
  }

  /** All activation quantizers: each node's input quantizers and its output quantizer. */
  private *kifs(): Generator<{ q: KifMem; K: number }> {
    for (const nd of this.nodes) {
      for (const inp of nd.ins) if (inp.iq) yield { q: inp.iq, K: inp.K };
      if (nd.oq) yield { q: nd.oq, K: nd.size };
    }
  }

  /** Bounds, weight quantizers (BN layers fold first, after their statistics), activation-quantizer preparation. */
  private prepare(): void {
    const k = this.k;
    for (const p of this.params) if (p.lo > -Infinity || p.hi < Infinity) k.clamp(p.n, p.ptr, p.lo, p.hi);
    for (const nd of this.nodes) {
      if (!nd.bn && !nd.cbn) {
        if (nd.kq) k.kbi_fwd(nd.K * nd.N, nd.W, nd.kq.b, nd.kq.i, nd.kq.k, nd.kq.mode, nd.Wq);
        if (nd.bqq) k.kbi_fwd(nd.N, nd.bias, nd.bqq.b, nd.bqq.i, nd.bqq.k, nd.bqq.mode, nd.bq);
        if (nd.pW) k.transpose_w(nd.Wq, nd.K, nd.N, nd.WqT);
      }
    }
    for (const { q, K } of this.kifs()) k.prep_act(K, q.i, q.f, q.k, q.mode, q.prep);
  }

  step(x: Float32Array, y: Float32Array): StepResult {
    const B = batchSize(x, y, this.K0, this.C);
    this.layout(B);
    const k = this.k,
      S = this.S;
    let f = this.f32();
    f.set(x, this.xIn / 4);
    f.set(y, this.yIn / 4);
    this.par((t) => {
      const [c0, n] = this.cols(t);
      if (n === 0) return [];
      const nb = Math.max(0, Math.min(n, B - c0));
      return [
        ['transpose_in', this.xIn, this.K0, c0, nb, this.X + 4 * c0, S, n],
        ['transpose_in', this.yIn, this.C, c0, nb, this.Y + 4 * c0, S, n],
      ];
    });
    this.prepare();
    for (const p of this.params) k.zero(p.grad, p.n);
    for (const { q, K } of this.kifs()) {
      k.zero(q.sums, 3 * K);
      k.zero(q.amx, K);
    }
    // forward
    for (const nd of this.nodes) this.forward(nd, B);
    // loss → gradient of the last node's output
    const last = this.nodes[this.nodes.length - 1]!;
    const invB = fr(this.desc.loss === 'mse' ? 1 / (B * this.C) : 1 / B);
    new Float64Array(this.memory.buffer, this.lossP, this.threads).fill(0);
    const lossSum = this.par((t) => {
      const [c0, n] = this.cols(t);
      if (n === 0) return [];
      const nb = Math.max(0, Math.min(n, B - c0)),
        o = 4 * c0;
      return [
        this.desc.loss === 'mse'
          ? ['mse', last.outQ + o, this.Y + o, this.C, S, n, nb, invB, last.dOut + o, 0]
          : ['softmax_ce', last.outQ + o, this.Y + o, this.C, S, n, nb, invB, last.dOut + o, 0, this.lossP + 8 * t],
      ];
    });
    const hits = new Float64Array(this.memory.buffer, this.lossP, this.threads).reduce((a, b) => a + b, 0);
    // a node's gradient buffer is written by its first consumer (in backward order) and accumulated by the others
    this.written.fill(0);
    this.written[this.nodes.length - 1] = 1;
    // backward (parameter gradients of each node as it is reached)
    for (let n = this.nodes.length - 1; n >= 0; n--) {
      if (!this.written[n]) this.zeroPar(this.nodes[n]!.dOut, this.nodes[n]!.size * S); // an output nobody reads
      this.backward(this.nodes[n]!, B);
    }
    // WRAP integer bits follow the data, before EBOPs are taken
    for (const { q, K } of this.kifs()) if (q.mode === 0) k.wrap_track(K, q.i, q.f, q.amx, q.decay, q.iBounds[0], q.iBounds[1]);
    let ebops = 0,
      ebopsLoss = 0;
    f = this.f32();
    for (const nd of this.nodes) {
      const e = this.ebops(nd, f);
      ebops += e;
      ebopsLoss += nd.beta * e;
    }
    let l1Loss = 0;
    for (const p of this.params) if (p.l1 > 0) l1Loss += p.l1 * k.l1(p.n, p.ptr, fr(p.l1), p.grad);
    this.applyAdam();
    const taskLoss = lossSum * invB;
    return {
      loss: taskLoss + ebopsLoss + l1Loss,
      taskLoss,
      ebops,
      ebopsLoss,
      l1Loss,
      accuracy: this.desc.loss === 'mse' ? NaN : hits / B,
    };
  }

  private forward(nd: Node, B: number): void {
    this.forwardLayer(nd, B);
    const q = nd.oq;
    if (q)
      this.par((t) => {
        const [r0, n] = this.rows(t, nd.size),
          o = 4 * r0 * this.S;
        return n > 0
          ? [['act_q', nd.out + o, nd.outQ + o, n, this.S, this.S, B, q.mode === 0 ? 0 : 4, q.prep + 16 * r0, q.amx + 4 * r0]]
          : [];
      });
  }

  private forwardLayer(nd: Node, B: number): void {
    const S = this.S,
      d = nd.d;
    for (const inp of nd.ins) {
      const H = this.srcOut(inp.src);
      if (!inp.iq) {
        inp.A = H;
        continue;
      }
      const q = inp.iq,
        A = inp.A,
        K = inp.K;
      // rows split: each thread owns its rows' |x_q| maxima
      this.par((t) => {
        const [r0, n] = this.rows(t, K);
        return n > 0
          ? [['act_q', H + 4 * r0 * S, A + 4 * r0 * S, n, S, S, B, q.mode === 0 ? 0 : 4, q.prep + 16 * r0, q.amx + 4 * r0]]
          : [];
      });
    }
    const A = nd.ins[0]!.A;
    const colsCall = (f: (c0: number, n: number, t: number) => Call[]) =>
      this.par((t) => {
        const [c0, n] = this.cols(t);
        return n > 0 ? f(c0, n, t) : [];
      });
    switch (d.type) {
      case 'dense':
      case 'bndense': {
        if (d.type === 'bndense') this.bnFold(nd, A, B);
        const bq = nd.pB ? nd.bq : 0;
        colsCall((c0, n, t) => [
          ['dense_fwd', A + 4 * c0, nd.K, nd.Wq, nd.N, bq, nd.out + 4 * c0, S, n, nd.relu ? 1 : 0, 0, 0, 0, n, this.scratch[t]!],
        ]);
        break;
      }
      case 'conv': {
        const cb = this.cb,
          w = nd.Pn * cb,
          bq = nd.pB ? nd.bq : 0;
        this.par((t) =>
          this.chunks(t).flatMap((c0): Call[] => [
            ['im2col', A, S, c0, nd.C, nd.idx, nd.KK, nd.Pn, this.P[t]!, cb],
            ['dense_fwd', this.P[t]!, nd.K, nd.Wq, nd.N, bq, this.T[t]!, w, w, nd.relu ? 1 : 0, 0, 0, 0, w, this.scratch[t]!],
            ['perm_rows', this.T[t]!, cb, nd.out + 4 * c0, S, nd.N, nd.Pn, cb],
          ]),
        );
        break;
      }
      case 'pool':
        colsCall((c0, n) => [
          d.op === 'max'
            ? ['pool_max_fwd', A + 4 * c0, S, n, nd.C, nd.idx, nd.KK, nd.Pn, nd.out + 4 * c0]
            : ['pool_avg_fwd', A + 4 * c0, S, n, nd.C, nd.idx, nd.KK, nd.Pn, nd.out + 4 * c0, nd.div, nd.divMode],
        ]);
        break;
      case 'bn': {
        this.cbnFold(nd, A, B);
        const c = nd.cbn!;
        this.par((t) => {
          const [r0, n] = this.rows(t, nd.size);
          return n > 0 ? [['chan_affine', A, S, S, r0, n, nd.C, c.sq, c.oq, nd.out]] : [];
        });
        break;
      }
      case 'table':
        nd.lut!.forward(this.tableCtx(), A, nd.out);
        break;
      case 'concat':
        this.par((t) =>
          this.concatSegments(nd, t).map(
            ([j, o, r, len]): Call => ['copy_f32', nd.out + 4 * o * S, nd.ins[j]!.A + 4 * r * S, len * S],
          ),
        );
        break;
      case 'add':
        // left to right: acc_j = acc_{j−1} op A_j (acc_0 = A_0), the intermediates kept for the backward pass
        this.par((t) => {
          const [o, m] = this.flat(t, nd.size * S);
          if (m === 0) return [];
          return nd.ins
            .slice(1)
            .map(
              (inp, j): Call => [
                'ew_fwd',
                nd.op,
                this.mergeAcc(nd, j) + 4 * o,
                inp.A + 4 * o,
                this.mergeAcc(nd, j + 1) + 4 * o,
                m,
              ],
            );
        });
        break;
    }
  }

  /**
   * Batch statistics of the quantized input, the moving-statistics update (Keras momentum rule, float32 as
   * tfjs), and the fold kernel' = s·W (s = γ/√(σ²+ε) per input row), bias' = b − μ·W, then their quantizers.
   */
  private bnFold(nd: Node, A: number, B: number): void {
    const k = this.k,
      bn = nd.bn!,
      d = nd.d as BnDenseDesc,
      K = nd.K,
      N = nd.N;
    this.par((t) => {
      const [r0, n] = this.rows(t, K);
      return n > 0 ? [['bn_stats', A + 4 * r0 * this.S, n, this.S, B, bn.mean + 4 * r0, bn.variance + 4 * r0]] : [];
    });
    const f = this.f32();
    const mean = f.subarray(bn.mean / 4, bn.mean / 4 + K),
      vr = f.subarray(bn.variance / 4, bn.variance / 4 + K);
    const mom = fr(d.momentum),
      omm = fr(1 - d.momentum),
      eps = fr(d.epsilon);
    const mm = f.subarray(bn.pMM.ptr / 4, bn.pMM.ptr / 4 + K),
      mv = f.subarray(bn.pMV.ptr / 4, bn.pMV.ptr / 4 + K);
    const W = f.subarray(nd.W / 4, nd.W / 4 + K * N),
      kf = f.subarray(bn.kf / 4, bn.kf / 4 + K * N);
    const g = bn.pG ? f.subarray(bn.pG.ptr / 4, bn.pG.ptr / 4 + K) : null;
    for (let r = 0; r < K; r++) {
      mm[r] = fr(fr(mm[r]! * mom) + fr(mean[r]! * omm));
      mv[r] = fr(fr(mv[r]! * mom) + fr(vr[r]! * omm));
      const inv = fr(1 / Math.sqrt(fr(vr[r]! + eps)));
      bn.inv[r] = inv;
      const s = g ? fr(g[r]! * inv) : inv;
      bn.s[r] = s;
      for (let n = 0; n < N; n++) kf[r * N + n] = fr(s * W[r * N + n]!);
    }
    const bias = f.subarray(nd.bias / 4, nd.bias / 4 + N),
      bf = f.subarray(bn.bf / 4, bn.bf / 4 + N);
    for (let n = 0; n < N; n++) {
      let m = 0;
      for (let r = 0; r < K; r++) m += mean[r]! * W[r * N + n]!;
      bf[n] = fr(bias[n]! - fr(m));
    }
    if (nd.kq) k.kbi_fwd(K * N, bn.kf, nd.kq.b, nd.kq.i, nd.kq.k, nd.kq.mode, nd.Wq);
    else k.copy_f32(nd.Wq, bn.kf, K * N);
    if (nd.bqq) k.kbi_fwd(N, bn.bf, nd.bqq.b, nd.bqq.i, nd.bqq.k, nd.bqq.mode, nd.bq);
    else k.copy_f32(nd.bq, bn.bf, N);
    k.transpose_w(nd.Wq, K, N, nd.WqT);
  }

  private backward(nd: Node, B: number): void {
    const k = this.k,
      S = this.S,
      d = nd.d,
      dz = nd.dOut;
    this.activationBackward(nd);
    const A = nd.ins[0]!.A;
    const dA = this.dA;
    switch (d.type) {
      case 'dense':
      case 'bndense': {
        k.zero(nd.gWq, nd.K * nd.N);
        k.zero(nd.gBq, nd.N);
        const inp = nd.ins[0]!;
        const dx = needsInputGrad(inp) || d.type === 'bndense';
        // weight gradient split by input rows (disjoint gW rows; thread 0 sums the bias), input gradient by columns
        this.par((t) => {
          const calls: Call[] = [];
          const [r0, nr] = this.rows(t, nd.K);
          if (nr > 0)
            calls.push([
              'dense_bwd_dw',
              A + 4 * r0 * S,
              nr,
              dz,
              nd.N,
              S,
              S,
              nd.gWq + 4 * r0 * nd.N,
              t === 0 && nd.pB ? nd.gBq : 0,
            ]);
          const [c0, n] = this.cols(t);
          if (dx && n > 0)
            calls.push([
              'dense_bwd_dx_t',
              dz + 4 * c0,
              nd.N,
              nd.WqT,
              nd.K,
              S,
              n,
              8,
              dA + 4 * c0,
              dA + 4 * c0,
              0,
              dA + 4 * c0,
              0,
              this.scratch[t]!,
            ]);
          return calls;
        });
        if (d.type === 'bndense') this.bnBackward(nd, A, B);
        else this.weightGrads(nd);
        if (needsInputGrad(inp)) this.inputBackward(inp, dA);
        break;
      }
      case 'conv':
        this.convBackward(nd, A, dz);
        break;
      case 'pool': {
        const inp = nd.ins[0]!;
        if (!needsInputGrad(inp)) break;
        this.zeroPar(dA, inp.K * S);
        this.par((t) => {
          const [c0, n] = this.cols(t);
          if (n === 0) return [];
          const o = 4 * c0;
          return [
            d.op === 'max'
              ? ['pool_max_bwd', A + o, S, n, nd.C, nd.idx, nd.KK, nd.Pn, nd.out + o, dz + o, dA + o]
              : ['pool_avg_bwd', S, n, nd.C, nd.idx, nd.KK, nd.Pn, dz + o, nd.div, nd.divMode, dA + o],
          ];
        });
        this.inputBackward(inp, dA);
        break;
      }
      case 'bn': {
        const c = nd.cbn!;
        this.par((t) => {
          const [r0, n] = this.rows(t, nd.size);
          return [
            ['zero', c.gsT[t]!, nd.C],
            ['zero', c.goT[t]!, nd.C],
            ...(n > 0 ? [['chan_affine_bwd', dz, A, S, S, r0, n, nd.C, c.sq, dA, c.gsT[t]!, c.goT[t]!] as Call] : []),
          ];
        });
        for (let t = 1; t < this.threads; t++) {
          k.add_into(c.gsT[0]!, c.gsT[t]!, nd.C);
          k.add_into(c.goT[0]!, c.goT[t]!, nd.C);
        }
        this.cbnBackward(nd, A, B);
        if (needsInputGrad(nd.ins[0]!)) this.inputBackward(nd.ins[0]!, dA);
        break;
      }
      case 'table': {
        const inp = nd.ins[0]!;
        nd.lut!.backward(this.tableCtx(), A, dz, needsInputGrad(inp) ? dA : 0);
        if (needsInputGrad(inp)) this.inputBackward(inp, dA);
        break;
      }
      case 'concat':
        for (const [j, inp] of nd.ins.entries()) {
          if (!needsInputGrad(inp)) continue;
          this.par((t) =>
            this.concatSegments(nd, t)
              .filter((sg) => sg[0] === j)
              .map(([, o, r, len]): Call => ['copy_f32', dA + 4 * r * S, dz + 4 * o * S, len * S]),
          );
          this.inputBackward(inp, dA);
        }
        break;
      case 'add':
        if (nd.op === 0) {
          for (const inp of nd.ins) if (needsInputGrad(inp)) this.inputBackward(inp, dz);
          break;
        }
        // right to left through acc_j = acc_{j−1} op A_j: A_j's gradient into dA, acc_{j−1}'s in place in dz
        for (let j = nd.ins.length - 1; j >= 1; j--) {
          const left = this.mergeAcc(nd, j - 1),
            right = nd.ins[j]!.A;
          this.par((t) => {
            const [o, m] = this.flat(t, nd.size * S);
            return m > 0 ? [['ew_bwd', nd.op, left + 4 * o, right + 4 * o, dz + 4 * o, dz + 4 * o, dA + 4 * o, m]] : [];
          });
          if (needsInputGrad(nd.ins[j]!)) this.inputBackward(nd.ins[j]!, dA);
        }
        if (needsInputGrad(nd.ins[0]!)) this.inputBackward(nd.ins[0]!, dz);
        break;
    }
    for (const inp of nd.ins)
      if (inp.iq) k.kif_grads(inp.K, inp.iq.i, inp.iq.f, inp.iq.k, inp.iq.mode, inp.iq.sums, inp.iq.pi.grad, inp.iq.pf.grad);
  }

  /** ∂L/∂(node output) back through the output quantizer and ReLU, in place in nd.dOut; the quantizer's bit gradients. */
  private activationBackward(nd: Node): void {
    const k = this.k,
      S = this.S,
      dz = nd.dOut;
    const oq = nd.oq;
    if (oq) {
      // ∂L/∂(quantized output) → ∂L/∂(output), in place
      this.par((t) => {
        const [r0, n] = this.rows(t, nd.size),
          o = 4 * r0 * S;
        return n > 0
          ? [
              [
                'act_q_bwd',
                dz + o,
                nd.out + o,
                nd.outQ + o,
                n,
                S,
                S,
                (oq.mode === 0 ? 0 : 4) | 8,
                oq.prep + 16 * r0,
                dz + o,
                oq.sums + 12 * r0,
              ],
            ]
          : [];
      });
      k.kif_grads(nd.size, oq.i, oq.f, oq.k, oq.mode, oq.sums, oq.pi.grad, oq.pf.grad);
    }
    if (nd.relu)
      this.par((t) => {
        const [o, m] = this.flat(t, nd.size * S);
        return m > 0 ? [['relu_mask', dz + 4 * o, nd.out + 4 * o, m]] : [];
      });
  }

  /** Convolution backward: weight gradients per thread over im2col chunks, summed into thread 0's; input gradient by col2im. */
  private convBackward(nd: Node, A: number, dz: number): void {
    const k = this.k,
      S = this.S,
      dA = this.dA;
    const cb = this.cb,
      w = nd.Pn * cb;
    const inp = nd.ins[0]!;
    const dx = needsInputGrad(inp);
    if (dx) this.zeroPar(dA, inp.K * S);
    // im2col chunks split over threads, each into its own weight-gradient block
    this.par((t) => {
      const gW = nd.gWt[t]!,
        gB = nd.gBt[t]!;
      const calls: Call[] = [
        ['zero', gW, nd.K * nd.N],
        ['zero', gB, nd.N],
      ];
      for (const c0 of this.chunks(t)) {
        calls.push(['perm_rows', dz + 4 * c0, S, this.T[t]!, cb, nd.Pn, nd.N, cb]);
        calls.push(['im2col', A, S, c0, nd.C, nd.idx, nd.KK, nd.Pn, this.P[t]!, cb]);
        calls.push(['dense_bwd_dw', this.P[t]!, nd.K, this.T[t]!, nd.N, w, w, gW, nd.pB ? gB : 0]);
        if (dx) {
          calls.push([
            'dense_bwd_dx_t',
            this.T[t]!,
            nd.N,
            nd.WqT,
            nd.K,
            w,
            w,
            8,
            this.dP[t]!,
            this.dP[t]!,
            0,
            this.dP[t]!,
            0,
            this.scratch[t]!,
          ]);
          calls.push(['col2im_add', this.dP[t]!, cb, nd.C, nd.idx, nd.KK, nd.Pn, dA, S, c0]);
        }
      }
      return calls;
    });
    for (let t = 1; t < this.threads; t++) {
      k.add_into(nd.gWq, nd.gWt[t]!, nd.K * nd.N);
      k.add_into(nd.gBq, nd.gBt[t]!, nd.N);
    }
    this.weightGrads(nd);
    if (dx) this.inputBackward(inp, dA);
  }

  /** Concatenation as row segments [input, output row, input row, rows], the rows split over threads. */
  private concatSegments(nd: Node, t: number): Array<[number, number, number, number]> {
    const d = nd.d as ConcatDesc,
      tot = d.parts.reduce((a, b) => a + b, 0);
    const [r0, n] = this.rows(t, nd.size);
    const out: Array<[number, number, number, number]> = [];
    for (let o = 0; o < d.outer; o++) {
      let off = 0;
      d.parts.forEach((len, j) => {
        const a = o * tot + off,
          lo = Math.max(a, r0),
          hi = Math.min(a + len, r0 + n);
        if (hi > lo) out.push([j, lo, o * len + (lo - a), hi - lo]);
        off += len;
      });
    }
    return out;
  }

  /** Merge accumulator j: the first input (j = 0), an intermediate, or the output (j = inputs − 1). */
  private mergeAcc(nd: Node, j: number): number {
    return j === 0 ? nd.ins[0]!.A : j === nd.ins.length - 1 ? nd.out : nd.inter[j - 1]!;
  }

  /** g = ∂L/∂(quantized input): the input quantizer's backward into the producer's gradient (and its parameter sums). */
  private inputBackward(inp: Input, g: number): void {
    const S = this.S;
    const dst = inp.src >= 0 ? this.nodes[inp.src]!.dOut : 0;
    const acc = dst !== 0 && this.written[inp.src] === 1;
    if (dst) this.written[inp.src] = 1;
    const H = this.srcOut(inp.src);
    if (inp.iq) {
      const q = inp.iq,
        fl = (q.mode === 0 ? 0 : 4) | (dst ? (acc ? 16 : 8) : 0);
      this.par((t) => {
        const [r0, n] = this.rows(t, inp.K);
        const o = 4 * r0 * S;
        return n > 0
          ? [['act_q_bwd', g + o, H + o, inp.A + o, n, S, S, fl, q.prep + 16 * r0, dst ? dst + o : 0, q.sums + 12 * r0]]
          : [];
      });
    } else if (dst) {
      this.par((t) => {
        const [o, m] = this.flat(t, inp.K * S);
        return m > 0 ? [acc ? ['add_into', dst + 4 * o, g + 4 * o, m] : ['copy_f32', dst + 4 * o, g + 4 * o, m]] : [];
      });
    }
  }

  /**
   * QBatchNormalization forward: per-channel statistics (rows' moments combined: the positions of a channel
   * have equal counts), the moving-statistics update, s, o and their quantizers (tfjs float32 op order).
   */
  private cbnFold(nd: Node, A: number, B: number): void {
    const k = this.k,
      c = nd.cbn!,
      d = nd.d as BnDesc,
      C = nd.C,
      P = nd.Pn,
      S = this.S;
    const f = this.f32();
    const v = (p: number, n: number) => f.subarray(p / 4, p / 4 + n);
    const mm = v(c.pMM.ptr, C),
      mv = v(c.pMV.ptr, C);
    const mean = c.mean,
      vr = new Float64Array(C);
    if (d.freeze) {
      for (let j = 0; j < C; j++) {
        mean[j] = mm[j]!;
        vr[j] = mv[j]!;
      }
    } else {
      this.par((t) => {
        const [r0, n] = this.rows(t, nd.size);
        return n > 0 ? [['bn_stats', A + 4 * r0 * S, n, S, B, c.rowMean + 4 * r0, c.rowVar + 4 * r0]] : [];
      });
      const f2 = this.f32();
      const rm = f2.subarray(c.rowMean / 4, c.rowMean / 4 + nd.size),
        rv = f2.subarray(c.rowVar / 4, c.rowVar / 4 + nd.size);
      for (let j = 0; j < C; j++) {
        let m = 0;
        for (let p = 0; p < P; p++) m += rm[p * C + j]!;
        m /= P;
        let q = 0;
        for (let p = 0; p < P; p++) {
          const dm = rm[p * C + j]! - m;
          q += rv[p * C + j]! + dm * dm;
        }
        mean[j] = fr(m);
        vr[j] = fr(q / P);
      }
      const mom = fr(d.momentum),
        omm = fr(1 - d.momentum);
      for (let j = 0; j < C; j++) {
        mm[j] = fr(fr(mm[j]! * mom) + fr(mean[j]! * omm));
        mv[j] = fr(fr(mv[j]! * mom) + fr(vr[j]! * omm));
      }
    }
    const eps = fr(d.epsilon);
    const sv = v(c.s, C),
      ov = v(c.o, C),
      mr = v(c.meanRow, nd.size);
    const g = c.pG ? v(c.pG.ptr, C) : null,
      off = c.pO ? v(c.pO.ptr, C) : null;
    for (let j = 0; j < C; j++) {
      const inv = fr(1 / Math.sqrt(fr(vr[j]! + eps)));
      c.inv[j] = inv;
      const s = g ? fr(g[j]! * inv) : inv;
      sv[j] = s;
      const o = fr(-fr(mean[j]! * s));
      ov[j] = off ? fr(o + off[j]!) : o;
    }
    for (let r = 0; r < nd.size; r++) mr[r] = mean[r % C]!;
    k.kbi_fwd(C, c.s, nd.kq!.b, nd.kq!.i, nd.kq!.k, nd.kq!.mode, c.sq);
    k.kbi_fwd(C, c.o, nd.bqq!.b, nd.bqq!.i, nd.bqq!.k, nd.bqq!.mode, c.oq);
  }

  /** QBatchNormalization backward: quantizers, γ, offset, and (with batch statistics) the statistics' gradient into dA. */
  private cbnBackward(nd: Node, A: number, B: number): void {
    const k = this.k,
      c = nd.cbn!,
      d = nd.d as BnDesc,
      C = nd.C,
      P = nd.Pn;
    k.kbi_bwd(C, c.s, nd.kq!.b, nd.kq!.i, nd.kq!.k, nd.kq!.mode, c.sq, c.gsT[0]!, c.gS, nd.kq!.pb.grad, nd.kq!.pi.grad);
    k.kbi_bwd(C, c.o, nd.bqq!.b, nd.bqq!.i, nd.bqq!.k, nd.bqq!.mode, c.oq, c.goT[0]!, c.gO, nd.bqq!.pb.grad, nd.bqq!.pi.grad);
    const f = this.f32();
    const v = (p: number, n: number) => f.subarray(p / 4, p / 4 + n);
    const gS = v(c.gS, C),
      gO = v(c.gO, C),
      sv = v(c.s, C),
      gm = v(c.gm, nd.size),
      gv = v(c.gv, nd.size);
    const gamma = c.pG ? v(c.pG.ptr, C) : null,
      gG = c.pG ? v(c.pG.grad, C) : null,
      gOff = c.pO ? v(c.pO.grad, C) : null;
    const n = B * P;
    for (let j = 0; j < C; j++) {
      if (gOff) gOff[j] = gO[j]!;
      const mu = c.mean[j]!,
        inv = c.inv[j]!;
      const gs = gS[j]! - gO[j]! * mu; // o = offset − μ·s
      if (gG) gG[j] = gs * inv;
      const ginv = gamma ? gs * gamma[j]! : gs;
      const gvar = ginv * -0.5 * inv * inv * inv;
      const gmu = -gO[j]! * sv[j]!;
      for (let p = 0; p < P; p++) {
        gm[p * C + j] = gmu / n;
        gv[p * C + j] = (2 * gvar) / n;
      }
    }
    if (d.freeze) return;
    this.bnDxAdd(A, nd.size, B, c.gm, c.gv, c.meanRow);
  }

  /** dA (K rows) += the batch statistics' part of the batch-norm input gradient, rows split over the threads. */
  private bnDxAdd(A: number, K: number, B: number, gm: number, gv: number, mean: number): void {
    this.par((t) => {
      const [r0, n] = this.rows(t, K);
      const o = 4 * r0 * this.S;
      return n > 0 ? [['bn_dx_add', this.dA + o, A + o, n, this.S, B, gm + 4 * r0, gv + 4 * r0, mean + 4 * r0]] : [];
    });
  }

  /** ∂L/∂W, ∂L/∂b and the weight quantizers' bit gradients from ∂L/∂Wq, ∂L/∂bq. */
  private weightGrads(nd: Node): void {
    const k = this.k;
    if (nd.kq)
      k.kbi_bwd(
        nd.K * nd.N,
        nd.W,
        nd.kq.b,
        nd.kq.i,
        nd.kq.k,
        nd.kq.mode,
        nd.Wq,
        nd.gWq,
        nd.pW!.grad,
        nd.kq.pb.grad,
        nd.kq.pi.grad,
      );
    else k.add_into(nd.pW!.grad, nd.gWq, nd.K * nd.N);
    if (nd.pB) {
      if (nd.bqq)
        k.kbi_bwd(
          nd.N,
          nd.bias,
          nd.bqq.b,
          nd.bqq.i,
          nd.bqq.k,
          nd.bqq.mode,
          nd.bq,
          nd.gBq,
          nd.pB.grad,
          nd.bqq.pb.grad,
          nd.bqq.pi.grad,
        );
      else k.add_into(nd.pB.grad, nd.gBq, nd.N);
    }
  }

  /**
   * Batch-norm fold backward: from ∂L/∂kernel', ∂L/∂bias' to W, b, γ, and to the batch statistics, whose
   * gradients reach the input: ∂μ/∂x = 1/B, ∂σ²/∂x = 2(x − μ)/B (tf.moments).
   */
  private bnBackward(nd: Node, A: number, B: number): void {
    const k = this.k,
      bn = nd.bn!,
      K = nd.K,
      N = nd.N;
    if (nd.kq)
      k.kbi_bwd(K * N, bn.kf, nd.kq.b, nd.kq.i, nd.kq.k, nd.kq.mode, nd.Wq, nd.gWq, bn.gKf, nd.kq.pb.grad, nd.kq.pi.grad);
    else k.copy_f32(bn.gKf, nd.gWq, K * N);
    if (nd.bqq)
      k.kbi_bwd(N, bn.bf, nd.bqq.b, nd.bqq.i, nd.bqq.k, nd.bqq.mode, nd.bq, nd.gBq, bn.gBf, nd.bqq.pb.grad, nd.bqq.pi.grad);
    else k.copy_f32(bn.gBf, nd.gBq, N);
    const f = this.f32();
    const v = (p: number, n: number) => f.subarray(p / 4, p / 4 + n);
    const W = v(nd.W, K * N),
      gKf = v(bn.gKf, K * N),
      gBf = v(bn.gBf, N),
      mean = v(bn.mean, K);
    const gW = v(nd.pW!.grad, K * N),
      gb = v(nd.pB!.grad, N),
      gm = v(bn.gm, K),
      gv = v(bn.gv, K);
    const gamma = bn.pG ? v(bn.pG.ptr, K) : null,
      gG = bn.pG ? v(bn.pG.grad, K) : null;
    for (let n = 0; n < N; n++) gb[n] = gBf[n]!;
    for (let r = 0; r < K; r++) {
      const s = bn.s[r]!,
        inv = bn.inv[r]!,
        mu = mean[r]!;
      let gs = 0,
        gmu = 0;
      for (let n = 0; n < N; n++) {
        const j = r * N + n;
        gW[j] = s * gKf[j]! - mu * gBf[n]!;
        gs += gKf[j]! * W[j]!;
        gmu -= gBf[n]! * W[j]!;
      }
      if (gG) gG[r] = gs * inv;
      const ginv = gamma ? gs * gamma[r]! : gs;
      const gvar = ginv * -0.5 * inv * inv * inv;
      gm[r] = gmu / B;
      gv[r] = (2 * gvar) / B;
    }
    this.bnDxAdd(A, K, B, bn.gm, bn.gv, bn.mean);
  }

  /**
   * This node's EBOPs (src/layers' formulas, docs/quantizers.md §6) and β times its straight-through gradients added
   * into the bit parameters' gradients. Bits as Quantizer.bits(): KBI round(b), KIF relu(round i + round f),
   * +k under SAT; the gradient of relu(round i + round f) reaches f (and i unless WRAP) where the sum is > 0.
   */
  private ebops(nd: Node, f: Float32Array): number {
    const d = nd.d,
      beta = fr(nd.beta);
    if (d.type === 'dense' || d.type === 'bndense') {
      const iq = nd.ins[0]!.iq;
      if (!iq || !nd.kq) return 0;
      return this.k.ebops_dense(
        nd.K,
        nd.N,
        iq.i,
        iq.f,
        iq.k,
        iq.mode,
        nd.kq.b,
        nd.kq.k,
        nd.kq.mode,
        nd.bqq ? nd.bqq.b : 0,
        nd.bqq ? nd.bqq.k : 0,
        nd.bqq ? nd.bqq.mode : 0,
        beta,
        iq.pi.grad,
        iq.pf.grad,
        nd.kq.pb.grad,
        nd.bqq ? nd.bqq.pb.grad : 0,
      );
    }
    if (d.type === 'conv') {
      const iq = nd.ins[0]!.iq;
      if (!iq || !nd.kq) return 0;
      const KC = nd.K,
        F = nd.N,
        C = nd.C,
        KK = nd.KK,
        Pn = nd.Pn;
      const { bits, on } = actBits(f, iq, nd.ins[0]!.K);
      const bw = kbiBits(f, nd.kq, KC * F);
      const rowSum = new Float64Array(KC),
        col = new Float64Array(KC);
      for (let r = 0; r < KC; r++) for (let n = 0; n < F; n++) rowSum[r]! += bw[r * F + n]!;
      const idx = new Int32Array(this.memory.buffer, nd.idx, Pn * KK);
      const gIn = new Float64Array(nd.ins[0]!.K);
      for (let p = 0; p < Pn; p++)
        for (let j = 0; j < KK; j++) {
          const s = idx[p * KK + j]!;
          if (s < 0) continue;
          for (let c = 0; c < C; c++) {
            col[j * C + c]! += bits[s * C + c]!;
            gIn[s * C + c]! += rowSum[j * C + c]!;
          }
        }
      // Σ conv(bits_in, bits_W)·pf/positions + Σ bits_b·pf
      const scale = nd.pf / Pn;
      let e = 0;
      for (let r = 0; r < KC; r++) e += col[r]! * rowSum[r]!;
      e *= scale;
      const gKb = view(f, nd.kq.pb.grad, KC * F);
      for (let r = 0; r < KC; r++) {
        const x = fr(beta * col[r]! * scale);
        for (let n = 0; n < F; n++) gKb[r * F + n] = fr(gKb[r * F + n]! + x);
      }
      addAct(f, iq, nd.ins[0]!.K, on, (j) => beta * scale * gIn[j]!);
      if (nd.bqq) {
        const bb = kbiBits(f, nd.bqq, F),
          gBb = view(f, nd.bqq.pb.grad, F);
        for (let n = 0; n < F; n++) {
          e += bb[n]! * nd.pf;
          gBb[n] = fr(gBb[n]! + fr(beta * nd.pf));
        }
      }
      return e;
    }
    if (d.type === 'bn') {
      // Σ bits_in·bits_s[channel] + Σ bits_o·(size/channels)
      const C = nd.C,
        P = nd.Pn,
        iq = nd.ins[0]!.iq;
      const bs = kbiBits(f, nd.kq!, C),
        bo = kbiBits(f, nd.bqq!, C);
      const gKb = view(f, nd.kq!.pb.grad, C),
        gBb = view(f, nd.bqq!.pb.grad, C);
      let e = 0;
      const col = new Float64Array(C);
      if (iq) {
        const { bits, on } = actBits(f, iq, nd.size);
        for (let r = 0; r < nd.size; r++) {
          e += bits[r]! * bs[r % C]!;
          col[r % C]! += bits[r]!;
        }
        addAct(f, iq, nd.size, on, (r) => beta * bs[r % C]!);
      }
      for (let j = 0; j < C; j++) {
        e += bo[j]! * P;
        gKb[j] = fr(gKb[j]! + fr(beta * col[j]!));
        gBb[j] = fr(gBb[j]! + fr(beta * P));
      }
      return e;
    }
    if (d.type === 'pool') {
      const iq = nd.ins[0]!.iq;
      if (!iq) return 0;
      const n = nd.ins[0]!.K;
      const { bits, on } = actBits(f, iq, n);
      let e = 0;
      for (let j = 0; j < n; j++) e += bits[j]!;
      addAct(f, iq, n, on, () => beta * nd.pf);
      return e * nd.pf;
    }
    if (d.type === 'concat') return 0;
    if (d.type === 'table') return nd.lut!.ebops(f, beta);
    return this.mergeEbops(nd, f, beta);
  }

  /**
   * EBOPs of a merge (src/layers/merge.ts): add 0.65·(Σ Σ bits − Σ min), maximum/minimum Σ Σ bits − Σ min, subtract
   * Σ max(b0, b1), multiply Σ Π bits; min/max gradients go to the input tf.minimum / tf.maximum picks
   */
  private mergeEbops(nd: Node, f: Float32Array, beta: number): number {
    if (nd.ins.some((inp) => !inp.iq)) return 0;
    const n = nd.size;
    const all = nd.ins.map((inp) => actBits(f, inp.iq!, n));
    if (nd.op === 1) {
      let e = 0;
      const first = new Uint8Array(n);
      for (let j = 0; j < n; j++) {
        const a = all[0]!.bits[j]!,
          b = all[1]!.bits[j]!;
        first[j] = a >= b ? 1 : 0;
        e += Math.max(a, b);
      }
      addAct(f, nd.ins[0]!.iq!, n, all[0]!.on, (j) => (first[j] ? beta : 0));
      addAct(f, nd.ins[1]!.iq!, n, all[1]!.on, (j) => (first[j] ? 0 : beta));
      return e;
    }
    if (nd.op === 2) {
      let e = 0;
      for (let j = 0; j < n; j++) e += all.reduce((p, a) => p * a.bits[j]!, 1);
      nd.ins.forEach((inp, t) =>
        addAct(f, inp.iq!, n, all[t]!.on, (j) => beta * all.reduce((p, a, u) => (u === t ? p : p * a.bits[j]!), 1)),
      );
      return e;
    }
    const owner = new Int32Array(n);
    let e = 0;
    for (let j = 0; j < n; j++) {
      let m = all[0]!.bits[j]!,
        o = 0;
      for (let t = 1; t < all.length; t++) {
        const b = all[t]!.bits[j]!;
        if (!(m <= b)) {
          m = b;
          o = t;
        }
      }
      owner[j] = o;
      for (const a of all) e += a.bits[j]!;
      e -= m;
    }
    const c = nd.op === 0 ? fr(0.65) : 1;
    nd.ins.forEach((inp, t) => addAct(f, inp.iq!, n, all[t]!.on, (j) => (owner[j] === t ? 0 : beta * c)));
    return e * c;
  }

  private applyAdam(): void {
    this.adam.apply(this.k, this.params);
  }

  setBeta(l: number, beta: number): void {
    if (!(l >= 0 && l < this.nodes.length)) throw new Error(`hgq engine: no layer ${l} (the model has ${this.nodes.length})`);
    if (!(Number.isFinite(beta) && beta >= 0)) throw new Error(`hgq engine: β must be finite and ≥ 0, got ${beta}`);
    this.nodes[l]!.beta = beta;
  }
}

export function createGraphEngine(desc: GraphModelDesc, opts: EngineOptions = {}): Promise<GraphEngine> {
  return GraphEngine.create(desc, opts);
}
