/**
 * Helpers for the tracer's bit-exactness tests: random trained state (weights, bit widths including zero
 * widths and negative i/f) on HGQ layers, and the model-vs-emulator comparison.
 *
 * Float32 limit: tfjs computes inference in float32, which is exact only while every accumulation fits the
 * 24-bit significand (|partial sums| / finest step < 2^24). The widths chosen here keep products ≤ ~12 bits
 * and fan-in ≤ 64, so the model's own output is exact and any mismatch is the tracer's.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { compileProgram } from '../../src/ir/emulate.ts';
import type { Program } from '../../src/ir/types.ts';
import { QLayer, type QConf } from '../../src/layers/base.ts';
import type { OverflowMode, RoundMode } from '../../src/fixed/types.ts';
import type { Rng } from './rng.ts';
import { calibrate } from '../../src/train/calibrate.ts';
import { trace, type TraceOptions } from '../../src/trace/index.ts';

export const ROUNDS: RoundMode[] = ['TRN', 'RND', 'RND_CONV', 'TRN_ZERO', 'RND_ZERO', 'RND_MIN_INF', 'RND_INF'];
export const OVERFLOWS: OverflowMode[] = ['WRAP', 'SAT', 'SAT_SYM'];

/** A random activation quantizer config (KIF) with random rounding and overflow modes. */
export function randomAq(rng: Rng, overflow?: OverflowMode): QConf {
  return { roundMode: rng.pick(ROUNDS), overflowMode: overflow ?? rng.pick(OVERFLOWS) };
}

function fill(v: tf.LayerVariable, f: (j: number) => number): void {
  const shape = v.shape as number[];
  const n = shape.reduce((a, b) => a * b, 1);
  v.write(
    tf.tensor(
      Array.from({ length: n }, (_, j) => f(j)),
      shape,
    ),
  );
}

/**
 * Random trained state for every HGQ layer of `model`: weights uniform, bit widths small and random with
 * some zero-width (pruned) weights and activations, negative i and f, random k on non-WRAP activations.
 */
export function randomizeModel(model: tf.LayersModel, rng: Rng, o: { pruneW?: number; pruneA?: number } = {}): void {
  const pruneW = o.pruneW ?? 0.2;
  const pruneA = o.pruneA ?? 0.1;
  for (const l of model.layers) {
    if (!(l instanceof QLayer)) continue;
    for (const v of l.weights) {
      const name = v.originalName.split('/').pop()!;
      const m = /^(iq\d*|oq|kq|bq)_(k|b|i|f)$/.exec(name);
      if (m) {
        const [, q, p] = m;
        const act = q!.startsWith('iq') || q === 'oq';
        if (act) {
          // pruned activations: f ≪ 0 so WRAP calibration (which raises i) cannot revive them
          if (p === 'f') fill(v, () => (rng.chance(pruneA) ? -12 : rng.int(-1, 4)));
          else if (p === 'i') fill(v, () => rng.int(-1, 3));
          else if (p === 'k') fill(v, () => rng.int(0, 1));
          else if (p === 'b') fill(v, () => (rng.chance(pruneA) ? 0 : rng.int(1, 6)));
        } else if (q === 'kq') {
          if (p === 'b') fill(v, () => (rng.chance(pruneW) ? 0 : rng.int(1, 5) + (rng.next() - 0.5) * 0.8));
          else if (p === 'i') fill(v, () => rng.int(-1, 2));
          else if (p === 'f') fill(v, () => rng.int(-1, 5));
        } else {
          if (p === 'b') fill(v, () => rng.int(0, 6));
          else if (p === 'i') fill(v, () => rng.int(-1, 2));
          else if (p === 'f') fill(v, () => rng.int(-1, 5));
        }
        continue;
      }
      if (name === 'kernel') fill(v, () => (rng.next() - 0.5) * 4);
      else if (name === 'bias') fill(v, () => (rng.next() - 0.5) * 2);
      else if (name === 'bn_beta') fill(v, () => (rng.next() - 0.5) * 2);
      else if (name === 'bn_gamma') fill(v, () => 0.5 + rng.next());
      else if (name === 'moving_mean') fill(v, () => (rng.next() - 0.5) * 2);
      else if (name === 'moving_variance') fill(v, () => 0.3 + rng.next() * 2);
    }
  }
}

/** n samples of every model input, uniform in ±scale (float32 values), plus a few exact edge values. */
export function randomInputs(model: tf.LayersModel, rng: Rng, n: number, scale: number): Float32Array[] {
  return model.inputs.map((x) => {
    const per = (x.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
    const a = new Float32Array(n * per);
    for (let j = 0; j < a.length; j++) a[j] = (rng.next() * 2 - 1) * scale;
    // edge values: zeros, exact halves (rounding ties), huge values (saturation / wrap-around)
    const edges = [0, 0.5, -0.5, 0.25, -0.125, 1.5, -2.5, 1000, -1000, 63.75, -64, 3.0625];
    for (let j = 0; j < Math.min(a.length, 64 * per); j++) if (j % 3 === 0) a[j] = edges[(j / 3) % edges.length]!;
    return a;
  });
}

export function toTensors(model: tf.LayersModel, xs: Float32Array[], n: number): tf.Tensor[] {
  return model.inputs.map((x, j) => tf.tensor(xs[j]!, [n, ...(x.shape.slice(1) as number[])]));
}

/** Model inference vs the compiled emulator on the same inputs; returns the number of mismatching values. */
export function compareModel(
  model: tf.LayersModel,
  p: Program,
  xs: Float32Array[],
  n: number,
): { mismatches: number; first: string; values: number; distinct: number } {
  const ts = toTensors(model, xs, n);
  const pred = model.predict(ts.length === 1 ? ts[0]! : ts, { batchSize: n });
  const ys = (Array.isArray(pred) ? pred : [pred]).map((t) => t.dataSync() as Float32Array);
  tf.dispose([...ts, ...(Array.isArray(pred) ? pred : [pred])]);
  const per = model.inputs.map((x) => (x.shape.slice(1) as number[]).reduce((a, b) => a * b, 1));
  const nIn = per.reduce((a, b) => a + b, 0);
  const flat = new Float64Array(n * nIn);
  for (let s = 0; s < n; s++) {
    let off = s * nIn;
    xs.forEach((x, j) => {
      for (let e = 0; e < per[j]!; e++) flat[off + e] = x[s * per[j]! + e]!;
      off += per[j]!;
    });
  }
  const emu = compileProgram(p);
  const z = emu.run(flat, n);
  const outPer = ys.map((y) => y.length / n);
  const nOut = outPer.reduce((a, b) => a + b, 0);
  assert.equal(emu.nOut, nOut, 'program output count equals the model output count');
  let mismatches = 0;
  let first = '';
  const seen = new Set<number>();
  for (let s = 0; s < n; s++) {
    let off = s * nOut;
    ys.forEach((y, j) => {
      for (let e = 0; e < outPer[j]!; e++) {
        const a = y[s * outPer[j]! + e]!;
        const b = z[off + e]!;
        if (seen.size < 1000) seen.add(a);
        if (a !== b) {
          if (!first) first = `sample ${s} output ${j} element ${e}: model ${a}, emulator ${b}`;
          mismatches++;
        }
      }
      off += outPer[j]!;
    });
  }
  return { mismatches, first, values: n * nOut, distinct: seen.size };
}

/** Randomize (then `state.adjust`), calibrate on moderate data, trace, compare on wider data (so WRAP quantizers wrap around). */
export function checkExact(
  model: tf.LayersModel,
  rng: Rng,
  opts: TraceOptions = {},
  what = model.name,
  n = 10_000,
  state: { pruneW?: number; pruneA?: number; adjust?: (model: tf.LayersModel) => void } = {},
): Program {
  randomizeModel(model, rng, state);
  state.adjust?.(model);
  const cal = randomInputs(model, rng, 2000, 2);
  const ct = toTensors(model, cal, 2000);
  calibrate(model, ct.length === 1 ? ct[0]! : ct);
  tf.dispose(ct);
  const p = trace(model, opts);
  const xs = randomInputs(model, rng, n, 6);
  const r = compareModel(model, p, xs, n);
  assert.equal(r.mismatches, 0, `${what}: ${r.mismatches} of ${r.values} values differ; first: ${r.first}`);
  // the comparison is not trivial: the outputs take many different values
  assert.ok(r.distinct >= 8, `${what}: only ${r.distinct} distinct output values; the test model is degenerate`);
  return p;
}
