// A helper thread of solveCmvm (parallel.ts): claims search jobs from the shared counter, runs them and
// posts their outcomes back; the parent waits on `done`. Plain JS, copied as it is into dist/: in the
// published package it loads the compiled solve.js; in the repository it loads the TypeScript sources
// through tsx, as bin/hgq.js does.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { workerData } from 'node:worker_threads';

/** The solver module: dist's compiled JavaScript when it is there, else the sources through tsx. */
async function loadSolve() {
  const compiled = new URL('./solve.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return import(compiled.href);
  const { register } = await import('tsx/esm/api');
  register();
  return import('./solve.ts');
}

const { task, counter, done, port } = workerData;
let message;
try {
  const { runClaimedJobs } = await loadSolve();
  message = { outcomes: runClaimedJobs(task, counter) };
} catch (e) {
  message = { error: String(e?.stack ?? e) };
}
port.postMessage(message);
Atomics.store(done, 0, 1);
Atomics.notify(done, 0);
