/**
 * The per-layer checks every HGQ layer class passes (as HGQ2's LayerTestBase): config round trip, save →
 * load → the same predictions, quantized values equal to src/fixed, gradients equal to finite differences
 * (where the layer is differentiable), and trace + emulate bit-exact. Small shapes keep each layer to a
 * fraction of a second.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { quantize } from '../../src/fixed/quantize.ts';
import { type ConstExport, QLayer, type QuantizerExport } from '../../src/layers/base.ts';
import { type QuantizerScope, withQuantizerConfig } from '../../src/quantizer/config.ts';
import { calibrate } from '../../src/train/calibrate.ts';
import { loadModel, saveModel } from '../../src/train/io.ts';
import { makeRng, type Rng } from './rng.ts';
import { kifAt } from './tf.ts';
import { checkExact, randomizeModel, randomInputs, toTensors } from './trace-models.ts';

export interface LayerCase {
  /** a fresh, unbuilt layer */
  make: () => tf.layers.Layer;
  /** per-sample input shapes, one per input */
  inputs: number[][];
  /** why gradients against finite differences say nothing for this layer (table lookups are piecewise constant) */
  noGradient?: string;
  /** a pass-through layer: no quantizer by default; `traced` is the same layer with its input quantizer on */
  passThrough?: boolean;
  traced?: () => tf.layers.Layer;
  /** batch norm folded into the exported weights: they differ from the raw ones (trace + emulate checks them) */
  foldsBatchNorm?: boolean;
  /** share of pruned activations in the random state (default 0.1) */
  pruneA?: number;
  /** changes to the random state before calibration (e.g. a table's output wide enough for many distinct values) */
  adjust?: (layer: tf.layers.Layer) => void;
}

function layerModel(c: LayerCase, layer: tf.layers.Layer = c.make()): tf.LayersModel {
  const xs = c.inputs.map((s) => tf.input({ shape: s }));
  const y = layer.apply(xs.length === 1 ? xs[0]! : xs) as tf.SymbolicTensor;
  return tf.model({ inputs: xs, outputs: y });
}

function theLayer(m: tf.LayersModel): QLayer {
  const l = m.layers.find((x) => x instanceof QLayer);
  assert.ok(l, 'the model holds the layer under test');
  return l as QLayer;
}

function predict(m: tf.LayersModel, xs: Float32Array[], n: number): Float32Array {
  const ts = toTensors(m, xs, n);
  const y = m.predict(ts.length === 1 ? ts[0]! : ts) as tf.Tensor;
  const out = y.dataSync() as Float32Array;
  tf.dispose([...ts, y]);
  return out;
}

/** A model in a random trained, calibrated state. */
function trainedModel(c: LayerCase, rng: Rng): tf.LayersModel {
  const m = layerModel(c);
  randomizeModel(m, rng);
  const cal = toTensors(m, randomInputs(m, rng, 256, 2), 256);
  calibrate(m, cal.length === 1 ? cal[0]! : cal);
  tf.dispose(cal);
  return m;
}

/** getConfig → fromConfig (through JSON) → getConfig gives the same config. */
export function checkConfigRoundTrip(c: LayerCase): void {
  const layer = c.make();
  const cls = layer.constructor as tf.serialization.SerializableConstructor<tf.layers.Layer>;
  const cfg = JSON.parse(JSON.stringify(layer.getConfig())) as tf.serialization.ConfigDict;
  const again = cls.fromConfig(cls, cfg);
  assert.deepEqual(JSON.parse(JSON.stringify(again.getConfig())), cfg);
}

/** save → load gives a model with the same weights and the same predictions, bit for bit. */
export async function checkSaveLoad(c: LayerCase, seed: number): Promise<void> {
  const rng = makeRng(seed);
  const m = trainedModel(c, rng);
  const xs = randomInputs(m, rng, 64, 4);
  const before = predict(m, xs, 64);
  const dir = mkdtempSync(join(tmpdir(), 'hgq-layer-'));
  try {
    await saveModel(m, join(dir, 'model'));
    const back = await loadModel(join(dir, 'model'));
    assert.equal(theLayer(back).getClassName(), theLayer(m).getClassName());
    const w0 = m.getWeights().map((w) => Array.from(w.dataSync()));
    const w1 = back.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(w1, w0, 'weights (quantizer state included) survive save → load');
    const after = predict(back, xs, 64);
    const diff = before.findIndex((v, j) => !Object.is(v, after[j]));
    assert.equal(diff, -1, `prediction ${diff} differs after save → load: ${before[diff]} vs ${after[diff]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkAgainstFixed(what: string, q: QuantizerExport, raw: ArrayLike<number>, got: ArrayLike<number>): void {
  const per = q.shape.reduce((a, b) => a * b, 1);
  for (let j = 0; j < raw.length; j++) {
    const want = quantize(raw[j]!, kifAt(q, j % per), q.round, q.overflow);
    if (!Object.is(got[j]! + 0, want)) assert.fail(`${what}[${j}]: ${got[j]} but src/fixed quantizes ${raw[j]} to ${want}`);
  }
}

/**
 * The layer's quantized values equal src/fixed's `quantize` with the exported types: its input quantizers
 * (in inference) on random and edge inputs, and its quantized weights. Returns how many quantizers it checked.
 */
export function checkQuantizedValues(c: LayerCase, seed: number): number {
  const rng = makeRng(seed);
  const m = trainedModel(c, rng);
  const layer = theLayer(m);
  const ex = layer.exportQuantized();
  const xs = randomInputs(m, rng, 64, 6);
  let checked = 0;
  ex.inputQuantizers.forEach((q, j) => {
    if (!q) return;
    const x = tf.tensor(xs[j]!, [64, ...c.inputs[j]!]);
    // the layer's view of its input before quantization (table layers widen it to one value per edge)
    const seen = (layer as unknown as { beforeIq(x: tf.Tensor, j: number): tf.Tensor }).beforeIq(x, j);
    const y = layer.iqs[j]!.call(seen, false);
    checkAgainstFixed(`input ${j}`, q, seen.dataSync() as Float32Array, y.dataSync());
    tf.dispose([x, seen, y]);
    checked++;
  });
  const fields = layer as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(ex)) {
    const w = value as ConstExport | null;
    if (!w || typeof w !== 'object' || !('quant' in w) || !('values' in w)) continue;
    const raw = fields[name] as tf.LayerVariable | undefined;
    if (typeof raw?.read !== 'function' || c.foldsBatchNorm) continue; // derived weights: trace + emulate checks them
    checkAgainstFixed(name, w.quant, raw.read().dataSync(), w.values);
    checked++;
  }
  if (c.passThrough) assert.equal(checked, 0, 'a pass-through layer quantizes nothing by default');
  else assert.ok(checked > 0, 'the layer has quantizers to check');
  return checked;
}

/** Quantizers fine enough (16–19 fractional bits, no wrap-around) that the layer is its float function to ~1e-5. */
const FINE: QuantizerScope = {
  weight: { b0: 22, i0: 3 },
  bias: { b0: 22, i0: 3 },
  datalane: { qType: 'kif', i0: 6, f0: 16, overflowMode: 'SAT' },
};

/**
 * Gradients of Σ c·layer(x) with respect to every input (the quantizers' straight-through estimate, in
 * training mode) equal central finite differences of the same function at 8 random elements per input
 * (where it is smooth: see below).
 */
export function checkGradients(c: LayerCase, seed: number): void {
  const rng = makeRng(seed);
  const m = withQuantizerConfig(FINE, () => layerModel(c));
  const B = 4;
  const xs = c.inputs.map((s, j) => tf.randomUniform([B, ...s], -2, 2, 'float32', seed + 10 * j));
  const outShape = m.outputs[0]!.shape.slice(1) as number[];
  const weight = tf.randomUniform([B, ...outShape], -1, 1, 'float32', seed + 1000);
  const loss = (...ins: tf.Tensor[]): tf.Scalar =>
    tf.tidy(
      () => tf.sum(tf.mul(m.apply(ins.length === 1 ? ins[0]! : ins, { training: true }) as tf.Tensor, weight)) as tf.Scalar,
    );
  const grads = tf.grads(loss)(xs);
  const h = 2 ** -5;
  xs.forEach((x, j) => {
    const g = grads[j]!.dataSync();
    const base = x.dataSync() as Float32Array;
    // elements where the function has a kink within ±h (a relu at 0 under the layer's random initial
    // weights, a quantization step) say nothing about the gradient: the one-sided differences disagree
    // there, and such an element is passed over for another
    let checked = 0;
    for (let tries = 0; checked < 8 && tries < 64; tries++) {
      const e = rng.int(0, base.length - 1);
      const at = (d: number): number => {
        const moved = base.slice();
        moved[e]! += d;
        const ins = xs.map((y, k) => (k === j ? tf.tensor(moved, y.shape) : y));
        const v = loss(...ins).dataSync()[0]!;
        tf.dispose(ins[j]);
        return v;
      };
      const [lo, mid, hi] = [at(-h), at(0), at(h)];
      const fd = (hi - lo) / (2 * h);
      const tol = 0.02 + 0.02 * Math.abs(fd);
      if (Math.abs((hi - mid) / h - (mid - lo) / h) > 2 * tol) continue;
      assert.ok(Math.abs(g[e]! - fd) <= tol, `input ${j} element ${e}: gradient ${g[e]} vs finite difference ${fd}`);
      checked++;
    }
    assert.ok(checked >= 4, `input ${j}: only ${checked} of 64 random elements are smooth within ±${h}; the check says nothing`);
  });
  tf.dispose([...xs, weight, ...grads]);
}

/** Random trained state, calibrated; the traced program's emulator equals the model bit for bit. */
export function checkTraceExact(c: LayerCase, seed: number, n = 2000): void {
  const layer = (c.traced ?? c.make)();
  const adjust = c.adjust && (() => c.adjust!(layer));
  checkExact(layerModel(c, layer), makeRng(seed), {}, layer.getClassName(), n, { pruneA: c.pruneA, adjust });
}
