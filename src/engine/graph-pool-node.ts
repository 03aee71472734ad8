/**
 * Node thread pool for the engine's graph path: worker_threads sharing the engine's WebAssembly.Memory, each
 * running the kernel call list the main thread wrote for it (src/engine/graph-worker.mjs). Dispatch and
 * completion go through Atomics on a control block in that memory.
 */
import { Worker } from 'node:worker_threads';
import type { WasmMemory, WasmModule } from './kernels.ts';

export interface GraphPool {
  readonly workers: number;
  /** runs every worker's call list (already written to its area) while `own` runs here; waits for all */
  run(own: () => void): void;
  dispose(): void;
}

export async function nodeGraphPool(module: WasmModule, memory: WasmMemory, ctrlPtr: number, area: number, areaWords: number, workers: number, fns: readonly string[]): Promise<GraphPool> {
  const ctrl = new Int32Array(memory.buffer, ctrlPtr, 4);
  Atomics.store(ctrl, 0, 0);
  Atomics.store(ctrl, 1, 0);
  const url = new URL('./graph-worker.mjs', import.meta.url);
  const ws: Worker[] = [];
  let lastError = '';
  await Promise.all(Array.from({ length: workers }, (_, j) => new Promise<void>((resolve, reject) => {
    const w = new Worker(url, { workerData: { module, memory, ctrl: ctrlPtr, area, areaWords, t: j + 1, fns: [...fns] }, execArgv: [] });
    ws.push(w);
    w.once('message', () => { w.on('message', (m) => { lastError = String(m); }); w.unref(); resolve(); });
    w.once('error', reject);
  })));
  return {
    workers,
    run(own) {
      Atomics.store(ctrl, 2, 0);
      Atomics.store(ctrl, 3, 0);
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      own();
      for (;;) {
        const d = Atomics.load(ctrl, 2);
        if (d >= workers) break;
        Atomics.wait(ctrl, 2, d, 10000);
      }
      if (Atomics.load(ctrl, 3) !== 0) throw new Error(`hgq engine: graph worker ${Atomics.load(ctrl, 3)} failed: ${lastError}`);
    },
    dispose() {
      Atomics.store(ctrl, 1, 1);
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      for (const w of ws) void w.terminate();
    },
  };
}
