/**
 * Every HGQ layer class through the same checks (test/util/layer-harness.ts): config round trip, save → load
 * → identical predictions, quantized values equal to src/fixed, gradients against finite differences where
 * the layer is differentiable, and trace + emulate bit-exact.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import {
  QAdd,
  QAveragePooling1D,
  QAveragePooling2D,
  QBatchNormalization,
  QBatchNormDense,
  QConcatenate,
  QConv1D,
  QConv2D,
  QDense,
  QFlatten,
  QGlobalAveragePooling1D,
  QGlobalAveragePooling2D,
  QGlobalMaxPooling1D,
  QGlobalMaxPooling2D,
  QMaximum,
  QMaxPooling1D,
  QMaxPooling2D,
  QMinimum,
  QMultiply,
  QReshape,
  QSoftmax,
  QSubtract,
  QUnaryFunctionLUT,
  QLayer,
} from '../src/layers/index.ts';
import { QEinsumDense, QEinsumDenseBatchnorm } from '../src/layers/einsum.ts';
import { GetItem } from '../src/layers/getitem.ts';
import { QSum } from '../src/layers/sum.ts';
import { QConvT1D, QConvT2D, QDenseT } from '../src/layers/table-dense.ts';
import { QEinsumDenseT } from '../src/layers/table-einsum.ts';
import { setVar } from './util/tf.ts';
import {
  checkConfigRoundTrip,
  checkGradients,
  checkQuantizedValues,
  checkSaveLoad,
  checkTraceExact,
  type LayerCase,
} from './util/layer-harness.ts';

await initBackend();

const TABLE = 'table lookups are piecewise constant: finite differences are 0 or a jump';

const CASES: Record<string, LayerCase> = {
  QDense: { make: () => new QDense({ units: 4 }), inputs: [[6]] },
  'QDense (relu, over positions)': { make: () => new QDense({ units: 3, activation: 'relu' }), inputs: [[2, 5]] },
  QBatchNormDense: { make: () => new QBatchNormDense({ units: 3 }), inputs: [[5]], foldsBatchNorm: true },
  QConv1D: { make: () => new QConv1D({ filters: 2, kernelSize: 3, padding: 'same' }), inputs: [[6, 2]] },
  QConv2D: { make: () => new QConv2D({ filters: 2, kernelSize: 2, strides: [1, 2] }), inputs: [[4, 4, 2]] },
  QBatchNormalization: { make: () => new QBatchNormalization({}), inputs: [[3, 4]] },
  QEinsumDense: {
    make: () => new QEinsumDense({ equation: 'bnc,cC->bnC', outputShape: [3, 4], biasAxes: 'C' }),
    inputs: [[3, 5]],
  },
  QEinsumDenseBatchnorm: {
    make: () => new QEinsumDenseBatchnorm({ equation: 'bc,cC->bC', outputShape: 3, biasAxes: 'C' }),
    inputs: [[5]],
    foldsBatchNorm: true,
  },
  QAdd: { make: () => new QAdd({}), inputs: [[5], [5]] },
  QSubtract: { make: () => new QSubtract({}), inputs: [[5], [5]] },
  QMultiply: { make: () => new QMultiply({}), inputs: [[5], [5]] },
  QMaximum: { make: () => new QMaximum({}), inputs: [[5], [5]] },
  QMinimum: { make: () => new QMinimum({}), inputs: [[5], [5]] },
  QMaxPooling1D: { make: () => new QMaxPooling1D({ poolSize: 2 }), inputs: [[6, 2]] },
  QMaxPooling2D: { make: () => new QMaxPooling2D({ poolSize: 2 }), inputs: [[4, 4, 1]] },
  QAveragePooling1D: { make: () => new QAveragePooling1D({ poolSize: 2 }), inputs: [[6, 2]] },
  QAveragePooling2D: { make: () => new QAveragePooling2D({ poolSize: 2 }), inputs: [[4, 4, 1]] },
  QGlobalMaxPooling1D: { make: () => new QGlobalMaxPooling1D({}), inputs: [[4, 2]] },
  QGlobalMaxPooling2D: { make: () => new QGlobalMaxPooling2D({}), inputs: [[2, 2, 3]] },
  QGlobalAveragePooling1D: { make: () => new QGlobalAveragePooling1D({}), inputs: [[4, 2]] },
  QGlobalAveragePooling2D: { make: () => new QGlobalAveragePooling2D({}), inputs: [[2, 2, 3]] },
  QSum: { make: () => new QSum({ axes: 1, scale: 0.5 }), inputs: [[4, 3]] },
  QFlatten: {
    make: () => new QFlatten({}),
    traced: () => new QFlatten({ enableIq: true }),
    inputs: [[2, 3]],
    passThrough: true,
  },
  QReshape: {
    make: () => new QReshape({ targetShape: [3, 2] }),
    traced: () => new QReshape({ targetShape: [3, 2], enableIq: true }),
    inputs: [[6]],
    passThrough: true,
  },
  QConcatenate: {
    make: () => new QConcatenate({}),
    traced: () => new QConcatenate({ enableIq: true }),
    inputs: [[3], [2]],
    passThrough: true,
  },
  GetItem: {
    make: () => new GetItem({ key: [null, { start: 1, stop: 4 }] }),
    traced: () => new GetItem({ key: [null, { start: 1, stop: 4 }], enableIq: true }),
    inputs: [[5]],
    passThrough: true,
  },
  QUnaryFunctionLUT: {
    make: () => new QUnaryFunctionLUT({ activation: 'tanh' }),
    inputs: [[5]],
    noGradient: TABLE,
    pruneA: 0,
    adjust: (l) => setVar(l, 'oq_b', () => 7), // tanh ∈ (−1, 1): the random 1–6 output bits give too few values
  },
  QSoftmax: { make: () => new QSoftmax({}), inputs: [[5]], noGradient: TABLE, pruneA: 0 },
  // HGQ-LUT: each edge's output is a quantized table value of its quantized input
  QDenseT: { make: () => new QDenseT({ nOut: 3, dHl: 4 }), inputs: [[4]], noGradient: TABLE, pruneA: 0 },
  QConvT1D: { make: () => new QConvT1D({ filters: 2, kernelSize: 2, dHl: 3 }), inputs: [[4, 2]], noGradient: TABLE, pruneA: 0 },
  QConvT2D: {
    make: () => new QConvT2D({ filters: 2, kernelSize: 2, dHl: 3 }),
    inputs: [[3, 3, 1]],
    noGradient: TABLE,
    pruneA: 0,
  },
  QEinsumDenseT: {
    make: () => new QEinsumDenseT({ equation: 'bij,jk->bik', outputShape: [3, 2], dHl: 3 }),
    inputs: [[3, 4]],
    noGradient: TABLE,
    pruneA: 0,
  },
};

let seed = 100;
for (const [name, c] of Object.entries(CASES)) {
  const s = seed++;
  describe(name, () => {
    test('config round trip (getConfig → fromConfig → getConfig)', () => checkConfigRoundTrip(c));
    test('save → load: same weights, same predictions bit for bit', () => checkSaveLoad(c, s));
    test('quantized inputs and weights equal src/fixed', () => {
      checkQuantizedValues(c, s);
    });
    test('gradients equal finite differences', { skip: c.noGradient ?? false }, () => checkGradients(c, s));
    test('trace + emulate: bit-exact against the model', () => checkTraceExact(c, s));
  });
}

// every layer class the library registers has a case here
test('the harness covers every layer class in src/layers', async () => {
  const modules = await Promise.all(
    ['index', 'einsum', 'sum', 'getitem', 'table-dense'].map(
      async (f) => (await import(`../src/layers/${f}.ts`)) as Record<string, unknown>,
    ),
  );
  // a layer class registers under its own static className; abstract bases (TableLayer, QConvT) have none
  const classNames = new Set<string>();
  for (const mod of modules)
    for (const v of Object.values(mod))
      if (typeof v === 'function' && v.prototype instanceof QLayer && Object.hasOwn(v, 'className'))
        classNames.add((v as unknown as { className: string }).className);
  const covered = new Set(Object.values(CASES).map((c) => (c.make() as tf.layers.Layer).getClassName()));
  const missing = [...classNames].filter((k) => !covered.has(k));
  assert.deepEqual(missing, [], 'every layer class has a harness case');
  assert.ok(classNames.size >= 27, `found ${classNames.size} layer classes`);
});
