/**
 * The Node thread pool of both engine paths: worker_threads (src/engine/worker.mjs) on the engine's shared
 * WebAssembly.Memory, each running its call list every round (the protocol and control block: pool.ts).
 */
import { Worker } from 'node:worker_threads';
import type { WorkerPool, WorkerPoolFactory } from './types.ts';

/** Spawns the workers (worker t = 1..n) and waits until each has instantiated the kernels. */
export const nodePoolFactory: WorkerPoolFactory = async ({ module, memory, ctrl: ctrlPtr, area, areaWords, workers: n, fns }) => {
  const ctrl = new Int32Array(memory.buffer, ctrlPtr, 4);
  Atomics.store(ctrl, 0, 0);
  Atomics.store(ctrl, 1, 0);
  const ws: Worker[] = [];
  let lastError = '';
  await Promise.all(Array.from({ length: n }, (_, j) => new Promise<void>((resolve, reject) => {
    const w = new Worker(new URL('./worker.mjs', import.meta.url),
      { workerData: { module, memory, ctrl: ctrlPtr, area, areaWords, t: j + 1, fns: [...fns] }, execArgv: [] });
    ws.push(w);
    w.once('message', () => { w.on('message', (m) => { lastError = String(m); }); w.unref(); resolve(); });
    w.once('error', reject);
  })));
  const pool: WorkerPool = {
    workers: n,
    run(own) {
      Atomics.store(ctrl, 2, 0);
      Atomics.store(ctrl, 3, 0);
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      own();
      for (;;) {
        const d = Atomics.load(ctrl, 2);
        if (d >= n) break;
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
