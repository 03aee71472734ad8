// Engine worker (worker_threads, both engine paths): instantiates the kernels on the shared memory and, whenever
// the round counter moves, claims and runs the call list the main thread wrote for it (encoding and control
// block: pool.ts); the sum of the calls' numeric results goes to the area's last word. A list the main thread
// claimed first (this worker was late) is skipped. Plain JS so it starts without a TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';

const { module, memory, ctrl: ctrlPtr, ctrlWords: W, area, areaWords, t, fns: names } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => inst.exports[n]);
const ctrl = new Int32Array(memory.buffer, ctrlPtr, W.words);
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, W.round, seen);
  const r = Atomics.load(ctrl, W.round);
  seen = r;
  if (Atomics.load(ctrl, W.stop) === 1) break;
  // every round claims its list from round r − 1; a failed claim means the main thread runs it
  if (Atomics.compareExchange(ctrl, W.claim + t, r - 1, r) !== r - 1) continue;
  try {
    const a = new Float64Array(memory.buffer, area + t * areaWords * 8, areaWords);
    let p = 1,
      res = 0;
    for (let c = 0, n = a[0]; c < n; c++) {
      const k = a[p + 1];
      const v = fns[a[p]](...a.subarray(p + 2, p + 2 + k));
      if (typeof v === 'number') res += v;
      p += 2 + k;
    }
    a[areaWords - 1] = res;
  } catch (e) {
    Atomics.store(ctrl, W.error, t);
    parentPort.postMessage(String((e && e.stack) || e));
  }
  Atomics.store(ctrl, W.done + t, r);
  Atomics.notify(ctrl, W.done + t);
}
