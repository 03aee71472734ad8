/**
 * Emulator speed on a traced model (issue 4): a 16-64-32-32-5 QDense MLP with random ~8-bit weights (30%
 * pruned to zero width) and 8-bit activations, calibrated, traced with CMVM; the compiled emulator's
 * samples/s against the tfjs model's own inference on the wasm backend, both at batch 32768. Also checks
 * that both give the same outputs. Prints one JSON line: emulator_samples_per_s, tfjs_samples_per_s, ratio.
 */
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import type { QLayer } from '../src/layers/base.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { trace } from '../src/trace/index.ts';
import { mulberry32 } from '../src/util/random.ts';
import { compileProgram } from '../src/ir/emulate.ts';
import { analyzeProgram } from '../src/ir/cost.ts';
import { widestWire } from '../src/trace/check.ts';

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export default async function main(): Promise<void> {
  const backend = await useBackend('wasm');
  const rnd = mulberry32(42);
  const BATCH = 32768;
  const widths = [16, 64, 32, 32, 5];
  const layers = widths
    .slice(1)
    .map((u, j) => new QDense({ units: u, activation: j < 3 ? 'relu' : 'linear', ...(j === 0 ? { inputShape: [16] } : {}) }));
  const model = tf.sequential({ layers });
  // random trained state: weights in ±1 with 7–8 bits (KBI b = 7..8, i = 0), 30% pruned (b = 0); activations with
  // 4 fractional bits (integer bits from calibration). Widths stay where tfjs' float32 inference is exact (≤ 24 bits).
  for (const l of model.layers as QLayer[]) {
    for (const v of l.weights) {
      const name = v.originalName.split('/').pop()!;
      const n = (v.shape as number[]).reduce((a, b) => a * b, 1);
      let f: (() => number) | null = null;
      if (name === 'kernel') f = () => (rnd() - 0.5) * 2;
      else if (name === 'bias') f = () => (rnd() - 0.5) * 2;
      else if (name === 'kq_b') f = () => (rnd() < 0.3 ? 0 : 7 + Math.round(rnd()));
      else if (name === 'kq_i') f = () => 0;
      else if (name === 'iq_f') f = () => 4;
      if (f) v.write(tf.tensor(Array.from({ length: n }, f), v.shape as number[]));
    }
  }
  const xs = new Float32Array(BATCH * 16);
  for (let j = 0; j < xs.length; j++) xs[j] = (rnd() * 2 - 1) * 3;
  const x = tf.tensor2d(xs, [BATCH, 16]);
  calibrate(model, x);

  const t0 = performance.now();
  const program = trace(model);
  const traceMs = performance.now() - t0;
  const emu = compileProgram(program);
  const flat = Float64Array.from(xs);

  // warm up both, then time several rounds each
  let z = emu.run(flat, BATCH);
  let yT = model.predict(x, { batchSize: BATCH }) as tf.Tensor;
  const y = yT.dataSync();
  yT.dispose();
  let mismatches = 0;
  for (let j = 0; j < y.length; j++) if (y[j] !== z[j]) mismatches++;

  const emuT: number[] = [];
  const tfT: number[] = [];
  for (let r = 0; r < 7; r++) {
    let s = performance.now();
    z = emu.run(flat, BATCH);
    emuT.push(performance.now() - s);
    s = performance.now();
    yT = model.predict(x, { batchSize: BATCH }) as tf.Tensor;
    yT.dataSync();
    tfT.push(performance.now() - s);
    yT.dispose();
  }
  x.dispose();
  const emuSps = BATCH / (median(emuT) / 1000);
  const tfSps = BATCH / (median(tfT) / 1000);
  const a = analyzeProgram(program);
  const result = {
    bench: 'emulate',
    model: '16-64-32-32-5 QDense, ~8-bit weights (30% pruned), activations f=4',
    batch: BATCH,
    backend,
    emulator_mode: emu.mode,
    ops: program.ops.length,
    ir_cost: a.totalCost,
    ir_depth: a.depth,
    trace_ms: Math.round(traceMs),
    emulator_ms: Math.round(median(emuT) * 10) / 10,
    tfjs_ms: Math.round(median(tfT) * 10) / 10,
    mismatches,
    widest_wire_bits: widestWire(program),
    emulator_samples_per_s: Math.round(emuSps),
    tfjs_samples_per_s: Math.round(tfSps),
    ratio: Math.round((emuSps / tfSps) * 100) / 100,
  };
  process.stdout.write(
    `emulator ${result.emulator_ms} ms, tfjs (${backend}) ${result.tfjs_ms} ms per ${BATCH} samples; ${mismatches} mismatching values\n`,
  );
  process.stdout.write(JSON.stringify(result) + '\n');
}
