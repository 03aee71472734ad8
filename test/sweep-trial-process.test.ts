/**
 * Persistent trial processes (src/app/sweep/trial.ts TrialProcesses, `hgq trial-process`): one process trains
 * trials one after another, each run folder complete and equal to what a fresh `hgq train` process writes for
 * the same spec; a trial failing on bad input leaves the process serving the next one; a sweep killed by
 * SIGKILL takes its trial processes with it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runTrial, TrialInputError, TrialProcesses, trialState, type TrialResult } from '../src/app/sweep/trial.ts';
import type { Trial } from '../src/app/sweep/plan.ts';
import { mulberry32 } from '../src/util/random.ts';
import { alive, childrenOf } from './util/proc.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hgq-trial-process-'));

function writeTable(path: string, n: number): void {
  const rand = mulberry32(3);
  const lines = ['f0,f1,f2,cls'];
  for (let r = 0; r < n; r++) {
    const z = [rand() * 2 - 1, rand() * 2 - 1, rand() * 2 - 1];
    const s = z[0]! - 0.7 * z[1]! + 0.3 * z[2]!;
    lines.push([...z.map((v) => v.toFixed(4)), s < -0.3 ? 0 : s < 0.3 ? 1 : 2].join(','));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}
writeTable(join(dir, 'train.csv'), 300);

function trial(id: string, seed: number, lr: number, epochs = 5): Trial {
  return {
    id,
    seed,
    overrides: { 'training.optimizer.lr': lr },
    spec: {
      data: { train: { path: join(dir, 'train.csv'), label: 'cls' } },
      model: { hidden: [6] },
      training: { epochs, batch_size: 16, seed, threads: 1, pareto_start: 1, optimizer: { lr } },
    },
  };
}

/**
 * A run folder's content that does not depend on the process: front, history without timings, spec, and each
 * checkpoint's weights and model. tfjs-layers numbers auto-named layers per process (q_dense_QDense1 in a fresh
 * process, q_dense_QDense4 in a second trial), so layer names are renumbered in order of appearance.
 */
function runContent(run: string): Record<string, string> {
  const read = (p: string) => readFileSync(join(run, p), 'utf8');
  const out: Record<string, string> = {
    front: read('front.json'),
    history: read('history.jsonl').replace(/"seconds":[0-9.e-]+/g, '"seconds":0'),
    spec: read('spec.json'),
  };
  for (const c of readdirSync(join(run, 'checkpoints'))) {
    const names = new Map<string, string>();
    out[`${c}/model.json`] = read(join('checkpoints', c, 'model.json')).replace(
      /\b(sequential_|[a-z_]+_Q[A-Za-z]+)(\d+)\b/g,
      (m, prefix: string) => {
        if (!names.has(m)) names.set(m, `${prefix}#${names.size}`);
        return names.get(m)!;
      },
    );
    out[`${c}/weights.bin`] = readFileSync(join(run, 'checkpoints', c, 'weights.bin')).toString('base64');
  }
  return out;
}

describe('trial processes', { concurrency: false }, () => {
  const processes = new TrialProcesses();
  after(() => processes.close());

  test('one process trains trials in a row; each run folder equals a fresh hgq train process for the same spec', async () => {
    const store = join(dir, 'store');
    const trials = [trial('ta', 1, 0.01), trial('tb', 2, 0.005), trial('tc', 1, 0.01)];
    const results: TrialResult[] = [];
    const pids = new Set<number>();
    for (const t of trials) {
      results.push(await runTrial(t, store, { processes }));
      for (const p of childrenOf(process.pid, '\0trial-process')) pids.add(p);
    }
    assert.equal(pids.size, 1, 'the same trial process trained all three');
    for (const [j, r] of results.entries()) {
      assert.equal(r.status, 'complete');
      assert.equal(r.trained, true);
      assert.equal(trialState(r.dir), 'complete');
      assert.ok(r.checkpoints!.length >= 1, `trial ${trials[j]!.id} has a front`);
    }
    // fresh processes, the same specs (the ones the sweep wrote)
    for (const t of trials) {
      const fresh = join(dir, `fresh-${t.id}`);
      const r = spawnSync(
        process.execPath,
        ['bin/hgq.js', 'train', join(store, 'specs', `${t.id}.json`), '--out', fresh, '--no-progress'],
        { cwd: ROOT, encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(runContent(join(store, t.id)), runContent(fresh), `trial ${t.id}`);
    }
    // the same seed and spec in the same process twice gives the same run (nothing carried over between trials)
    const a = runContent(join(store, 'ta'));
    const c = runContent(join(store, 'tc'));
    assert.deepEqual({ ...a, spec: '' }, { ...c, spec: '' });
    assert.notDeepEqual(runContent(join(store, 'tb')).front, a.front);
  });

  test('a trial failing on bad input is an input error; the process then trains the next trial', async () => {
    const store = join(dir, 'store-bad');
    const bad = trial('tbad', 1, 0.01);
    (bad.spec['data'] as { train: { path: string } }).train.path = join(dir, 'missing.csv');
    const before = childrenOf(process.pid, '\0trial-process');
    await assert.rejects(runTrial(bad, store, { processes }), (e: Error) => {
      assert.ok(e instanceof TrialInputError, `${e.name}: ${e.message}`);
      assert.match(e.message, /missing\.csv/);
      return true;
    });
    const r = await runTrial(trial('tgood', 3, 0.01), store, { processes });
    assert.equal(r.status, 'complete');
    assert.deepEqual(childrenOf(process.pid, '\0trial-process'), before, 'the same trial process served both');
  });

  test('a trial process whose trial is aborted is replaced by a new one for the next trial', async () => {
    const store = join(dir, 'store-abort');
    const first = childrenOf(process.pid, '\0trial-process');
    const ac = new AbortController();
    const running = runTrial(trial('tlong', 4, 0.01, 400), store, { processes, signal: ac.signal });
    const t0 = Date.now();
    while (!existsSync(join(store, 'tlong', 'history.jsonl')) && Date.now() - t0 < 60000)
      await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await assert.rejects(running, /exited null/);
    for (const p of first) {
      const t1 = Date.now();
      while (alive(p) && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 50));
      assert.ok(!alive(p), 'the aborted trial process is gone');
    }
    assert.equal(trialState(join(store, 'tlong')), 'partial');
    const r = await runTrial(trial('tnext', 5, 0.01), store, { processes });
    assert.equal(r.status, 'complete');
  });

  test('a local sweep killed by SIGKILL takes its trial processes with it', async () => {
    writeFileSync(
      join(dir, 'spec-long.yaml'),
      `data:\n  train: {path: ./train.csv, label: cls}\nmodel:\n  hidden: [6]\ntraining:\n  epochs: 400\n  batch_size: 16\n`,
    );
    writeFileSync(
      join(dir, 'sweep-long.yaml'),
      'base: ./spec-long.yaml\naxes:\n  training.optimizer.lr: [0.01]\nseeds: [1, 2]\n',
    );
    const out = join(dir, 'sweep-killed');
    const sweep = spawn(
      process.execPath,
      ['bin/hgq.js', 'sweep', join(dir, 'sweep-long.yaml'), '--out', out, '--workers', '2', '--no-report'],
      {
        cwd: ROOT,
        stdio: 'ignore',
      },
    );
    try {
      let children: number[] = [];
      const t0 = Date.now();
      const started = () =>
        existsSync(join(out, 'trials')) &&
        readdirSync(join(out, 'trials')).filter((t) => existsSync(join(out, 'trials', t, 'history.jsonl'))).length === 2;
      while (!(started() && (children = childrenOf(sweep.pid!, '\0trial-process')).length === 2)) {
        assert.ok(Date.now() - t0 < 60000, 'two trials started');
        await new Promise((r) => setTimeout(r, 100));
      }
      sweep.kill('SIGKILL');
      const t1 = Date.now();
      while (children.some(alive) && Date.now() - t1 < 10000) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(children.filter(alive), [], 'no trial process outlives its sweep');
    } finally {
      if (sweep.exitCode === null) sweep.kill('SIGKILL');
    }
  });
});
