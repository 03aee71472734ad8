/**
 * Jobs of one search shared between this thread and helper threads (worker.mjs), synchronously: every
 * thread claims the next job from an atomic counter, this thread blocks (Atomics.wait) until the helpers
 * have posted their outcomes. The callers fold the outcomes in job order, so the result is the same as
 * running the jobs one after another. A helper that fails to start or throws leaves its jobs to be rerun
 * here.
 */
import { availableParallelism, loadavg } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';

/** Tunables (mutable so that tests can force the parallel path on small matrices). */
export const PARALLEL = {
  /** Searches over matrices with at least this many entries use helper threads. */
  minEntries: 32768,
  /** How long to wait for a helper before running its jobs here. */
  timeoutMs: 10 * 60 * 1000,
  /** Tests: this thread starts claiming jobs only once a helper has claimed one (or after a minute). */
  helperFirst: false,
  /** Jobs run on helper threads so far (for tests and benchmarks). */
  remoteJobs: 0,
};

/**
 * Default number of threads for a search (this one included): the cores idle right now, at least 1. A helper
 * costs about 1.5 s of CPU to start (it compiles the sources through tsx and warms its own JIT), and on a
 * busy machine it does not pay: on this shared 2-core machine at load average 6–11, tracing the MNIST demo's
 * largest checkpoint took 43 s with a helper against 26–28 s without. Idle cores are the core count less the
 * one-minute load average (what other processes keep running), rounded; the result is the same with any
 * number of threads, only the time differs.
 */
export function defaultThreads(): number {
  const cores = availableParallelism();
  return Math.max(1, Math.min(cores, Math.round(cores - loadavg()[0]!)));
}

/**
 * Outcomes of jobs 0..n−1: `run(i)` here, and `task` (a structured-cloneable description from which a
 * helper's runClaimedJobs rebuilds the jobs) on `threads − 1` helpers. Helper outcomes come back as `W`.
 */
export function runShared<L, W>(
  n: number,
  threads: number,
  task: unknown,
  run: (i: number) => L,
): Array<{ local: L } | { remote: W }> {
  const out: Array<{ local: L } | { remote: W } | undefined> = new Array(n);
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const helpers = Array.from({ length: Math.min(threads - 1, n - 1) }, () => startHelper(task, counter));
  if (PARALLEL.helperFirst && helpers.some((h) => h)) Atomics.wait(counter, 0, 0, 60_000);
  for (let i = Atomics.add(counter, 0, 1); i < n; i = Atomics.add(counter, 0, 1)) out[i] = { local: run(i) };
  for (const h of helpers) {
    for (const [i, o] of awaitHelper(h) as Array<[number, W]>) {
      out[i] = { remote: o };
      PARALLEL.remoteJobs++;
    }
  }
  // jobs a failed helper had claimed
  for (let i = 0; i < n; i++) if (out[i] === undefined) out[i] = { local: run(i) };
  return out as Array<{ local: L } | { remote: W }>;
}

interface Helper {
  worker: Worker;
  done: Int32Array;
  port: MessagePort;
}

type MessagePort = import('node:worker_threads').MessagePort;

function startHelper(task: unknown, counter: Int32Array): Helper | null {
  try {
    const done = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL('./worker.mjs', import.meta.url), {
      workerData: { task, counter, done, port: port2 },
      transferList: [port2],
      execArgv: [],
    });
    worker.unref();
    return { worker, done, port: port1 };
  } catch {
    return null;
  }
}

/** The helper's outcomes as [job, outcome] pairs, or none if it failed. */
function awaitHelper(h: Helper | null): unknown[] {
  if (!h) return [];
  const deadline = Date.now() + PARALLEL.timeoutMs;
  while (Atomics.load(h.done, 0) === 0 && Date.now() < deadline) Atomics.wait(h.done, 0, 0, 1000);
  const msg = receiveMessageOnPort(h.port)?.message as { outcomes?: unknown[]; error?: string } | undefined;
  h.port.close();
  if (!msg?.outcomes) void h.worker.terminate();
  return msg?.outcomes ?? [];
}
