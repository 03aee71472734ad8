/**
 * Running one trial: `hgq train SPEC --out STORE/ID [--resume]` in a trial process that dies with its parent
 * (a worker killed by SIGKILL takes its trial with it, so no orphan keeps writing while another worker
 * resumes the trial). Trial processes persist: each slot (a local lane, a queue worker's concurrency slot)
 * keeps one `hgq trial-process` child that trains its trials one after another in-process, so a trial does not
 * pay the process start-up again (docs/sweep.md, Throughput). The trial's run folder on the store is the
 * source of truth: complete means done, a running folder is resumed from its last saved epoch, so a trial
 * finishes exactly once however often it is started.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT_BUSY, liveLockHolder, readMarker, writeFileAtomic } from '../../util/fs.ts';
import type { Trial } from './plan.ts';

export type TrialStatus = 'complete' | 'failed';

/** What a sweep records for a finished trial. */
export interface TrialResult {
  trial: string;
  status: TrialStatus;
  /** the trial's run folder */
  dir: string;
  overrides: Record<string, unknown>;
  seed: number;
  /** the run's front.json checkpoints (complete trials) */
  checkpoints?: FrontCheckpoint[];
  metric?: string;
  task?: string;
  /** the failure, for failed trials */
  error?: string;
  seconds?: number;
  host?: string;
  /** false when the trial was found complete on the store and not trained again */
  trained?: boolean;
}

export interface FrontCheckpoint {
  path: string;
  epoch: number;
  ebops: number;
  val?: Record<string, number>;
  test?: Record<string, number>;
  [k: string]: unknown;
}

/** A trial that fails on its own input (exit 2): retrying cannot help. */
export class TrialInputError extends Error {
  override name = 'TrialInputError';
}

/** The `hgq` command this process runs from (trials and local workers are started with it). */
export const HGQ_BIN = fileURLToPath(new URL('../../../bin/hgq.js', import.meta.url));

export function trialDir(store: string, id: string): string {
  return join(store, id);
}

/** 'complete' | 'partial' (started, resumable) | 'absent'. */
export function trialState(dir: string): 'complete' | 'partial' | 'absent' {
  if (!existsSync(dir)) return 'absent';
  const m = readMarker(dir);
  if (m && m.kind === 'run' && m['status'] === 'complete' && existsSync(join(dir, 'front.json'))) return 'complete';
  return 'partial';
}

/** The result of a complete trial, read from its run folder. */
export function completedResult(trial: Pick<Trial, 'id' | 'overrides' | 'seed'>, dir: string): TrialResult {
  const front = JSON.parse(readFileSync(join(dir, 'front.json'), 'utf8')) as {
    checkpoints?: FrontCheckpoint[];
    metric?: string;
    task?: string;
  };
  return {
    trial: trial.id,
    status: 'complete',
    dir,
    overrides: trial.overrides,
    seed: trial.seed,
    checkpoints: front.checkpoints ?? [],
    metric: front.metric,
    task: front.task,
  };
}

/** How often a trial whose run folder another process holds looks again, and how many times at most. */
const BUSY_POLL_MS = 2000;
const BUSY_ROUNDS = 1000;

/**
 * Runs (or resumes, or just reads) a trial, on one of `processes` (the caller's slots) or on a trial process
 * of its own. Resolves with its result; rejects with TrialInputError when the spec or data is bad (exit 2),
 * with Error for anything retryable. A job handed out twice (a worker that missed its lock renewal, a Redis
 * restart) finds the run folder held by the first one's `hgq train`: it waits for that to end and then
 * reads the result back (or resumes what it left), so the queue's retries are kept for real failures.
 */
export async function runTrial(
  trial: Trial,
  store: string,
  opts: { log?: (line: string) => void; signal?: AbortSignal; processes?: TrialProcesses } = {},
): Promise<TrialResult> {
  const dir = trialDir(store, trial.id);
  for (let round = 0; round < BUSY_ROUNDS; round++) {
    const r = await attemptTrial(trial, store, opts);
    if (r !== 'busy') return r;
    await waitWhileHeld(dir, opts.signal);
  }
  throw new Error(`trial ${trial.id}: its run folder stayed held by another process`);
}

/** One attempt: the trial's result, or 'busy' when another live process holds (or just created) its run folder. */
async function attemptTrial(
  trial: Trial,
  store: string,
  opts: { log?: (line: string) => void; signal?: AbortSignal; processes?: TrialProcesses },
): Promise<TrialResult | 'busy'> {
  const dir = trialDir(store, trial.id);
  const state = trialState(dir);
  if (state === 'complete') return { ...completedResult(trial, dir), trained: false };
  mkdirSync(join(store, 'specs'), { recursive: true });
  const specPath = join(store, 'specs', `${trial.id}.json`);
  writeFileAtomic(specPath, JSON.stringify(trial.spec, null, 1) + '\n');
  const args = ['train', specPath, '--out', dir, '--no-progress', ...(state === 'partial' ? ['--resume'] : [])];
  const t0 = Date.now();
  const processes = opts.processes ?? new TrialProcesses();
  let answer: TrialAnswer;
  try {
    answer = await processes.train(args, opts);
  } finally {
    if (!opts.processes) processes.close();
  }
  const { code, stderr } = answer;
  // complete on the store: this child finished it, or another worker did while this one started (a job
  // redelivered around a stall or a Redis restart), in which case the child refused to resume it (exit 2)
  if (trialState(dir) === 'complete')
    return { ...completedResult(trial, dir), seconds: (Date.now() - t0) / 1000, trained: code === 0 };
  // held by another live process (exit 75), or started by one while this child started
  if (code === EXIT_BUSY || (code === 2 && state === 'absent' && trialState(dir) !== 'absent')) return 'busy';
  const tail = stderr.trim().split('\n').slice(-4).join(' | ');
  if (code === 2) throw new TrialInputError(tail || 'hgq train exited 2 (bad input)');
  throw new Error(`hgq train exited ${code}${tail ? `: ${tail}` : ''}`);
}

/** Resolves once no live process holds the run folder `dir` (rejects when `signal` aborts). */
async function waitWhileHeld(dir: string, signal?: AbortSignal): Promise<void> {
  do {
    if (signal?.aborted) throw new Error(`${dir}: aborted while waiting for another process to release it`);
    await new Promise((r) => setTimeout(r, BUSY_POLL_MS));
  } while (liveLockHolder(dir) !== null);
}

/** What a trial process answers for one `hgq train`: its exit code (null: killed) and the tail of its stderr. */
export interface TrialAnswer {
  code: number | null;
  stderr: string;
}

/** What a trial process is sent: the arguments of one `hgq train` (src/cli/worker.ts serves them). */
export interface TrialRequest {
  train: string[];
}

/** Keep the end of a process's stderr: the error is there. */
export function stderrTail(s: string): string {
  return s.length > 20000 ? s.slice(-10000) : s;
}

/**
 * Persistent trial processes: `hgq trial-process` children, each training one trial at a time in-process, kept
 * between trials (idle ones are reused) so that each trial does not start Node, the TypeScript loader, tfjs
 * and the wasm modules again (~2.4 s of CPU per trial, most of a short trial's second core). Each child
 * gets a stdin pipe it watches (HGQ_EXIT_WITH_PARENT) and an IPC channel: when this process dies, either
 * closes and the child exits, mid-trial too. A child that dies or is aborted is dropped; the next trial
 * starts a new one. `close()` ends them all (call it when the slots are done, or this process stays alive).
 */
export class TrialProcesses {
  private readonly idle: ChildProcess[] = [];
  private readonly live = new Set<ChildProcess>();

  /** Runs `hgq ARGS` (a train command) on an idle trial process or a new one. */
  train(args: string[], opts: { log?: (line: string) => void; signal?: AbortSignal } = {}): Promise<TrialAnswer> {
    const child = this.idle.pop() ?? this.start();
    return new Promise((resolvePromise, reject) => {
      let piped = ''; // the child's stderr as it arrives: what a child that dies without answering said last
      const onErr = (d: Buffer) => (piped = stderrTail(piped + d.toString()));
      const onOut = (d: Buffer) => opts.log?.(d.toString().trimEnd());
      // SIGKILL: training does not return to the event loop between epochs, where a SIGTERM handler would run;
      // the run folder stays resumable as after any killed worker
      const abort = () => child.kill('SIGKILL');
      const done = () => {
        child.stderr!.off('data', onErr);
        child.stdout!.off('data', onOut);
        child.off('message', onAnswer);
        child.off('exit', onExit);
        child.off('error', onError);
        opts.signal?.removeEventListener('abort', abort);
      };
      const onAnswer = (m: TrialAnswer & { retire?: boolean }) => {
        done();
        if (m.retire) this.drop(child);
        else this.idle.push(child);
        resolvePromise({ code: m.code, stderr: m.stderr });
      };
      const onExit = (code: number | null) => {
        done();
        this.drop(child);
        resolvePromise({ code, stderr: piped });
      };
      const onError = (e: Error) => {
        done();
        this.drop(child);
        reject(e);
      };
      child.stderr!.on('data', onErr);
      child.stdout!.on('data', onOut);
      child.once('message', onAnswer);
      child.once('exit', onExit);
      child.once('error', onError);
      opts.signal?.addEventListener('abort', abort, { once: true });
      child.send({ train: args } satisfies TrialRequest);
    });
  }

  /** Ends every trial process; a busy one's trial is killed (SIGKILL), as a dying worker's would be. */
  close(): void {
    for (const c of this.live) c.kill(this.idle.includes(c) ? 'SIGTERM' : 'SIGKILL');
    this.live.clear();
    this.idle.length = 0;
  }

  private start(): ChildProcess {
    const child = fork(HGQ_BIN, ['trial-process'], {
      stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, HGQ_EXIT_WITH_PARENT: '1' },
    });
    // an idle child that dies is not handed out again; a failed send or spawn is reported by the trial that used it
    child.on('exit', () => this.drop(child));
    child.on('error', () => this.drop(child));
    this.live.add(child);
    return child;
  }

  private drop(child: ChildProcess): void {
    this.live.delete(child);
    const i = this.idle.indexOf(child);
    if (i >= 0) this.idle.splice(i, 1);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
}
