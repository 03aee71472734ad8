/**
 * The tracer's refusals say what is wrong and what to do (uncalibrated model, unsupported layer or
 * activation, inexact average pooling, unquantized input reaching arithmetic), and `hgq trace` end to end:
 * a saved model directory → program.json that the emulator runs equal to the model; exit 2 on bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import { QAveragePooling1D } from '../src/layers/pooling.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { saveModel } from '../src/train/io.ts';
import { readProgram } from '../src/ir/serialize.ts';
import { trace, TraceError } from '../src/trace/index.ts';
import { runTrace } from '../src/cli/trace.ts';
import { makeRng } from './util/rng.ts';
import { compareModel, randomInputs, randomizeModel, toTensors } from './util/trace-models.ts';
import { hgqInProcess } from './util/cli.ts';

await initBackend();

const HGQ = fileURLToPath(new URL('../bin/hgq.js', import.meta.url));

function mlp(name: string): tf.Sequential {
  return tf.sequential({
    name,
    layers: [
      new QDense({ units: 4, activation: 'relu', inputShape: [6], name: `${name}_d1` }),
      new QDense({ units: 2, name: `${name}_d2` }),
    ],
  });
}

function calibrated(m: tf.LayersModel, seed: number): void {
  const rng = makeRng(seed);
  randomizeModel(m, rng);
  const [x] = toTensors(m, randomInputs(m, rng, 500, 2), 500);
  calibrate(m, x!);
  x!.dispose();
}

test('an uncalibrated model (WRAP ranges at their initial or reset state) is refused, naming the layer and calibrate()', () => {
  const fresh = mlp('fresh');
  assert.throws(
    () => trace(fresh),
    (e: Error) =>
      e instanceof TraceError &&
      /QDense 'fresh_d1': the model is not calibrated/.test(e.message) &&
      /run calibrate\(model, data\)/.test(e.message),
  );
  const m = mlp('reset');
  calibrated(m, 1);
  assert.doesNotThrow(() => trace(m));
  (m.layers[1] as QDense).resetCalibration();
  assert.throws(() => trace(m), /QDense 'reset_d2': quantizer .* is in its reset state .* run calibrate/);
  assert.doesNotThrow(() => trace(m, { allowUncalibrated: true }), 'allowUncalibrated traces the raw state');
});

test('unsupported layers and activations are named with the supported list', () => {
  const m = tf.sequential({
    layers: [new QDense({ units: 3, inputShape: [4], name: 'ok1' }), tf.layers.dense({ units: 2, name: 'plain' })],
  });
  calibrated(m, 2);
  assert.throws(() => trace(m), /unsupported layer Dense 'plain': the tracer supports .*QConv2D.*QDense.*QSoftmax/);
  const a = tf.sequential({
    layers: [new QDense({ units: 3, inputShape: [4], name: 'ok2' }), tf.layers.activation({ activation: 'tanh', name: 'act' })],
  });
  calibrated(a, 3);
  assert.throws(() => trace(a), /Activation 'act': activation 'tanh' is not supported .*QUnaryFunctionLUT/);
});

test('average pooling over a non-power-of-two count is refused (the float quotient is not a fixed-point value)', () => {
  const m = tf.sequential({ layers: [new QAveragePooling1D({ poolSize: 3, inputShape: [6, 2], name: 'avg3' })] });
  calibrated(m, 4);
  assert.throws(() => trace(m), /QAveragePooling1D 'avg3': average over 3 elements is not a division by a power of two/);
});

test('an unquantized model input reaching arithmetic is refused (enableIq: false on the first layer)', () => {
  const m = tf.sequential({
    layers: [new QDense({ units: 3, inputShape: [4], enableIq: false, name: 'noiq' }), new QDense({ units: 2, name: 'd2' })],
  });
  calibrated(m, 5);
  assert.throws(() => trace(m), /QDense 'noiq': reads unquantized model input; .*enableIq/);
});

test('hgq trace: model directory → program.json (emulator == model), --json summary; bad input exits 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-trace-'));
  const m = mlp('cli');
  calibrated(m, 6);
  await saveModel(m, join(dir, 'model'));
  const out = join(dir, 'p.json');
  const s = await runTrace(join(dir, 'model'), { output: out, cmvm: 'da', validate: '500', json: true });
  assert.equal(s.mismatches, 0);
  assert.equal(s.validated_samples, 500);
  assert.ok(s.cost > 0 && s.ops > 0 && s.layers.some((l) => l.name === 'cli_d1'));
  const p = readProgram(out);
  const cmp = compareModel(m, p, randomInputs(m, makeRng(7), 2000, 6), 2000);
  assert.equal(cmp.mismatches, 0, cmp.first);
  // text mode prints a per-layer table with totals
  const t = spawnSync(process.execPath, [HGQ, 'trace', join(dir, 'model'), '-o', out, '--cmvm', 'none'], { encoding: 'utf8' });
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /^layer +ops +cost +depth +EBOPs$/m);
  assert.match(t.stdout, /^total +\d+ +[\d.]+ +\d+ +\d+$/m);
  // bad usage and bad models: exit 2 with a message saying what to do
  const bad = await hgqInProcess(['trace', join(dir, 'model'), '-o', out, '--cmvm', 'fast']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--cmvm "fast" is not one of da/);
  const none = await hgqInProcess(['trace', join(dir, 'nothing'), '-o', out]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /not a model/);
  await saveModel(mlp('raw'), join(dir, 'raw'));
  const raw = await hgqInProcess(['trace', join(dir, 'raw'), '-o', join(dir, 'raw.json')]);
  assert.equal(raw.status, 2);
  assert.match(raw.stderr, /not calibrated.*calibrate/);
  assert.throws(() => readFileSync(join(dir, 'raw.json')), 'nothing written on failure');
  // hgq convert takes the model directory through the tracer's loader, and --validate compares with the model
  const { runConvert } = await import('../src/cli/convert.ts');
  const summary = await runConvert(join(dir, 'model'), join(dir, 'prj'), { format: 'verilog', validate: '300', json: true });
  assert.equal((summary as unknown as { validated_samples: number }).validated_samples, 300);
  assert.equal((summary as unknown as { ebops: number }).ebops, s.ebops, 'summary.json carries the model EBOPs');
  assert.deepEqual(readProgram(join(dir, 'prj', 'program.json')).out, p.out, 'convert traced the same program');
});
