/**
 * What the two training engines (engine.ts: a chain of dense layers; graph.ts: any supported graph) share:
 * their start-up checks and runtime, and the parameter state they read and write in wasm memory.
 */
import { loadKernels, type WasmMemory, type WasmModule } from './kernels.ts';
import { paramGradients, type AdamState } from './params.ts';
import { defaultThreads, poolFactoryFor, type Rounds } from './pool.ts';
import type { AdamConfig, EngineOptions, EngineState, Param, WorkerPoolFactory } from './types.ts';

export interface EngineRuntime {
  module: WasmModule;
  relaxed: boolean;
  threads: number;
  /** the thread pool to start once the engine exists (none: the calling thread only) */
  factory: WorkerPoolFactory | undefined;
}

/** Checks the description's loss and optimizer and the thread count, then compiles the kernels. */
export async function engineRuntime(
  desc: { layers: readonly unknown[]; loss: string; optimizer: AdamConfig },
  opts: EngineOptions,
): Promise<EngineRuntime> {
  if (!desc || !Array.isArray(desc.layers) || desc.layers.length === 0)
    throw new Error('hgq engine: the model description needs at least one layer');
  if (desc.loss !== 'softmax_cross_entropy' && desc.loss !== 'mse')
    throw new Error(`hgq engine: loss ${desc.loss} is not supported (softmax_cross_entropy, mse)`);
  if (!(desc.optimizer?.learningRate > 0)) throw new Error('hgq engine: optimizer.learningRate must be a positive number');
  const factory = await poolFactoryFor(opts.poolFactory);
  const threads = opts.threads ?? (factory ? await defaultThreads() : 1);
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256))
    throw new Error(`hgq engine: threads must be an integer in 1..256, got ${threads}`);
  if (threads > 1 && !factory) throw new Error('hgq engine: threads > 1 needs a thread pool (poolFactory) in this environment');
  const { module, relaxed } = await loadKernels(opts.simd ?? 'auto');
  return { module, relaxed, threads, factory };
}

/** The samples in a batch of inputs x (B×K0, row-major) and targets y (B×C); throws when they do not fit. */
export function batchSize(x: Float32Array, y: Float32Array, K0: number, C: number): number {
  if (!(x instanceof Float32Array) || x.length % K0 !== 0 || x.length === 0)
    throw new Error(`hgq engine: x must be a non-empty Float32Array of B×${K0} values`);
  const B = x.length / K0;
  if (!(y instanceof Float32Array) || y.length !== B * C)
    throw new Error(`hgq engine: y must be a Float32Array of ${B}×${C} values (got ${y?.length})`);
  return B;
}

/** The parameter state in wasm memory, as both engines keep it. */
export abstract class EngineBase {
  abstract readonly memory: WasmMemory;
  abstract readonly params: Param[];
  protected abstract readonly adam: AdamState;
  protected abstract readonly rounds: Rounds;

  get iterations(): number {
    return this.adam.iterations;
  }

  protected f32(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }

  /** Starts the thread pool, if any, once the engine is built. */
  protected async startThreads({ factory, module }: EngineRuntime): Promise<void> {
    if (factory) await this.rounds.start(factory, module);
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
