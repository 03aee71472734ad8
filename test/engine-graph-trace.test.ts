// Models trained on the engine's graph path (conv, pooling, batch norms, merges, concatenation) stay bit-exact
// through the export path: calibrate → trace → compileProgram equals model.predict on random inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QBatchNormDense, QDense } from '../src/layers/dense.ts';
import { QConv2D } from '../src/layers/conv.ts';
import { QAveragePooling2D, QMaxPooling2D } from '../src/layers/pooling.ts';
import { QAdd, QMaximum } from '../src/layers/merge.ts';
import { QBatchNormalization } from '../src/layers/batchnorm.ts';
import { QConv1D } from '../src/layers/conv.ts';
import { QConcatenate } from '../src/layers/shape.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { trace } from '../src/trace/index.ts';
import { fitWithEngine } from '../src/engine/fit.ts';
import { describeAny } from '../src/engine/from-tfjs.ts';
import { makeRng } from './util/rng.ts';
import { compareModel, randomInputs } from './util/trace-models.ts';

await initBackend();

function data(seed: number, N: number, inShape: number[], C: number) {
  const rng = makeRng(seed);
  const K = inShape.reduce((a, b) => a * b, 1);
  const xa = Float32Array.from({ length: N * K }, () => (rng.next() * 2 - 1) * 2);
  const ya = new Float32Array(N * C);
  for (let j = 0; j < N; j++)
    ya[j * C + (((xa[j * K]! > 0 ? 1 : 0) + (xa[j * K + K - 1]! + xa[j * K + 3]! > 0 ? 2 : 0)) % C)] = 1;
  return { x: tf.tensor(xa, [N, ...inShape]), y: tf.tensor2d(ya, [N, C]) };
}

const bits = (l: QDense | QConv2D | QConv1D) =>
  Float32Array.from(
    (l.kq.weights.find((v) => v.name === 'b')!.variable as unknown as tf.LayerVariable).read().dataSync() as Float32Array,
  );

async function trainTraceCompare(
  m: tf.LayersModel,
  inShape: number[],
  seed: number,
  watch: QDense | QConv2D | QConv1D,
): Promise<void> {
  m.compile({ optimizer: tf.train.adam(1e-2), loss: (y: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, p) });
  assert.ok(describeAny(m, 'softmax_cross_entropy').graph, 'runs on the graph path');
  const { x, y } = data(seed, 512, inShape, 4);
  // reproducible runs: seeded kernels (tfjs initializers draw unseeded) and one thread (a dynamic schedule
  // changes float32 summation order), so the non-degeneracy check below cannot flake on an unlucky start
  const init = makeRng(seed + 7);
  for (const l of m.layers) {
    for (const w of l.trainableWeights) {
      if (!w.name.endsWith('kernel')) continue;
      const shape = w.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1),
        lim = Math.sqrt(6 / (shape.at(-2)! + shape.at(-1)!));
      w.write(
        tf.tensor(
          Float32Array.from({ length: n }, () => (init.next() * 2 - 1) * lim),
          shape,
        ),
      );
    }
  }
  const w0 = bits(watch);
  try {
    const h = await fitWithEngine(m, x, y, { epochs: 5, batchSize: 64, loss: 'softmax_cross_entropy', engine: { threads: 1 } });
    const loss = h.history['loss']!;
    assert.ok(loss[loss.length - 1]! < loss[0]!, `training makes progress: ${loss.join(', ')}`);
    assert.ok(
      bits(watch).some((v, j) => v !== w0[j]),
      'kernel bit widths trained (the engine state reached the tfjs model)',
    );
    calibrate(m, x, { reset: true });
    const p = trace(m);
    const rng = makeRng(seed + 1);
    for (const [scale, n] of [
      [2, 1500],
      [8, 1500],
    ] as const) {
      const xs = randomInputs(m, rng, n, scale);
      const r = compareModel(m, p, xs, n);
      assert.equal(r.mismatches, 0, `scale ${scale}: ${r.mismatches} of ${r.values} values differ; first: ${r.first}`);
      assert.ok(r.distinct >= 8, `only ${r.distinct} distinct outputs; degenerate model`);
    }
  } finally {
    m.dispose();
    tf.dispose([x, y]);
  }
}

test('engine-trained CNN (conv same → max pool → conv → flatten → batch-norm dense → dense) is bit-exact through trace', async () => {
  const c0 = new QConv2D({
    filters: 4,
    kernelSize: 3,
    padding: 'same',
    activation: 'relu',
    inputShape: [6, 6, 1],
    beta0: 2e-6,
    name: 'gt_c0',
  });
  const m = tf.sequential({
    layers: [
      c0,
      new QMaxPooling2D({ poolSize: 2, beta0: 2e-6, name: 'gt_p0' }),
      new QConv2D({ filters: 4, kernelSize: 2, activation: 'relu', beta0: 2e-6, name: 'gt_c1' }),
      new QFlatten({ name: 'gt_f' }),
      new QBatchNormDense({ units: 8, activation: 'relu', beta0: 2e-6, name: 'gt_bn' }),
      new QDense({ units: 4, beta0: 2e-6, name: 'gt_d' }),
    ],
  });
  await trainTraceCompare(m, [6, 6, 1], 900, c0);
});

test('engine-trained residual model (conv + QAdd skip → average pool → dense) is bit-exact through trace', async () => {
  const x = tf.input({ shape: [6, 6, 2] });
  const conv = new QConv2D({ filters: 2, kernelSize: 3, padding: 'same', activation: 'relu', beta0: 2e-6, name: 'gr_c' });
  const c = conv.apply(x) as tf.SymbolicTensor;
  const s = new QAdd({ beta0: 2e-6, name: 'gr_add' }).apply([x, c]) as tf.SymbolicTensor;
  const p = new QAveragePooling2D({ poolSize: 2, beta0: 2e-6, name: 'gr_p' }).apply(s) as tf.SymbolicTensor;
  const f = new QFlatten({ name: 'gr_f' }).apply(p) as tf.SymbolicTensor;
  const y = new QDense({ units: 4, beta0: 2e-6, name: 'gr_d' }).apply(f) as tf.SymbolicTensor;
  await trainTraceCompare(tf.model({ inputs: x, outputs: y }), [6, 6, 2], 950, conv);
});

test('engine-trained sequence model (conv1d → batch normalization, per-position dense, maximum, concatenate → dense) is bit-exact through trace', async () => {
  const x = tf.input({ shape: [8, 3] });
  const conv = new QConv1D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', beta0: 2e-6, name: 'gs_c' });
  const c = conv.apply(x) as tf.SymbolicTensor;
  const bn = new QBatchNormalization({ beta0: 2e-6, name: 'gs_bn' }).apply(c) as tf.SymbolicTensor;
  const pd = new QDense({ units: 4, activation: 'relu', beta0: 2e-6, name: 'gs_pd' }).apply(x) as tf.SymbolicTensor;
  const mx = new QMaximum({ beta0: 2e-6, name: 'gs_max' }).apply([bn, pd]) as tf.SymbolicTensor;
  const cat = new QConcatenate({ name: 'gs_cat' }).apply([mx, c]) as tf.SymbolicTensor;
  const f = new QFlatten({ name: 'gs_f' }).apply(cat) as tf.SymbolicTensor;
  const y = new QDense({ units: 4, beta0: 2e-6, name: 'gs_d' }).apply(f) as tf.SymbolicTensor;
  await trainTraceCompare(tf.model({ inputs: x, outputs: y }), [8, 3], 990, conv);
});
