/**
 * Node thread pool for the engine's graph path: worker_threads sharing the engine's WebAssembly.Memory, each
 * running the kernel call list the main thread wrote for it (src/engine/graph-worker.mjs). Dispatch and
 * completion go through Atomics on a control block in that memory.
 */
import type { WasmMemory, WasmModule } from './kernels.ts';
import { startWorkers } from './workers-node.ts';

export interface GraphPool {
  readonly workers: number;
  /** runs every worker's call list (already written to its area) while `own` runs here; waits for all */
  run(own: () => void): void;
  dispose(): void;
}

export async function nodeGraphPool(module: WasmModule, memory: WasmMemory, ctrlPtr: number, area: number, areaWords: number, workers: number, fns: readonly string[]): Promise<GraphPool> {
  const ctrl = new Int32Array(memory.buffer, ctrlPtr, 4);
  const ws = await startWorkers(new URL('./graph-worker.mjs', import.meta.url), ctrl, workers,
    (t) => ({ module, memory, ctrl: ctrlPtr, area, areaWords, t, fns: [...fns] }));
  return { workers, run: (own) => ws.round(own, 'graph worker'), dispose: () => ws.dispose() };
}
