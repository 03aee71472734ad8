// Engine worker (worker_threads, both engine paths): instantiates the kernels on the shared memory and, whenever
// the round counter ctrl[0] moves, runs the call list the main thread wrote for it (encoding: pool.ts); the sum of
// the calls' numeric results goes to the area's last word. Plain JS so it starts without a TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';

const { module, memory, ctrl: ctrlPtr, area, areaWords, t, fns: names } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => inst.exports[n]);
const ctrl = new Int32Array(memory.buffer, ctrlPtr, 4);
parentPort.postMessage('ready');
let gen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, gen);
  gen = Atomics.load(ctrl, 0);
  if (Atomics.load(ctrl, 1) === 1) break;
  try {
    const a = new Float64Array(memory.buffer, area + t * areaWords * 8, areaWords);
    let p = 1, res = 0;
    for (let c = 0, n = a[0]; c < n; c++) {
      const k = a[p + 1];
      const r = fns[a[p]](...a.subarray(p + 2, p + 2 + k));
      if (typeof r === 'number') res += r;
      p += 2 + k;
    }
    a[areaWords - 1] = res;
  } catch (e) {
    Atomics.store(ctrl, 3, t);
    parentPort.postMessage(String((e && e.stack) || e));
  }
  Atomics.add(ctrl, 2, 1);
  Atomics.notify(ctrl, 2);
}
