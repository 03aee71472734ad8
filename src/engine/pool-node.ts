/**
 * Node thread pool for the engine's dense-chain path: worker_threads sharing the engine's WebAssembly.Memory,
 * each running `run_slice` over the samples the main thread assigned it (src/engine/worker.mjs).
 */
import { CTRL_WORDS, type ThreadPool, type ThreadPoolFactory } from './engine.ts';
import { startWorkers } from './workers-node.ts';

export const nodePoolFactory: ThreadPoolFactory = async (module, memory, plan, ctrlPtr, workers) => {
  const ctrl = new Int32Array(memory.buffer, ctrlPtr, CTRL_WORDS);
  const ws = await startWorkers(new URL('./worker.mjs', import.meta.url), ctrl, workers,
    (t) => ({ module, memory, plan, ctrl: ctrlPtr, t, ctrlWords: CTRL_WORDS }));
  const pool: ThreadPool = {
    size: workers,
    runSlices(slices, own) {
      if (slices.length !== workers) throw new Error(`hgq engine: ${slices.length} slices for ${workers} workers`);
      slices.forEach(([s, c], j) => { ctrl[4 + 2 * (j + 1)] = s; ctrl[5 + 2 * (j + 1)] = c; });
      ws.round(own, 'worker');
    },
    dispose: () => ws.dispose(),
  };
  return pool;
};
