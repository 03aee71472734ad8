/**
 * `npm run bench -- sweep`: the same 8-trial sweep (a table MLP, one training thread per trial) with 1 and
 * with 2 local workers, in fresh folders; prints the wall times and their ratio (issue bar: 2 workers ≤ 0.6 ×
 * 1 worker on 2 cores). Options: HGQ_BENCH_EPOCHS (default 6), HGQ_BENCH_ROWS (default 2000).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../src/util/random.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function writeTable(path: string, n: number): void {
  const rand = mulberry32(5);
  const g = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const lines = ['f0,f1,f2,f3,f4,f5,cls'];
  for (let r = 0; r < n; r++) {
    const z = Array.from({ length: 6 }, g);
    const s = 1.5 * z[0]! - z[1]! + 0.5 * z[2]! * z[3]!;
    lines.push([...z.map((v) => v.toFixed(4)), s < -0.6 ? 0 : s < 0.6 ? 1 : 2].join(','));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

function sweepSeconds(sweepFile: string, out: string, workers: number): number {
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    ['bin/hgq.js', 'sweep', sweepFile, '--out', out, '--workers', String(workers), '--no-report', '--json'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`sweep with ${workers} worker(s) failed: ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

export default function main(): void {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-bench-sweep-'));
  const epochs = Number(process.env.HGQ_BENCH_EPOCHS ?? 6);
  writeTable(join(dir, 'train.csv'), Number(process.env.HGQ_BENCH_ROWS ?? 2000));
  writeFileSync(
    join(dir, 'spec.yaml'),
    `data:\n  train: {path: ./train.csv, label: cls}\nmodel:\n  hidden: [16, 8]\ntraining:\n  epochs: ${epochs}\n  batch_size: 64\n`,
  );
  writeFileSync(
    join(dir, 'sweep.yaml'),
    'base: ./spec.yaml\naxes:\n  training.optimizer.lr: [0.002, 0.005]\n  training.beta.end: [0.0003, 0.001]\nseeds: [1, 2]\nthreads_per_trial: 1\n',
  );
  // alternate the orders so a slow spell of the shared host does not land on one side only
  const one: number[] = [];
  const two: number[] = [];
  for (let round = 0; round < 2; round++) {
    const order = round % 2 === 0 ? [1, 2] : [2, 1];
    for (const w of order) (w === 1 ? one : two).push(sweepSeconds(join(dir, 'sweep.yaml'), join(dir, `out-${round}-${w}`), w));
  }
  const best = (a: number[]) => Math.min(...a);
  const result = {
    trials: 8,
    epochs,
    cores: cpus().length,
    one_worker_s: one,
    two_workers_s: two,
    ratio_best: best(two) / best(one),
    ratio_rounds: two.map((t, j) => t / one[j]!),
  };
  console.log(JSON.stringify(result));
}
