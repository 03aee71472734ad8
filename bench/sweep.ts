/**
 * `npm run bench -- sweep`: the same 8-trial sweep (a table MLP, one training thread per trial) with 1 and
 * with 2 local workers, in fresh folders, alternating which goes first; prints the wall times, their ratio
 * per round and of the medians (issue bar: 2 workers ≤ 0.6 × 1 worker on 2 cores), and the 1-minute load
 * average around each sweep (other processes on the machine skew the ratio). Options: HGQ_BENCH_ROWS
 * (default 100000), HGQ_BENCH_EPOCHS (default 150): trials of ~15–20 s of CPU each, the size where what a
 * sweep costs besides training shows; HGQ_BENCH_ROUNDS (default 2).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
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

/** CPU seconds of this process's reaped descendants (Linux /proc: cutime + cstime at USER_HZ 100), else NaN. */
function childrenCpuSeconds(): number {
  if (!existsSync('/proc/self/stat')) return NaN;
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** Wall seconds of one sweep; its CPU seconds (the sweep and its trial processes) go to `cpu`. */
function sweepSeconds(sweepFile: string, out: string, workers: number, loads: number[], cpu: number[]): number {
  loads.push(loadavg()[0]!);
  const c0 = childrenCpuSeconds();
  const t0 = performance.now();
  const r = spawnSync(
    process.execPath,
    ['bin/hgq.js', 'sweep', sweepFile, '--out', out, '--workers', String(workers), '--no-report', '--json'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`sweep with ${workers} worker(s) failed: ${r.stderr}`);
  const seconds = (performance.now() - t0) / 1000;
  cpu.push(childrenCpuSeconds() - c0);
  loads.push(loadavg()[0]!);
  return seconds;
}

export default function main(): void {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-bench-sweep-'));
  const epochs = Number(process.env.HGQ_BENCH_EPOCHS ?? 150);
  const rows = Number(process.env.HGQ_BENCH_ROWS ?? 100000);
  const rounds = Number(process.env.HGQ_BENCH_ROUNDS ?? 2);
  writeTable(join(dir, 'train.csv'), rows);
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
  const loads: number[] = [];
  const cpuOne: number[] = [];
  const cpuTwo: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [1, 2] : [2, 1];
    for (const w of order)
      (w === 1 ? one : two).push(
        sweepSeconds(join(dir, 'sweep.yaml'), join(dir, `out-${round}-${w}`), w, loads, w === 1 ? cpuOne : cpuTwo),
      );
  }
  const median = (a: number[]) => {
    const s = [...a].sort((x, y) => x - y);
    return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2;
  };
  const r2 = (x: number) => Math.round(x * 100) / 100;
  const result = {
    trials: 8,
    rows,
    epochs,
    cores: cpus().length,
    one_worker_s: one.map(r2),
    two_workers_s: two.map(r2),
    ratio_rounds: two.map((t, j) => r2(t / one[j]!)),
    ratio_median: r2(median(two) / median(one)),
    // CPU of each sweep (all its processes): what 8 trials cost, whatever else runs on the machine
    one_worker_cpu_s: cpuOne.map(r2),
    two_workers_cpu_s: cpuTwo.map(r2),
    load_1min_before_after: loads.map(r2),
  };
  console.log(JSON.stringify(result));
}
