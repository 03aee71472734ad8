/**
 * Node thread pool for the engine: worker_threads sharing the engine's WebAssembly.Memory. Dispatch and
 * completion go through Atomics on a control block in that memory (no message round trips per step).
 */
import { Worker } from 'node:worker_threads';
import { CTRL_WORDS, type ThreadPool, type ThreadPoolFactory } from './engine.ts';

export const nodePoolFactory: ThreadPoolFactory = async (module, memory, plan, ctrlPtr, workers) => {
  const ctrl = new Int32Array(memory.buffer, ctrlPtr, CTRL_WORDS);
  Atomics.store(ctrl, 0, 0);
  Atomics.store(ctrl, 1, 0);
  const url = new URL('./worker.mjs', import.meta.url);
  const ws: Worker[] = [];
  let lastError = '';
  await Promise.all(Array.from({ length: workers }, (_, j) => new Promise<void>((resolve, reject) => {
    const w = new Worker(url, { workerData: { module, memory, plan, ctrl: ctrlPtr, t: j + 1, ctrlWords: CTRL_WORDS }, execArgv: [] });
    ws.push(w);
    w.once('message', () => { w.on('message', (m) => { lastError = String(m); }); w.unref(); resolve(); });
    w.once('error', reject);
  })));
  const pool: ThreadPool = {
    size: workers,
    runSlices(slices, own) {
      if (slices.length !== workers) throw new Error(`hgq engine: ${slices.length} slices for ${workers} workers`);
      slices.forEach(([s, c], j) => { ctrl[4 + 2 * (j + 1)] = s; ctrl[5 + 2 * (j + 1)] = c; });
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
      if (Atomics.load(ctrl, 3) !== 0) throw new Error(`hgq engine: worker ${Atomics.load(ctrl, 3)} failed: ${lastError}`);
    },
    dispose() {
      Atomics.store(ctrl, 1, 1);
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      for (const w of ws) void w.terminate();
    },
  };
  return pool;
};
