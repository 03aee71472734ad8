/**
 * The tracer's contract: the emulated program equals the model's own inference bit for bit, for every
 * supported layer type and for whole models, on 10,000 random inputs plus edge values (rounding ties,
 * saturation, wrap-around: inputs far beyond the calibrated ranges), with random trained state (random
 * weights, random bit widths including zero widths and negative i/f, random rounding/overflow modes).
 */
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense, QBatchNormDense } from '../src/layers/dense.ts';
import { QGlobalMaxPooling2D } from '../src/layers/pooling.ts';
import { makeRng } from './util/rng.ts';
import { checkExact, randomAq } from './util/trace-models.ts';

await initBackend();

test('MLP (QDense relu → QDense relu → QDense + output quantizer): emulator == model, CMVM and plain adder trees', () => {
  for (const [seed, cmvm] of [
    [1, 'da'],
    [2, 'none'],
    [3, 'da'],
  ] as const) {
    const rng = makeRng(seed);
    const m = tf.sequential({
      layers: [
        new QDense({ units: 12, activation: 'relu', inputShape: [16], iqConf: randomAq(rng) }),
        new QDense({ units: 8, activation: 'relu', iqConf: randomAq(rng) }),
        new QDense({ units: 5, iqConf: randomAq(rng), enableOq: true, oqConf: randomAq(rng) }),
      ],
    });
    checkExact(m, rng, { cmvm }, `MLP seed ${seed} cmvm ${cmvm}`);
  }
});

test('QBatchNormDense (folded batch norm) and QDense over a rank-3 input (same kernel at every position)', () => {
  const rng = makeRng(11);
  const m = tf.sequential({
    layers: [
      new QDense({ units: 4, activation: 'relu', inputShape: [3, 6], iqConf: randomAq(rng) }),
      tf.layers.flatten(),
      new QBatchNormDense({ units: 6, activation: 'relu', iqConf: randomAq(rng) }),
      new QBatchNormDense({ units: 3, iqConf: randomAq(rng) }),
    ],
  });
  checkExact(m, rng);
});

test('functional graph: two inputs, concatenate, reshape, global max pooling, two outputs', () => {
  const rng = makeRng(41);
  const a = tf.input({ shape: [8] });
  const b = tf.input({ shape: [2, 2, 2] });
  const bf = tf.layers.flatten().apply(b) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate().apply([a, bf]) as tf.SymbolicTensor;
  const d = new QDense({ units: 8, activation: 'relu', iqConf: randomAq(rng) }).apply(cat) as tf.SymbolicTensor;
  const r = tf.layers.reshape({ targetShape: [2, 2, 2] }).apply(d) as tf.SymbolicTensor;
  const g = new QGlobalMaxPooling2D({ iqConf: randomAq(rng) }).apply(r) as tf.SymbolicTensor;
  const o2 = new QDense({ units: 3, iqConf: randomAq(rng), enableOq: true, oqConf: randomAq(rng, 'SAT') }).apply(
    d,
  ) as tf.SymbolicTensor;
  const m = tf.model({ inputs: [a, b], outputs: [g, o2] });
  checkExact(m, rng);
});
