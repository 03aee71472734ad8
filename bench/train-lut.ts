/**
 * Training throughput of HGQ-LUT table layers (QDenseT): the wasm engine's graph path (1 and 2 threads) against
 * the tfjs-layers model on the tfjs backend of initBackend(), same model and data, in interleaved rounds (each round:
 * tfjs steps, engine 1 thread, engine 2 threads), medians of the per-step times. Models:
 *   mnist: 784 → QDenseT(16, tanh, 1 hidden layer of 8) → QDense(10), batch 256 (12 544 edges);
 *   jsc:   16 → QDenseT(32, tanh, relu output) → QDenseT(5), batch 1024 (672 edges);
 *   conv1d: [32, 3] → QConvT1D(4, kernel 3) → flatten → QDense(5), batch 256 (30 positions × 36 edges).
 * Last line: JSON with samples/s and the ratios engine/tfjs. Env: ROUNDS (default 3), STEPS (engine steps per
 * round, default 5), TFJS_STEPS (default 2).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import { QConvT1D, QDenseT } from '../src/layers/table-dense.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { EngineBinding } from '../src/engine/from-tfjs.ts';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

interface Case {
  name: string;
  inputs: number;
  /** per-sample input shape (default [inputs]) */
  inShape?: number[];
  classes: number;
  batch: number;
  layers: () => tf.layers.Layer[];
}

const CASES: Case[] = [
  {
    name: 'mnist',
    inputs: 784,
    classes: 10,
    batch: 256,
    layers: () => [new QDenseT({ nOut: 16, inputShape: [784], beta0: 1e-6 }), new QDense({ units: 10, beta0: 1e-6 })],
  },
  {
    name: 'jsc',
    inputs: 16,
    classes: 5,
    batch: 1024,
    layers: () => [
      new QDenseT({ nOut: 32, inputShape: [16], activation: 'relu', beta0: 1e-6 }),
      new QDenseT({ nOut: 5, beta0: 1e-6 }),
    ],
  },
  {
    name: 'conv1d',
    inputs: 96,
    inShape: [32, 3],
    classes: 5,
    batch: 256,
    layers: () => [
      new QConvT1D({ filters: 4, kernelSize: 3, inputShape: [32, 3], activation: 'relu', beta0: 1e-6 }),
      new QFlatten(),
      new QDense({ units: 5, beta0: 1e-6 }),
    ],
  },
];

async function measure(c: Case, rounds: number, steps: number, tfjsSteps: number) {
  const B = c.batch;
  const x = Float32Array.from({ length: B * c.inputs }, (_, j) => (((j * 2654435761) % 1000) / 1000) * 2 - 1);
  const y = new Float32Array(B * c.classes);
  for (let b = 0; b < B; b++) y[b * c.classes + (b % c.classes)] = 1;
  const xt = tf.tensor(x, [B, ...(c.inShape ?? [c.inputs])]),
    yt = tf.tensor2d(y, [B, c.classes]);
  const m = tf.sequential({ layers: c.layers() });
  m.compile({ optimizer: tf.train.adam(1e-3), loss: (t: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(t, p) });
  tf.dispose(m.predict(xt));
  const e1 = await EngineBinding.create(m, 'softmax_cross_entropy', { threads: 1 });
  const e2 = await EngineBinding.create(m, 'softmax_cross_entropy', { threads: 2 });
  await m.trainOnBatch(xt, yt); // warm-up
  e1.engine.step(x, y);
  e2.engine.step(x, y);
  const tt: number[] = [],
    t1: number[] = [],
    t2: number[] = [];
  const time = async (out: number[], n: number, f: () => unknown) => {
    for (let s = 0; s < n; s++) {
      const t0 = performance.now();
      await f();
      out.push(performance.now() - t0);
    }
  };
  for (let r = 0; r < rounds; r++) {
    await time(tt, tfjsSteps, () => m.trainOnBatch(xt, yt));
    await time(t1, steps, () => e1.engine.step(x, y));
    await time(t2, steps, () => e2.engine.step(x, y));
  }
  e1.dispose();
  e2.dispose();
  tf.dispose([xt, yt]);
  m.dispose();
  const rate = (ms: number[]) => Math.round(B / (median(ms) / 1000));
  const tfjs = rate(tt),
    eng1 = rate(t1),
    eng2 = rate(t2);
  const r = {
    model: c.name,
    batch: B,
    tfjs_samples_s: tfjs,
    engine1_samples_s: eng1,
    engine2_samples_s: eng2,
    ratio1: +(eng1 / tfjs).toFixed(2),
    ratio2: +(eng2 / tfjs).toFixed(2),
  };
  console.log(`${c.name}: tfjs ${tfjs}/s, engine 1 thread ${eng1}/s (×${r.ratio1}), 2 threads ${eng2}/s (×${r.ratio2})`);
  return r;
}

export default async function main(): Promise<void> {
  const backend = await initBackend();
  const rounds = Number(process.env['ROUNDS'] ?? 3),
    steps = Number(process.env['STEPS'] ?? 5),
    tfjsSteps = Number(process.env['TFJS_STEPS'] ?? 2);
  const results = [];
  for (const c of CASES) results.push(await measure(c, rounds, steps, tfjsSteps));
  console.log(JSON.stringify({ bench: 'train-lut', backend, rounds, results }));
}
