/**
 * The Node thread pool of both engine paths: worker_threads (src/engine/worker.mjs) on the engine's shared
 * WebAssembly.Memory, each running its call list every round (the protocol and control block: pool.ts).
 */
import { Worker } from 'node:worker_threads';
import { CTRL } from './pool.ts';
import type { WorkerPool, WorkerPoolFactory } from './types.ts';

/** Spawns the workers (worker t = 1..n) and waits until each has instantiated the kernels. */
export const nodePoolFactory: WorkerPoolFactory = async ({ module, memory, ctrl: ctrlPtr, area, areaWords, workers: n, fns }) => {
  const ctrl = new Int32Array(memory.buffer, ctrlPtr, CTRL.words);
  ctrl.fill(0);
  let round = 0;
  const ws: Worker[] = [];
  let lastError = '';
  await Promise.all(
    Array.from(
      { length: n },
      (_, j) =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(new URL('./worker.mjs', import.meta.url), {
            workerData: { module, memory, ctrl: ctrlPtr, ctrlWords: CTRL, area, areaWords, t: j + 1, fns: [...fns] },
            execArgv: [],
          });
          ws.push(w);
          w.once('message', () => {
            w.on('message', (m) => {
              lastError = String(m);
            });
            w.unref();
            resolve();
          });
          w.once('error', reject);
        }),
    ),
  );
  const pool: WorkerPool = {
    workers: n,
    run(own, takeOver) {
      Atomics.store(ctrl, CTRL.error, 0);
      const r = ++round;
      Atomics.store(ctrl, CTRL.round, r);
      Atomics.notify(ctrl, CTRL.round);
      own();
      for (let t = 1; t <= n; t++) {
        if (Atomics.compareExchange(ctrl, CTRL.claim + t, r - 1, r) === r - 1) {
          takeOver(t);
          continue;
        }
        // the worker has it: wait until it is done
        for (;;) {
          const d = Atomics.load(ctrl, CTRL.done + t);
          if (d >= r) break;
          Atomics.wait(ctrl, CTRL.done + t, d, 10000);
        }
      }
      if (Atomics.load(ctrl, CTRL.error) !== 0)
        throw new Error(`hgq engine: worker ${Atomics.load(ctrl, CTRL.error)} failed: ${lastError}`);
    },
    dispose() {
      Atomics.store(ctrl, CTRL.stop, 1);
      Atomics.store(ctrl, CTRL.round, ++round);
      Atomics.notify(ctrl, CTRL.round);
      for (const w of ws) void w.terminate();
    },
  };
  return pool;
};
