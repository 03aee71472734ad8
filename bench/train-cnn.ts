/**
 * Training throughput of a small MNIST-shaped CNN with HGQ quantizers and EBOPs (28×28×1 → QConv2D 8@3×3 relu →
 * QMaxPooling2D 2 → QConv2D 8@3×3 relu → QMaxPooling2D 2 → QFlatten → QDense 10), batch 256: the wasm engine's
 * graph path (1 and 2 threads) against the tfjs-layers model on the tfjs wasm backend (`ratio`: 2 threads vs tfjs). One run, back to back;
 * CPU seconds per step are reported too (the machine is shared); `tfjs_predict64_ms`: tfjs model.predict on 64 samples. Env: STEPS (engine, default 10), TFJS_STEPS (default 4).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import { QConv2D } from '../src/layers/conv.ts';
import { QMaxPooling2D } from '../src/layers/pooling.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { EngineBinding } from '../src/engine/from-tfjs.ts';

const B = 256;
const cpuSeconds = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

function build(): tf.Sequential {
  const m = tf.sequential({
    layers: [
      new QConv2D({ filters: 8, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1], beta0: 1e-6 }),
      new QMaxPooling2D({ poolSize: 2, beta0: 1e-6 }),
      new QConv2D({ filters: 8, kernelSize: 3, activation: 'relu', beta0: 1e-6 }),
      new QMaxPooling2D({ poolSize: 2, beta0: 1e-6 }),
      new QFlatten(),
      new QDense({ units: 10, beta0: 1e-6 }),
    ],
  });
  m.compile({ optimizer: tf.train.adam(1e-3), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  return m;
}

export default async function main(): Promise<void> {
  const backend = await initBackend();
  const steps = Number(process.env['STEPS'] ?? 10),
    tfjsSteps = Number(process.env['TFJS_STEPS'] ?? 4);
  const x = Float32Array.from({ length: B * 784 }, (_, j) => ((j * 2654435761) % 1000) / 1000);
  const y = new Float32Array(B * 10);
  for (let b = 0; b < B; b++) y[b * 10 + (b % 10)] = 1;
  const xt = tf.tensor(x, [B, 28, 28, 1]),
    yt = tf.tensor2d(y, [B, 10]);
  const m = build();
  tf.dispose(m.predict(xt));
  const x64 = tf.slice(xt, 0, 64);
  tf.dispose(m.predict(x64));
  const t0p = performance.now();
  (m.predict(x64) as tf.Tensor).dataSync();
  const predictMs = performance.now() - t0p;
  x64.dispose();
  // tfjs path
  await m.trainOnBatch(xt, yt);
  const tt: number[] = [];
  const c0 = cpuSeconds();
  for (let s = 0; s < tfjsSteps; s++) {
    const t0 = performance.now();
    await m.trainOnBatch(xt, yt);
    tt.push(performance.now() - t0);
  }
  const tfjsCpu = (cpuSeconds() - c0) / tfjsSteps;
  // engine, 1 and 2 threads
  const engine = async (threads: number) => {
    const bind = await EngineBinding.create(m, 'softmax_cross_entropy', { threads });
    bind.engine.step(x, y);
    const et: number[] = [];
    const c1 = cpuSeconds();
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      bind.engine.step(x, y);
      et.push(performance.now() - t0);
    }
    const cpu = (cpuSeconds() - c1) / steps;
    bind.dispose();
    return { rate: B / (median(et) / 1000), cpu };
  };
  const e1 = await engine(1),
    e2 = await engine(2);
  const tfjsRate = B / (median(tt) / 1000);
  console.log(
    `tfjs (${backend}): predict 64 in ${predictMs.toFixed(0)} ms, ${tfjsRate.toFixed(0)} samples/s (${(tfjsCpu * 1000).toFixed(0)} ms CPU/step); engine 1 thread: ${e1.rate.toFixed(0)} samples/s (${(e1.cpu * 1000).toFixed(1)} ms CPU/step), 2 threads: ${e2.rate.toFixed(0)} samples/s (${(e2.cpu * 1000).toFixed(1)} ms CPU/step)`,
  );
  console.log(
    JSON.stringify({
      model: 'cnn28',
      batch: B,
      backend,
      tfjs_samples_per_s: Math.round(tfjsRate),
      tfjs_predict64_ms: Math.round(predictMs),
      wasm1_samples_per_s: Math.round(e1.rate),
      wasm2_samples_per_s: Math.round(e2.rate),
      tfjs_cpu_ms_per_step: +(tfjsCpu * 1000).toFixed(1),
      wasm1_cpu_ms_per_step: +(e1.cpu * 1000).toFixed(1),
      wasm2_cpu_ms_per_step: +(e2.cpu * 1000).toFixed(1),
      ratio: +(e2.rate / tfjsRate).toFixed(1),
      ratio1: +(e1.rate / tfjsRate).toFixed(1),
      cpu_ratio1: +(tfjsCpu / e1.cpu).toFixed(1),
    }),
  );
  m.dispose();
  tf.dispose([xt, yt]);
}
