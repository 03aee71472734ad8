// A helper thread of solveCmvm (parallel.ts): claims search jobs from the shared counter, runs them and
// posts their outcomes back; the parent waits on `done`. Plain JS so that it can load the TypeScript
// sources through tsx, as bin/hgq.js does.
import { workerData } from 'node:worker_threads';

const { task, counter, done, port } = workerData;
let message;
try {
  const { register } = await import('tsx/esm/api');
  register();
  const { runClaimedJobs } = await import('./solve.ts');
  message = { outcomes: runClaimedJobs(task, counter) };
} catch (e) {
  message = { error: String(e?.stack ?? e) };
}
port.postMessage(message);
Atomics.store(done, 0, 1);
Atomics.notify(done, 0);
