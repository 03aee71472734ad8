/**
 * `hgq sweep` end to end: locally with two worker processes, and through a real redis-server with three
 * `hgq worker` processes, one of them killed (SIGKILL) in the middle of a trial and Redis itself restarted
 * (without persistence) half-way. Every trial completes exactly once — each epoch of each trial's history
 * trained once, the killed trial resumed, not restarted — and the merged front equals the local one for the
 * same seeds. Re-running a finished sweep runs nothing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../src/util/random.ts';
import { alive, childrenOf } from './util/proc.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REDIS = '/usr/bin/redis-server';
const EPOCHS = 10;
const dir = mkdtempSync(join(tmpdir(), 'hgq-sweep-'));

/** A learnable 3-class table. */
function writeTable(path: string, n: number): void {
  const rand = mulberry32(11);
  const g = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const lines = ['f0,f1,f2,f3,cls'];
  for (let r = 0; r < n; r++) {
    const z = [g(), g(), g(), g()];
    const s = 1.5 * z[0]! - z[1]! + 0.5 * z[2]!;
    lines.push([...z.map((v) => v.toFixed(4)), s < -0.6 ? 0 : s < 0.6 ? 1 : 2].join(','));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

writeTable(join(dir, 'train.csv'), 400);
writeFileSync(
  join(dir, 'spec.yaml'),
  `data:\n  train: {path: ./train.csv, label: cls}\nmodel:\n  hidden: [8]\ntraining:\n  epochs: ${EPOCHS}\n  batch_size: 16\n  pareto_start: 1\n`,
);
writeFileSync(
  join(dir, 'sweep.yaml'),
  'base: ./spec.yaml\naxes:\n  training.optimizer.lr: [0.003, 0.01]\n  model.hidden[0]: [6, 10]\nseeds: [1, 2]\n',
);

interface Proc {
  p: ChildProcess;
  out: string;
  err: string;
  done: Promise<number | null>;
}
const procs: Proc[] = [];
function hgq(args: string[]): Proc {
  const p = spawn(process.execPath, ['bin/hgq.js', ...args], { cwd: ROOT });
  const r: Proc = { p, out: '', err: '', done: Promise.resolve(null) };
  p.stdout!.on('data', (d) => (r.out += d));
  p.stderr!.on('data', (d) => (r.err += d));
  r.done = new Promise((res) => p.on('close', (code) => res(code)));
  procs.push(r);
  return r;
}
after(() => {
  for (const r of procs) if (r.p.exitCode === null) r.p.kill('SIGKILL');
});

async function until(what: string, ok: () => boolean, seconds: number): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > seconds * 1000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

interface Front {
  checkpoints: { trial: string; epoch: number; ebops: number; val: Record<string, number> }[];
}
const readJson = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const frontKey = (f: Front) => f.checkpoints.map((c) => [c.trial, c.epoch, c.ebops, c.val]);

/** Each trial's history has every epoch exactly once: nothing trained twice, nothing skipped. */
function assertEachEpochOnce(store: string, trials: string[]): void {
  for (const t of trials) {
    const epochs = readFileSync(join(store, t, 'history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { epoch: number }).epoch);
    assert.deepEqual(
      epochs,
      Array.from({ length: EPOCHS }, (_, e) => e),
      `trial ${t}`,
    );
  }
}

let localFront: Front | undefined;

describe('hgq sweep', { concurrency: false }, () => {
  test('locally with 2 worker processes: every trial complete, a merged front, re-running runs nothing', async () => {
    const out = join(dir, 'local');
    const r = hgq(['sweep', join(dir, 'sweep.yaml'), '--out', out, '--workers', '2', '--json', '--no-report']);
    assert.equal(await r.done, 0, r.err);
    const s = JSON.parse(r.out.trim().split('\n').at(-1)!);
    assert.deepEqual([s.trials, s.ran, s.complete, s.failed], [8, 8, 8, 0]);
    const trials = readJson<{ trial: string; status: string }[]>(join(out, 'trials.json'));
    assert.equal(trials.filter((t) => t.status === 'complete').length, 8);
    assertEachEpochOnce(
      join(out, 'trials'),
      trials.map((t) => t.trial),
    );
    localFront = readJson<Front>(join(out, 'front.json'));
    assert.ok(localFront.checkpoints.length >= 1);
    for (let j = 1; j < localFront.checkpoints.length; j++)
      assert.ok(localFront.checkpoints[j]!.ebops >= localFront.checkpoints[j - 1]!.ebops);
    const again = hgq(['sweep', join(dir, 'sweep.yaml'), '--out', out, '--json', '--no-report']);
    assert.equal(await again.done, 0, again.err);
    assert.equal(JSON.parse(again.out.trim().split('\n').at(-1)!).ran, 0);
    const status = hgq(['sweep', 'status', out, '--json']);
    assert.equal(await status.done, 0, status.err);
    assert.deepEqual(JSON.parse(status.out.trim()), { id: s.sweep, total: 8, complete: 8, failed: 0, status: 'complete' });
  });

  const haveRedis = existsSync(REDIS);
  if (!haveRedis && process.env.CI === 'true')
    test('redis-server is installed (CI)', () => assert.fail(`${REDIS} missing: apt-get install redis-server`));
  test('through Redis with 3 workers, one killed mid-trial and Redis restarted: each trial once, the same front', {
    skip: haveRedis ? false : `needs ${REDIS} (apt-get install redis-server)`,
  }, async () => {
    assert.ok(localFront, 'the local sweep ran first');
    const port = await freePort();
    const startRedis = () =>
      spawn(
        REDIS,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--requirepass',
          'pw w'.replace(' ', '-'),
        ],
        { stdio: 'ignore' },
      );
    let redis = startRedis();
    const url = `redis://:pw-w@127.0.0.1:${port}`;
    try {
      await new Promise((r) => setTimeout(r, 500));
      const out = join(dir, 'queued');
      const sweep = hgq(['sweep', join(dir, 'sweep.yaml'), '--out', out, '--redis', url, '--json', '--no-report']);
      const workers = [0, 1, 2].map(() => hgq(['worker', '--redis', url, '--lock-seconds', '4']));
      // kill the first worker that is in the middle of a trial (it has started, and one epoch is written)
      let victim: Proc | undefined;
      let victimTrial = '';
      await until(
        'a worker mid-trial',
        () => {
          for (const w of workers) {
            const m = /trial (t[0-9a-f]{12}) \(sweep [^)]*\): started/.exec(w.err);
            const h = m && join(out, 'trials', m[1]!, 'history.jsonl');
            const done = h && existsSync(h) ? readFileSync(h, 'utf8').trim().split('\n').length : 0;
            if (m && done >= 2 && done <= EPOCHS - 4 && !w.err.includes(`trial ${m[1]}: complete`)) {
              victim = w;
              victimTrial = m[1]!;
              return true;
            }
          }
          return false;
        },
        120,
      );
      const trialProcesses = childrenOf(victim!.p.pid!);
      assert.ok(trialProcesses.length >= 1, 'the worker mid-trial has its trial process');
      victim!.p.kill('SIGKILL');
      // its trial process dies with it (it watches a pipe and an IPC channel from the worker): nothing trains the
      // trial unowned
      await until("the killed worker's trial process gone", () => !trialProcesses.some(alive), 10);
      // another worker picks the trial up once the dead one's lock expires, and resumes it
      await until(
        'the killed trial resumed elsewhere',
        () => workers.some((w) => w !== victim && w.err.includes(`trial ${victimTrial}: complete`)),
        120,
      );
      assert.ok(workers.filter((w) => w !== victim).some((w) => w.err.includes(`trial ${victimTrial} (sweep`)));
      // Redis restarts, losing queue and results; the store keeps what finished and the sweep re-enqueues the rest
      redis.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 1000));
      redis = startRedis();
      assert.equal(await sweep.done, 0, sweep.err);
      const s = JSON.parse(sweep.out.trim().split('\n').at(-1)!);
      assert.deepEqual([s.trials, s.complete, s.failed], [8, 8, 0]);
      const trials = readJson<{ trial: string; status: string }[]>(join(out, 'trials.json')).map((t) => t.trial);
      assert.equal(trials.length, 8);
      assertEachEpochOnce(join(out, 'trials'), trials);
      // trained exactly once across all workers (a re-enqueued finished trial is only read back); a worker logs
      // the completion after its child exits, which can be a moment after the sweep saw the run folder complete
      const logs = () => workers.map((w) => w.err).join('\n');
      await until('every completion logged', () => trials.every((t) => logs().includes(`trial ${t}: complete`)), 30);
      const allLogs = logs();
      for (const t of trials)
        assert.equal(allLogs.split(`trial ${t}: complete`).length - 1, 1, `trial ${t} trained to completion once`);
      assert.deepEqual(frontKey(readJson<Front>(join(out, 'front.json'))), frontKey(localFront));
      assert.ok(!allLogs.includes('pw-w'), 'the password is never printed');
    } finally {
      for (const w of procs) if (w.p.exitCode === null) w.p.kill('SIGTERM');
      redis.kill('SIGKILL');
      procs.forEach((w, j) => writeFileSync(join(dir, `process-${j}.log`), `${w.p.spawnargs.join(' ')}\n${w.err}`)); // for a failure's post-mortem
    }
  });
});
