/**
 * `hgq sweep`: runs every trial of a sweep file, on this machine (N local worker processes) or through a
 * Redis queue served by `hgq worker` anywhere (docs/sweep.md), and keeps the sweep folder up to date:
 * trials.json, the merged front.json, and the report. Re-running on the same folder continues: trials whose
 * run folders are complete are not run again.
 */
import { fork } from 'node:child_process';
import type { SweepPlan, Trial } from './plan.ts';
import { openSweepDir, writeSweepFiles, type SweepFront } from './results.ts';
import {
  completedResult,
  HGQ_BIN,
  runTrial,
  TrialInputError,
  trialDir,
  TrialProcesses,
  trialState,
  type TrialResult,
} from './trial.ts';

export interface SweepOptions {
  out: string;
  /** local worker processes (default 1 without Redis, 0 with) */
  workers?: number;
  redis?: string;
  /** seconds between progress polls against Redis (default 1) */
  pollSeconds?: number;
  /** queue lock for local workers started with --redis (default 30 s) */
  lockSeconds?: number;
  log?: (line: string) => void;
}

export interface SweepOutcome {
  results: TrialResult[];
  front: SweepFront;
  /** trials this call ran (not those found complete) */
  ran: number;
}

/** Runs the sweep to the end; resolves when every trial is complete or failed. */
export async function runSweep(plan: SweepPlan, o: SweepOptions): Promise<SweepOutcome> {
  openSweepDir(o.out);
  return o.redis ? runWithRedis(plan, o.redis, o) : runLocally(plan, o);
}

function progress(plan: SweepPlan, results: Map<string, TrialResult>): string {
  const done = [...results.values()];
  const failed = done.filter((r) => r.status === 'failed').length;
  return `sweep ${plan.id}: ${done.length - failed}/${plan.trials.length} complete${failed ? `, ${failed} failed` : ''}`;
}

function ordered(plan: SweepPlan, results: Map<string, TrialResult>): TrialResult[] {
  return plan.trials.map((t) => results.get(t.id)).filter((r): r is TrialResult => r !== undefined);
}

/** Complete trials already on the store count as done. */
function alreadyDone(plan: SweepPlan): Map<string, TrialResult> {
  const done = new Map<string, TrialResult>();
  for (const t of plan.trials) {
    const dir = trialDir(plan.store, t.id);
    if (trialState(dir) === 'complete') done.set(t.id, completedResult(t, dir));
  }
  return done;
}

async function runLocally(plan: SweepPlan, o: SweepOptions): Promise<SweepOutcome> {
  const log = o.log ?? (() => {});
  const results = alreadyDone(plan);
  const todo = plan.trials.filter((t) => !results.has(t.id));
  writeSweepFiles(o.out, plan, ordered(plan, results), 'running');
  log(
    `${progress(plan, results)}; running ${todo.length} on ${Math.min(o.workers ?? 1, Math.max(1, todo.length))} local worker(s)`,
  );
  let next = 0;
  // each lane trains its trials one after another on its own trial process
  const processes = new TrialProcesses();
  const lane = async (): Promise<void> => {
    while (next < todo.length) {
      const t = todo[next++]!;
      results.set(t.id, await runOne(t, plan, processes));
      writeSweepFiles(o.out, plan, ordered(plan, results), 'running');
      log(progress(plan, results));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, o.workers ?? 1) }, lane));
  } finally {
    processes.close();
  }
  const all = ordered(plan, results);
  return { results: all, front: writeSweepFiles(o.out, plan, all, 'complete'), ran: todo.length };
}

/** A local trial: retried like a queued one (3 attempts), recorded as failed at once on bad input. */
async function runOne(t: Trial, plan: SweepPlan, processes: TrialProcesses): Promise<TrialResult> {
  let last: Error | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await runTrial(t, plan.store, { processes });
    } catch (e) {
      last = e as Error;
      if (e instanceof TrialInputError) break;
    }
  }
  return {
    trial: t.id,
    status: 'failed',
    dir: trialDir(plan.store, t.id),
    overrides: t.overrides,
    seed: t.seed,
    error: last?.message,
  };
}

async function runWithRedis(plan: SweepPlan, url: string, o: SweepOptions): Promise<SweepOutcome> {
  const { connect, ensureJob, openQueue, readResults, trialJob } = await import('./queue.ts');
  const log = o.log ?? (() => {});
  const conn = connect(url);
  const queue = openQueue(conn);
  const workers = startLocalWorkers(url, o.workers ?? 0, o.lockSeconds);
  try {
    const fromStore = alreadyDone(plan);
    let last = '';
    for (;;) {
      const results = new Map(fromStore);
      for (const [id, r] of await readResults(conn, plan.id))
        if (!results.has(id) && plan.trials.some((t) => t.id === id)) results.set(id, r);
      // the store decides: a trial complete there is done even if Redis lost its result (restart without persistence)
      for (const t of plan.trials) {
        if (results.get(t.id)?.status === 'complete') continue;
        const dir = trialDir(plan.store, t.id);
        if (trialState(dir) === 'complete') results.set(t.id, completedResult(t, dir));
        else if (!results.has(t.id)) await ensureJob(queue, trialJob(plan, t));
      }
      writeSweepFiles(o.out, plan, ordered(plan, results), 'running');
      const line = progress(plan, results);
      if (line !== last) log((last = line));
      if (results.size === plan.trials.length) {
        const all = ordered(plan, results);
        return { results: all, front: writeSweepFiles(o.out, plan, all, 'complete'), ran: plan.trials.length - fromStore.size };
      }
      await new Promise((r) => setTimeout(r, (o.pollSeconds ?? 1) * 1000));
    }
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await queue.close();
    conn.disconnect();
  }
}

/** `--workers N` with `--redis`: N `hgq worker` processes on this machine, for the same queue. */
function startLocalWorkers(url: string, n: number, lockSeconds?: number) {
  return Array.from({ length: n }, () =>
    fork(HGQ_BIN, ['worker', '--redis', url, ...(lockSeconds ? ['--lock-seconds', String(lockSeconds)] : [])], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
}
