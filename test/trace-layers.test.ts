/**
 * Tracer bit-exactness for table, softmax, merge, batch-norm, einsum, sum and shape layers (see
 * trace-exact.test.ts for the contract): emulator == model inference on 10,000 random inputs plus edge
 * values, with random trained state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import {
  QDense,
  QBatchNormalization,
  QAdd,
  QSubtract,
  QMultiply,
  QMaximum,
  QMinimum,
  QFlatten,
  QReshape,
  QConcatenate,
  QUnaryFunctionLUT,
  QSoftmax,
} from '../src/layers/index.ts';
import { QEinsumDense, QEinsumDenseBatchnorm } from '../src/layers/einsum.ts';
import { QSum } from '../src/layers/sum.ts';
import { GetItem } from '../src/layers/getitem.ts';
import { makeRng } from './util/rng.ts';
import { checkExact, randomAq } from './util/trace-models.ts';

await initBackend();

const apply = (l: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor =>
  l.apply(x) as tf.SymbolicTensor;

test('table activation and softmax: QDense → QUnaryFunctionLUT(tanh) → QDense → QSoftmax', () => {
  const rng = makeRng(51);
  const m = tf.sequential({
    layers: [
      new QDense({ units: 6, inputShape: [8], iqConf: randomAq(rng) }),
      new QUnaryFunctionLUT({ activation: 'tanh', iqConf: randomAq(rng) }),
      new QDense({ units: 5, iqConf: randomAq(rng) }),
      new QSoftmax({ iqConf: randomAq(rng) }),
    ],
  });
  const p = checkExact(m, rng);
  assert.ok(
    p.ops.some((o) => o.kind === 'lut'),
    'tables become lut ops',
  );
  assert.ok(
    p.ops.some((o) => o.kind === 'mul'),
    'softmax multiplies e·r',
  );
});

test('residual model with QAdd (and QBatchNormalization on the skip path)', () => {
  const rng = makeRng(61);
  const x = tf.input({ shape: [10] });
  const h = apply(new QDense({ units: 10, activation: 'relu', iqConf: randomAq(rng) }), x);
  const h2 = apply(new QDense({ units: 10, iqConf: randomAq(rng) }), h);
  const skip = apply(new QBatchNormalization({ iqConf: randomAq(rng) }), h);
  const s = apply(new QAdd({ iqConf: [randomAq(rng), randomAq(rng)] }), [h2, skip]);
  const y = apply(new QDense({ units: 4, iqConf: randomAq(rng) }), s);
  checkExact(tf.model({ inputs: x, outputs: y }), rng);
});

test('every merge: QSubtract, QMultiply, QMaximum, QMinimum, three-input QAdd', () => {
  const rng = makeRng(71);
  const a = tf.input({ shape: [6] });
  const b0 = tf.input({ shape: [6] });
  const c = apply(new QDense({ units: 6, iqConf: randomAq(rng) }), a);
  // a model input element has one port type: b reaches the merges through one quantizing layer
  const b = apply(new QDense({ units: 6, iqConf: randomAq(rng) }), b0);
  const outs = [
    apply(new QSubtract({ iqConf: [randomAq(rng), randomAq(rng)] }), [c, b]),
    apply(new QMultiply({ iqConf: [randomAq(rng), randomAq(rng)] }), [c, b]),
    apply(new QMaximum({ iqConf: [randomAq(rng), randomAq(rng)] }), [c, b]),
    apply(new QMinimum({ iqConf: [randomAq(rng), randomAq(rng)] }), [b, c]),
    apply(new QAdd({ iqConf: [randomAq(rng), randomAq(rng), randomAq(rng)] }), [c, b, c]),
  ];
  checkExact(tf.model({ inputs: [a, b0], outputs: outs }), rng);
});

test('QEinsumDense (bnc,cC->bnC) and QEinsumDenseBatchnorm (bc,cC->bC), GetItem slicing of the raw input, QSum, QConcatenate, QReshape, QFlatten', () => {
  const rng = makeRng(81);
  const x = tf.input({ shape: [4, 6] });
  const sl = apply(new GetItem({ key: [null, { start: 1, stop: 4 }, { start: 0, stop: 6, step: 2 }] }), x); // [3, 3]
  const e = apply(
    new QEinsumDense({ equation: 'bnc,cC->bnC', outputShape: [3, 4], biasAxes: 'C', activation: 'relu', iqConf: randomAq(rng) }),
    sl,
  );
  const sum = apply(new QSum({ axes: 1, scale: 0.5, iqConf: randomAq(rng) }), e); // [4]
  const f = apply(new QFlatten({}), e); // [12]
  const cat = apply(new QConcatenate({ iqConf: [randomAq(rng), randomAq(rng)], enableIq: true }), [f, sum]); // [16]
  const eb = apply(
    new QEinsumDenseBatchnorm({ equation: 'bc,cC->bC', outputShape: 5, biasAxes: 'C', iqConf: randomAq(rng) }),
    cat,
  );
  const r = apply(new QReshape({ targetShape: [5, 1] }), eb);
  checkExact(tf.model({ inputs: x, outputs: r }), rng);
});

test('a model input read by two quantizers of different types is refused with a clear error', () => {
  const rng = makeRng(91);
  const a = tf.input({ shape: [4] });
  const y1 = apply(new QDense({ units: 2, iqConf: { overflowMode: 'SAT', roundMode: 'RND' }, name: 'left' }), a);
  const y2 = apply(new QDense({ units: 2, iqConf: { overflowMode: 'SAT', roundMode: 'TRN' }, name: 'right' }), a);
  const m = tf.model({ inputs: a, outputs: [y1, y2] });
  assert.throws(
    () => checkExact(m, rng),
    /QDense 'right': model input element 0 is quantized by two different quantizers \(QDense 'left'/,
  );
});
