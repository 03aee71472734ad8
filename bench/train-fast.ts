/**
 * Training throughput of the JSC MLP 16-64-32-32-5 with HGQ quantizers and EBOPs at batch 32768 (and of the
 * MNIST MLP 784-128-64-10 at batch 8192 under `mnist`):
 * the wasm engine on 1 and 2 threads, the tfjs-layers model (QDense, tfjs wasm backend) it replaces, and a
 * numpy float32 MLP without quantizers (bench/numpy_mlp.py; null when numpy is absent). The machine is shared,
 * so every round measures all four back to back and the reported figures are medians over rounds (numpy: the faster of
 * default and single-threaded BLAS in each round); `best_round` has each one's fastest round and their ratios. The
 * `*_per_cpu_s` keys divide by the CPU time of all threads instead of wall time: on a loaded machine they
 * compare the implementations' efficiency where wall-clock ratios mostly measure the scheduler.
 * Env: ROUNDS (default 5), STEPS (engine/numpy steps per round, default 8), TFJS_STEPS (default 3), CASES
 * (default 'jsc,mnist').
 */
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import { describeModel } from '../src/engine/from-tfjs.ts';
import { createEngine, type Engine } from '../src/engine/engine.ts';

interface Case {
  sizes: number[];
  batch: number;
}
const CASES: Record<string, Case> = {
  jsc: { sizes: [16, 64, 32, 32, 5], batch: 32768 },
  mnist: { sizes: [784, 128, 64, 10], batch: 8192 },
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function buildModel(sizes: number[]): tf.Sequential {
  const m = tf.sequential();
  for (let l = 1; l < sizes.length; l++) {
    m.add(
      new QDense({
        units: sizes[l]!,
        activation: l + 1 < sizes.length ? 'relu' : 'linear',
        beta0: 1e-6,
        ...(l === 1 ? { inputShape: [sizes[0]!] } : {}),
      }),
    );
  }
  m.compile({ optimizer: tf.train.adam(1e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  return m;
}

interface Rate {
  wall: number;
  cpu: number;
}

/**
 * numpy at its best: BLAS with its default threads and with one thread, the faster of the two (on a busy
 * machine OpenBLAS's spinning threads can make the default several times slower than one thread).
 */
async function numpyRate({ sizes, batch: B }: Case, steps: number): Promise<Rate | null> {
  let best: Rate | null = null;
  for (const threads of [null, '1']) {
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE; // may be set on this machine and slow numpy down
    delete env.OPENBLAS_L2_SIZE;
    if (threads) env.OPENBLAS_NUM_THREADS = env.OMP_NUM_THREADS = env.MKL_NUM_THREADS = threads;
    try {
      const script = fileURLToPath(new URL('./numpy_mlp.py', import.meta.url));
      const { stdout } = await promisify(execFile)(
        'python3',
        [script, '--batch', String(B), '--steps', String(steps), '--sizes', sizes.join(',')],
        { env },
      );
      const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { samples_per_s: number | null; samples_per_cpu_s: number };
      if (r.samples_per_s !== null && (best === null || r.samples_per_s > best.wall))
        best = { wall: r.samples_per_s, cpu: r.samples_per_cpu_s };
    } catch {
      // numpy absent or failing: reported as null
    }
  }
  return best;
}

const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

function engineRate(e: Engine, x0: Float32Array, y0: Float32Array, B: number, steps: number): Rate {
  // the batch lives in the engine's memory (as tfjs and numpy hold theirs), so no per-step copy is timed
  const { x, y } = e.batchBuffers(B);
  x.set(x0);
  y.set(y0);
  e.step(x, y);
  const ts: number[] = [];
  const c0 = cpuSeconds();
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    e.step(x, y);
    ts.push(performance.now() - t0);
  }
  return { wall: B / (median(ts) / 1000), cpu: (B * steps) / (cpuSeconds() - c0) };
}

async function tfjsRate(model: tf.LayersModel, xt: tf.Tensor, yt: tf.Tensor, steps: number): Promise<Rate> {
  const B = xt.shape[0]!;
  await model.trainOnBatch(xt, yt);
  const ts: number[] = [];
  const c0 = cpuSeconds();
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await model.trainOnBatch(xt, yt);
    ts.push(performance.now() - t0);
  }
  return { wall: B / (median(ts) / 1000), cpu: (B * steps) / (cpuSeconds() - c0) };
}

export default async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const names = (process.env.CASES ?? 'jsc,mnist').split(',');
  for (const n of names)
    if (!(n in CASES)) throw new Error(`train-fast: unknown case ${n}; known: ${Object.keys(CASES).join(', ')}`);
  const out: Record<string, unknown> = {};
  for (const n of names) {
    process.stderr.write(`${n} ${CASES[n]!.sizes.join('-')} at batch ${CASES[n]!.batch}\n`);
    const r = await runCase(CASES[n]!, backend);
    // the JSC figures stay at the top level, where earlier runs of this bench reported them
    if (n === 'jsc') Object.assign(out, r);
    else out[n] = r;
  }
  console.log(JSON.stringify(out));
}

async function runCase(c: Case, backend: string): Promise<Record<string, unknown>> {
  const { sizes, batch: B } = c;
  const rounds = Number(process.env.ROUNDS ?? 5),
    steps = Number(process.env.STEPS ?? 8),
    tfSteps = Number(process.env.TFJS_STEPS ?? 3);
  let s = 12345;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const x = Float32Array.from({ length: B * sizes[0]! }, () => rnd() * 4 - 2);
  const C = sizes.at(-1)!;
  const y = new Float32Array(B * C);
  for (let b = 0; b < B; b++) y[b * C + Math.floor(rnd() * C)] = 1;
  const xt = tf.tensor2d(x, [B, sizes[0]!]),
    yt = tf.tensor2d(y, [B, C]);
  const model = buildModel(sizes);
  model.predict(xt.slice(0, 1));
  const { desc } = describeModel(model, 'softmax_cross_entropy');
  const e1 = await createEngine(desc, { threads: 1 });
  const e2 = await createEngine(desc, { threads: 2 });
  const per: Array<Record<string, number | null>> = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const w1 = engineRate(e1, x, y, B, steps);
      const w2 = engineRate(e2, x, y, B, steps);
      const np = await numpyRate(c, steps);
      const tj = await tfjsRate(model, xt, yt, tfSteps);
      per.push({
        w1: w1.wall,
        w2: w2.wall,
        np: np?.wall ?? null,
        tj: tj.wall,
        r_tfjs: w2.wall / tj.wall,
        r_np2: np ? w2.wall / np.wall : null,
        r_np1: np ? w1.wall / np.wall : null,
        r_21: w2.wall / w1.wall,
        c1: w1.cpu,
        c2: w2.cpu,
        cnp: np?.cpu ?? null,
        ctj: tj.cpu,
      });
      process.stderr.write(
        `round ${r + 1}: wasm1 ${Math.round(w1.wall)}/s, wasm2 ${Math.round(w2.wall)}/s, numpy ${np === null ? 'n/a' : Math.round(np.wall)}/s, tfjs ${Math.round(tj.wall)}/s` +
          ` (per CPU-second: ${Math.round(w1.cpu)}, ${Math.round(w2.cpu)}, ${np === null ? 'n/a' : Math.round(np.cpu)}, ${Math.round(tj.cpu)})\n`,
      );
    }
  } finally {
    e1.dispose();
    e2.dispose();
    tf.dispose([xt, yt]);
    model.dispose();
  }
  const med = (k: string) => {
    const v = per.map((p) => p[k]).filter((q): q is number => typeof q === 'number');
    return v.length ? median(v) : null;
  };
  const best = (k: string) => {
    const v = per.map((p) => p[k]).filter((q): q is number => typeof q === 'number');
    return v.length ? Math.max(...v) : null;
  };
  const ratioOfBest = (a: string, b: string) => {
    const x = best(a),
      y = best(b);
    return x !== null && y !== null ? x / y : null;
  };
  const round = (v: number | null, d = 0) => (v === null ? null : Number(v.toFixed(d)));
  return {
    batch: B,
    model: sizes.join('-'),
    rounds,
    wasm1_samples_per_s: round(med('w1')),
    wasm2_samples_per_s: round(med('w2')),
    tfjs_samples_per_s: round(med('tj')),
    numpy_samples_per_s: round(med('np')),
    ratio: round(med('r_tfjs'), 2),
    wasm2_over_numpy: round(med('r_np2'), 2),
    wasm1_over_numpy: round(med('r_np1'), 2),
    wasm1_samples_per_cpu_s: round(med('c1')),
    wasm2_samples_per_cpu_s: round(med('c2')),
    tfjs_samples_per_cpu_s: round(med('ctj')),
    numpy_samples_per_cpu_s: round(med('cnp')),
    tfjs_model: `QDense HGQ quantizers + EBOPs (tfjs ${backend} backend)`,
    numpy_model: 'float32, no quantizers',
    // each implementation's fastest round (what it does when the shared host leaves it alone), and their ratios
    best_round: {
      wasm1: round(best('w1')),
      wasm2: round(best('w2')),
      tfjs: round(best('tj')),
      numpy: round(best('np')),
      ratio: round(ratioOfBest('w2', 'tj'), 2),
      wasm2_over_numpy: round(ratioOfBest('w2', 'np'), 2),
      wasm1_over_numpy: round(ratioOfBest('w1', 'np'), 2),
    },
    // two threads over one (the threads' scaling)
    wasm2_over_wasm1: round(med('r_21'), 2),
    relaxed_simd: e1.relaxed,
  };
}
