/**
 * Tracer bit-exactness for convolution and pooling models (see trace-exact.test.ts for the contract):
 * emulator == model inference on 10,000 random inputs plus edge values, random trained state.
 */
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/dense.ts';
import { QConv1D, QConv2D } from '../src/layers/conv.ts';
import {
  QAveragePooling1D,
  QAveragePooling2D,
  QGlobalAveragePooling1D,
  QMaxPooling1D,
  QMaxPooling2D,
} from '../src/layers/pooling.ts';
import { makeRng } from './util/rng.ts';
import { checkExact, randomAq } from './util/trace-models.ts';

await initBackend();

test('small 2-D CNN: QConv2D (same and valid, strides) → max / average pooling → flatten → QDense', () => {
  const rng = makeRng(21);
  const m = tf.sequential({
    layers: [
      new QConv2D({
        filters: 3,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        inputShape: [4, 4, 2],
        iqConf: randomAq(rng),
      }),
      new QAveragePooling2D({ poolSize: 2, iqConf: randomAq(rng) }),
      new QConv2D({ filters: 4, kernelSize: [2, 1], iqConf: randomAq(rng) }),
      new QMaxPooling2D({ poolSize: [1, 2], iqConf: randomAq(rng) }),
      tf.layers.flatten(),
      new QDense({ units: 3, iqConf: randomAq(rng) }),
    ],
  });
  checkExact(m, rng);
});

test('1-D conv model: QConv1D (same, stride 2) → max pool (same) → avg pool → global pools', () => {
  const rng = makeRng(31);
  const x = tf.input({ shape: [16, 3] });
  const c = new QConv1D({
    filters: 4,
    kernelSize: 3,
    strides: 2,
    padding: 'same',
    activation: 'relu',
    iqConf: randomAq(rng),
  }).apply(x) as tf.SymbolicTensor;
  const mp = new QMaxPooling1D({ poolSize: 3, strides: 1, padding: 'same', iqConf: randomAq(rng) }).apply(c) as tf.SymbolicTensor;
  const ap = new QAveragePooling1D({ poolSize: 2, iqConf: randomAq(rng) }).apply(mp) as tf.SymbolicTensor;
  const g1 = new QGlobalAveragePooling1D({ iqConf: randomAq(rng) }).apply(ap) as tf.SymbolicTensor;
  const m = tf.model({ inputs: x, outputs: [g1, mp] });
  checkExact(m, rng);
});
