/**
 * Sweeps over many machines: trials are BullMQ jobs on Redis (docs/sweep.md). The queue gives each job to one
 * worker at a time under a lock the worker renews; a worker that dies (SIGKILL, machine gone) stops renewing,
 * the job is found stalled and handed to another worker, which resumes the trial's run folder from its last
 * saved epoch. Job ids are `SWEEP-TRIAL`, so enqueueing the same sweep twice adds nothing.
 *
 * Results live in the Redis hash `hgq:sweep:SWEEP:results` (trial → result JSON) and, durably, in the trial
 * run folders on the shared store: a trial whose folder is complete is done even if Redis lost everything.
 * Nothing from the queue is executed but `hgq train` on a spec checked here (no model modules).
 */
import { hostname } from 'node:os';
import { Ajv } from 'ajv';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { SweepPlan, Trial } from './plan.ts';
import { runTrial, TrialInputError, TrialProcesses, type TrialResult } from './trial.ts';

export const QUEUE_NAME = 'hgq-trials';
const ATTEMPTS = 3;

/** One job: a trial of a sweep, self-contained. */
export interface TrialJob {
  v: 1;
  sweep: string;
  trial: string;
  overrides: Record<string, unknown>;
  seed: number;
  spec: Record<string, unknown>;
  /** absolute path of the shared trial store */
  store: string;
}

const JOB_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'sweep', 'trial', 'overrides', 'seed', 'spec', 'store'],
  properties: {
    v: { const: 1 },
    sweep: { type: 'string', pattern: '^s[0-9a-f]{12}$' },
    trial: { type: 'string', pattern: '^t[0-9a-f]{12}$' },
    overrides: { type: 'object' },
    seed: { type: 'integer', minimum: 0 },
    spec: {
      type: 'object',
      required: ['data', 'model'],
      properties: { model: { type: 'object', not: { required: ['module'] } } },
    },
    store: { type: 'string', pattern: '^/(?!.*(^|/)\\.\\.(/|$)).*$' },
  },
} as const;
const validateJob = new Ajv({ strict: false }).compile(JOB_SCHEMA);

/** A Redis URL that cannot be used: exit 2. */
export class RedisUrlError extends Error {
  override name = 'RedisUrlError';
}

/** Checks `redis://[:password@]host:port[/db]` or `rediss://` (TLS); the password may be given, never printed. */
export function parseRedisUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RedisUrlError(
      `--redis "${redactUrl(url)}" is not a URL; write redis://HOST:PORT (or rediss:// for TLS, redis://:PASSWORD@HOST:PORT with a password)`,
    );
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new RedisUrlError(`--redis: the scheme must be redis:// or rediss:// (TLS), not ${u.protocol}//`);
  if (!u.hostname) throw new RedisUrlError('--redis: the URL names no host');
  return u;
}

/** The URL with its password replaced by ***, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/(rediss?:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

/** A connection as BullMQ needs it (no per-command retry limit: blocking reads wait out Redis restarts). */
export function connect(url: string): Redis {
  parseRedisUrl(url);
  const r = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (n) => Math.min(200 * n, 2000) });
  r.on('error', () => {}); // reconnects on its own; the commands that wait report what fails
  return r;
}

export function resultsKey(sweep: string): string {
  return `hgq:sweep:${sweep}:results`;
}

export function jobId(sweep: string, trial: string): string {
  return `${sweep}-${trial}`;
}

export function trialJob(plan: SweepPlan, t: Trial): TrialJob {
  return { v: 1, sweep: plan.id, trial: t.id, overrides: t.overrides, seed: t.seed, spec: t.spec, store: plan.store };
}

export function openQueue(conn: Redis): Queue<TrialJob> {
  return new Queue<TrialJob>(QUEUE_NAME, { connection: conn });
}

/** Adds the trial's job unless the queue already holds it (same id): a sweep enqueued twice runs each trial once. */
export async function ensureJob(queue: Queue<TrialJob>, data: TrialJob): Promise<void> {
  const id = jobId(data.sweep, data.trial);
  if (await queue.getJob(id)) return;
  await queue.add('trial', data, {
    jobId: id,
    attempts: ATTEMPTS,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: 7 * 86400 },
    removeOnFail: { age: 7 * 86400 },
  });
}

export async function readResults(conn: Redis, sweep: string): Promise<Map<string, TrialResult>> {
  const all = await conn.hgetall(resultsKey(sweep));
  return new Map(Object.entries(all).map(([k, v]) => [k, JSON.parse(v) as TrialResult]));
}

async function recordResult(conn: Redis, sweep: string, r: TrialResult): Promise<void> {
  await conn.hset(resultsKey(sweep), r.trial, JSON.stringify(r));
}

export interface WorkerOptions {
  concurrency?: number;
  /** how long a job stays locked without renewal before another worker may take it over (default 30 s) */
  lockSeconds?: number;
  log?: (line: string) => void;
}

/**
 * A worker: takes trial jobs from the queue and runs them until closed. A job whose payload is not a trial
 * of the spec schema, or whose trial fails on bad input, fails at once and is recorded; other failures are
 * retried (3 attempts) and recorded after the last.
 */
export function startWorker(url: string, o: WorkerOptions = {}): Worker<TrialJob, TrialResult> {
  const conn = connect(url);
  const resultsConn = connect(url);
  const log = o.log ?? (() => {});
  const lockMs = Math.round((o.lockSeconds ?? 30) * 1000);
  const processes = new TrialProcesses(); // one per concurrency slot, reused from trial to trial
  const worker = new Worker<TrialJob, TrialResult>(
    QUEUE_NAME,
    async (job: Job<TrialJob>) => {
      if (!validateJob(job.data)) {
        const why = (validateJob.errors ?? []).map((e) => `${e.instancePath || '(job)'} ${e.message}`).join('; ');
        throw new UnrecoverableError(`job ${job.id} is not a trial of the spec schema (${why}); refused`);
      }
      const d = job.data;
      const trial: Trial = { id: d.trial, overrides: d.overrides, seed: d.seed, spec: d.spec };
      log(`trial ${d.trial} (sweep ${d.sweep}): started on ${hostname()} pid ${process.pid}`);
      try {
        const r = { ...(await runTrial(trial, d.store, { processes })), host: hostname() };
        // logged before recording: during a Redis outage the record waits for the reconnect
        log(`trial ${d.trial}: ${r.trained ? 'complete' : 'already complete on the store'}`);
        await recordResult(resultsConn, d.sweep, r);
        return r;
      } catch (e) {
        if (e instanceof TrialInputError) {
          await recordResult(resultsConn, d.sweep, {
            trial: d.trial,
            status: 'failed',
            dir: '',
            overrides: d.overrides,
            seed: d.seed,
            error: e.message,
            host: hostname(),
          });
          log(`trial ${d.trial}: failed on bad input: ${e.message}`);
          throw new UnrecoverableError(e.message);
        }
        throw e;
      }
    },
    {
      connection: conn,
      concurrency: o.concurrency ?? 1,
      lockDuration: lockMs,
      stalledInterval: Math.max(1000, Math.round(lockMs / 2)),
      maxStalledCount: 20,
    },
  );
  worker.on('failed', (job, err) => {
    if (!job || err instanceof UnrecoverableError || job.attemptsMade < (job.opts.attempts ?? 1)) return;
    const d = job.data;
    void recordResult(resultsConn, d.sweep, {
      trial: d.trial,
      status: 'failed',
      dir: '',
      overrides: d.overrides,
      seed: d.seed,
      error: err.message,
      host: hostname(),
    });
    log(`trial ${d.trial}: failed after ${job.attemptsMade} attempts: ${err.message}`);
  });
  worker.on('error', (e) => log(`worker: ${e.message}`));
  worker.on('closed', () => {
    processes.close();
    conn.disconnect();
    resultsConn.disconnect();
  });
  return worker;
}
