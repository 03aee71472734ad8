/**
 * The worker_threads side shared by both engine pools (pool-node.ts for the dense chain, graph-pool-node.ts for
 * the graph path): workers on the engine's shared WebAssembly.Memory, driven through a control block of Int32
 * words in that memory — [0] round counter (workers wait on it), [1] stop flag, [2] workers done this round,
 * [3] index of a failed worker or 0. No message round trips per step.
 */
import { Worker } from 'node:worker_threads';

export interface NodeWorkers {
  /** starts a round while `own` runs on this thread, waits for every worker; throws if one failed */
  round(own: () => void, what: string): void;
  dispose(): void;
}

/** Spawns `n` workers of `url` (worker t = 1..n gets workerData(t)) and waits until each has reported ready. */
export async function startWorkers(url: URL, ctrl: Int32Array, n: number, workerData: (t: number) => object): Promise<NodeWorkers> {
  Atomics.store(ctrl, 0, 0);
  Atomics.store(ctrl, 1, 0);
  const ws: Worker[] = [];
  let lastError = '';
  await Promise.all(Array.from({ length: n }, (_, j) => new Promise<void>((resolve, reject) => {
    const w = new Worker(url, { workerData: workerData(j + 1), execArgv: [] });
    ws.push(w);
    w.once('message', () => { w.on('message', (m) => { lastError = String(m); }); w.unref(); resolve(); });
    w.once('error', reject);
  })));
  return {
    round(own, what) {
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
      if (Atomics.load(ctrl, 3) !== 0) throw new Error(`hgq engine: ${what} ${Atomics.load(ctrl, 3)} failed: ${lastError}`);
    },
    dispose() {
      Atomics.store(ctrl, 1, 1);
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      for (const w of ws) void w.terminate();
    },
  };
}
