/**
 * The engine's shared types: the model descriptions both paths take (a dense chain for engine.ts, a layer DAG
 * for graph.ts), what training returns, the parameter record in wasm memory, the thread-pool contract and the
 * `TrainEngine` interface both engines implement. Types only: every engine file imports from here, none from
 * another's implementation.
 */
import type { WasmMemory, WasmModule } from './kernels.ts';
import type { Padding } from '../layers/patches.ts';

export type ActOverflow = 'WRAP' | 'SAT' | 'SAT_SYM';

/** What both quantizer kinds carry: the sign bit k, the integer bits i and the regularizer. */
interface QuantizerDesc {
  round?: 'RND';
  k: Float32Array;
  i: Float32Array;
  iBounds?: [number, number];
  /** MonoL1 coefficient (KIF: λ·Σ raw i and f, HGQ2's default regularizer; KBI: λ·Σ raw b) */
  l1?: number;
}

/** KIF quantizer (activations), one parameter per feature (batch axis shared). */
export interface KifDesc extends QuantizerDesc {
  overflow: ActOverflow;
  f: Float32Array;
  fBounds?: [number, number];
  /** WRAP integer-bit decay per step (default 0.01) */
  decay?: number;
}

/** KBI quantizer (weights, biases), one parameter per element. */
export interface KbiDesc extends QuantizerDesc {
  overflow: 'SAT' | 'SAT_SYM';
  b: Float32Array;
  bBounds?: [number, number];
}

/** What every layer with a kernel carries: its weights, their quantizers and the input's. */
export interface KernelDesc {
  activation: 'relu' | 'linear';
  /** in the tfjs kernel layout (dense: inputs×units, row-major) */
  kernel: Float32Array;
  bias?: Float32Array | null;
  iq?: KifDesc | null;
  kq?: KbiDesc | null;
  bq?: KbiDesc | null;
  /** EBOPs weight in the loss */
  beta?: number;
}

export interface DenseDesc extends KernelDesc {
  type: 'dense';
  inputs: number;
  units: number;
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

export interface EngineState {
  values: Record<string, Float32Array>;
  adam: {
    m: Record<string, Float32Array>;
    v: Record<string, Float32Array>;
    iterations: number;
    accBeta1: number;
    accBeta2: number;
    /** the rate of the next steps (a schedule changes it between epochs); absent on write: unchanged */
    learningRate?: number;
  };
}

/**
 * Worker threads sharing the engine's WebAssembly.Memory. Each round, worker t (1..workers) runs the kernel
 * call list the engine wrote to its area of that memory (see pool.ts for the encoding and the control block)
 * while the calling thread runs `own`; lists no worker has claimed by then the calling thread runs through
 * `takeOver(t)`. `run` returns when all are done and throws if a worker failed.
 */
export interface WorkerPool {
  readonly workers: number;
  run(own: () => void, takeOver: (t: number) => void): void;
  dispose(): void;
}

/** What a pool's workers need: the kernels, the shared memory, the control block, the call-list areas. */
export interface WorkerPoolInit {
  module: WasmModule;
  memory: WasmMemory;
  /** byte offset of the control block (CTRL_BYTES, layout CTRL: see pool.ts) */
  ctrl: number;
  /** byte offset of the call-list areas: worker t's is area + t·areaWords·8 (float64 words) */
  area: number;
  areaWords: number;
  workers: number;
  /** kernel export names, indexed by the call lists */
  fns: readonly string[];
}

/** Starts a pool (src/engine/pool-node.ts under Node; browsers pass one on Web Workers). */
export type WorkerPoolFactory = (init: WorkerPoolInit) => Promise<WorkerPool>;

/** Options of either engine path (chunk and schedule concern the dense chain only). */
export interface EngineOptions {
  /** worker threads including the calling thread; default: all cores (1 when no pool factory is available) */
  threads?: number;
  /** samples per cache-resident chunk (multiple of 16; default 256, 128 when a layer has more than 512 inputs) */
  chunk?: number;
  simd?: 'auto' | 'relaxed' | 'simd128';
  /** custom thread pool (browsers: Web Workers); Node uses worker_threads by default */
  poolFactory?: WorkerPoolFactory;
  /**
   * 'dynamic' (default): threads take chunks from a shared counter (robust on a busy machine; the float sum
   * order of the gradients then varies run to run at rounding level); 'static': fixed contiguous slices,
   * bit-reproducible for a given thread count.
   */
  schedule?: 'dynamic' | 'static';
}

/**
 * Node inputs: indices of earlier layers, −1 = the model input (default: the previous layer, or the input);
 * an optional output quantizer (KIF, per activation) applied last, after the activation.
 */
interface Wired {
  from?: number[];
  oq?: KifDesc | null;
}

export interface GraphDenseDesc extends DenseDesc, Wired {}

/** QBatchNormDense: kernel' = kq(γ/√(σ²+ε)·W) (rows scaled), bias' = bq(b − μ·W); μ, σ² of the quantized input. */
export interface BnDenseDesc extends Omit<DenseDesc, 'type'>, Wired {
  type: 'bndense';
  gamma: Float32Array | null;
  movingMean: Float32Array;
  movingVariance: Float32Array;
  momentum: number;
  epsilon: number;
}

/** QConv1D/2D, channels last: inShape = [...spatial, channels]; kernel [...kernelSize, channels, filters] row-major. */
export interface ConvDesc extends Wired, KernelDesc {
  type: 'conv';
  inShape: number[];
  filters: number;
  kernelSize: number[];
  strides: number[];
  padding: Padding;
  /** HGQ2 parallelization_factor; ≤ 0: fully parallel */
  parallelizationFactor?: number;
}

/** Max/average pooling (global: one window over all positions, the average as sum·(1/n)). */
export interface PoolDesc extends Wired {
  type: 'pool';
  op: 'max' | 'avg';
  inShape: number[];
  poolSize: number[];
  strides: number[];
  padding: Padding;
  global?: boolean;
  iq?: KifDesc | null;
  beta?: number;
  parallelizationFactor?: number;
}

export type MergeOp = 'add' | 'subtract' | 'multiply' | 'maximum' | 'minimum';

/**
 * QAdd / QSubtract / QMultiply / QMaximum / QMinimum of ≥ 2 same-size inputs (subtract: exactly 2), each with its
 * own input quantizer; computed left to right as tfjs does ((a0 op a1) op a2 …).
 */
export interface AddDesc extends Wired {
  type: 'add';
  /** default 'add' */
  op?: MergeOp;
  size: number;
  from: number[];
  iqs: (KifDesc | null)[];
  beta?: number;
}

/**
 * QBatchNormalization (channel last, inShape = [...positions, channels]): y = x·kq(s) + bq(o), s = γ/√(σ²+ε),
 * o = offset − μ·s; statistics per channel over the batch and positions (moving ones when `freeze`).
 */
export interface BnDesc extends Wired {
  type: 'bn';
  inShape: number[];
  gamma: Float32Array | null;
  offset: Float32Array | null;
  movingMean: Float32Array;
  movingVariance: Float32Array;
  momentum: number;
  epsilon: number;
  freeze?: boolean;
  iq?: KifDesc | null;
  kq: KbiDesc;
  bq: KbiDesc;
  beta?: number;
}

/**
 * QConcatenate along one per-sample axis: per-sample inputs [outer, parts[j], …] flattened; output row
 * (o, off_j + r) copies input j's row (o, r) (parts count rows, i.e. the axis length times the inner size).
 */
export interface ConcatDesc extends Wired {
  type: 'concat';
  from: number[];
  outer: number;
  parts: number[];
  iqs: (KifDesc | null)[];
  /** EBOPs weight (a concatenation costs none) */
  beta?: number;
}

/** Batch norm over a table layer's n_out (Keras: batch statistics over samples and inputs in training). */
export interface TableBnDesc {
  gamma: Float32Array | null;
  beta: Float32Array | null;
  movingMean: Float32Array;
  movingVariance: Float32Array;
  momentum: number;
  epsilon: number;
}

/**
 * QDenseT (HGQ-LUT, src/layers/table-dense.ts) on (batch, n_in) inputs: every edge e = i·n_out + o quantizes x_i
 * (iq), runs its MLP 1 → dHl (nHl hidden layers) → 1, optional batch norm over n_out then ÷ √n_in (only with batch norm, as the tfjs layer), the table output
 * quantizer (toq, KBI), Σ over i, the activation. Weights in the tfjs layouts (hidden l kernel [n_in, n_out,
 * d_prev, dHl], bias [n_in, n_out, dHl]; output kernel [n_in, n_out, d_last], bias [n_in, n_out]). Quantizer
 * parameters may be shared between edges: iqIndex / toqIndex give each edge's parameter (default: one per edge).
 */
export interface TableDesc extends Wired {
  type: 'table';
  nIn: number;
  nOut: number;
  nHl: number;
  dHl: number;
  subnnActivation: 'linear' | 'relu' | 'tanh' | 'sigmoid';
  activation: 'relu' | 'linear';
  hiddenKernels: Float32Array[];
  /** one per hidden layer, or none (useBias false) */
  hiddenBiases: Float32Array[];
  outKernel: Float32Array;
  outBias: Float32Array | null;
  batchNorm?: TableBnDesc | null;
  iq?: KifDesc | null;
  iqIndex?: Int32Array;
  toq: KbiDesc;
  toqIndex?: Int32Array;
  /**
   * QConvT1D/2D: the convolution (input [...spatial, channels]; nIn = window size × channels, channels fastest). The
   * tables run on im2col rows, one block of the batch per output position; quantizer parameters are per (position,
   * edge) on the edge shape [1, ...positions, n_in, n_out], their index order (e·positions + p).
   */
  conv?: { inShape: number[]; kernelSize: number[]; strides: number[]; padding: Padding } | null;
  /** (B, b) of the EBOPs' LUT-B-from-LUT-b count (HGQ2 table_idxs) */
  tableIdxs: [number, number];
  /** EBOPs scale pf / n_parallel (positions; 1 for a dense table layer) */
  pfScale?: number;
  beta?: number;
}

export type GraphLayerDesc = GraphDenseDesc | BnDenseDesc | ConvDesc | PoolDesc | AddDesc | BnDesc | ConcatDesc | TableDesc;

export interface GraphModelDesc {
  /** features per sample of the model input */
  inputs: number;
  layers: GraphLayerDesc[];
  loss: 'softmax_cross_entropy' | 'mse';
  optimizer: AdamConfig;
}

/** What fit.ts and the binding need from either engine path. */
export interface TrainEngine {
  readonly threads: number;
  readonly relaxed: boolean;
  readonly iterations: number;
  step(x: Float32Array, y: Float32Array): StepResult;
  /** views of the engine's own input memory for a batch of B samples (no copy in step); the chain path has them */
  batchBuffers?(B: number): { x: Float32Array; y: Float32Array };
  setBeta(l: number, beta: number): void;
  readState(): EngineState;
  writeState(s: Partial<EngineState> & { values?: Record<string, Float32Array> }): void;
  debugGradients(): Record<string, Float32Array>;
  dispose(): void;
}

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
