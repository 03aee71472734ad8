// Engine worker (worker_threads): instantiates the kernels on the shared memory and runs its batch slice
// whenever the generation counter ctrl[0] moves. Plain JS so it starts without a TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';

const { module, memory, plan, ctrl: ctrlPtr, t, ctrlWords } = workerData;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const run = inst.exports.run_slice;
const ctrl = new Int32Array(memory.buffer, ctrlPtr, ctrlWords);
parentPort.postMessage('ready');
let gen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, gen);
  gen = Atomics.load(ctrl, 0);
  if (Atomics.load(ctrl, 1) === 1) break;
  try {
    run(plan, t, ctrl[4 + 2 * t], ctrl[5 + 2 * t]);
  } catch (e) {
    Atomics.store(ctrl, 3, t);
    parentPort.postMessage(String(e && e.stack || e));
  }
  Atomics.add(ctrl, 2, 1);
  Atomics.notify(ctrl, 2);
}
