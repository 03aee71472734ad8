/**
 * Running one trial: `hgq train SPEC --out STORE/ID [--resume]` in a child process that dies with its parent
 * (a worker killed by SIGKILL takes its trial with it, so no orphan keeps writing while another worker
 * resumes the trial). The trial's run folder on the store is the source of truth: complete means done, a
 * running folder is resumed from its last saved epoch, so a trial finishes exactly once however often it
 * is started.
 */
import { spawn } from 'node:child_process';
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
 * Runs (or resumes, or just reads) a trial. Resolves with its result; rejects with TrialInputError when the
 * spec or data is bad (exit 2), with Error for anything retryable. A job handed out twice (a worker that
 * missed its lock renewal, a Redis restart) finds the run folder held by the first one's `hgq train`: it
 * waits for that to end and then reads the result back (or resumes what it left), so the queue's retries
 * are kept for real failures.
 */
export async function runTrial(
  trial: Trial,
  store: string,
  opts: { log?: (line: string) => void; signal?: AbortSignal } = {},
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
  opts: { log?: (line: string) => void; signal?: AbortSignal },
): Promise<TrialResult | 'busy'> {
  const dir = trialDir(store, trial.id);
  const state = trialState(dir);
  if (state === 'complete') return { ...completedResult(trial, dir), trained: false };
  mkdirSync(join(store, 'specs'), { recursive: true });
  const specPath = join(store, 'specs', `${trial.id}.json`);
  writeFileAtomic(specPath, JSON.stringify(trial.spec, null, 1) + '\n');
  const args = [HGQ_BIN, 'train', specPath, '--out', dir, '--no-progress', ...(state === 'partial' ? ['--resume'] : [])];
  const t0 = Date.now();
  const { code, stderr } = await runChild(args, opts);
  // complete on the store: this child finished it, or another process did while this one started, in which
  // case the child refused to resume it (exit 2)
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

/** The child gets a stdin pipe it watches (HGQ_EXIT_WITH_PARENT): when this process dies, the pipe closes and the child exits. */
function runChild(
  args: string[],
  opts: { log?: (line: string) => void; signal?: AbortSignal },
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, HGQ_EXIT_WITH_PARENT: '1' },
    });
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => opts.log?.(d.toString().trimEnd()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 20000) stderr = stderr.slice(-10000);
    });
    const abort = () => child.kill('SIGTERM');
    opts.signal?.addEventListener('abort', abort, { once: true });
    child.on('error', reject);
    child.on('close', (code) => {
      opts.signal?.removeEventListener('abort', abort);
      resolvePromise({ code, stderr });
    });
  });
}
