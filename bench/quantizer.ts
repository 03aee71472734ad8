/**
 * Forward+backward throughput of the trainable quantizer on the wasm backend against a plain `x*1`
 * custom-gradient op of the same shape (the cost floor of any elementwise op with a gradient).
 * Main figure: the default activation quantizer (KIF, RND, WRAP, per activation, with integer-bit tracking)
 * on a [32768, 64] batch, gradients into x and f. Also: the default weight quantizer (KBI, SAT_SYM, per
 * element, gradients into x, b, i) and inference. Prints one JSON line (ratio = quantizer / baseline).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { Quantizer } from '../src/quantizer/index.ts';

function rate(step: () => void, elems: number, minMs = 1500): number {
  step(); // warm up
  step();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    step();
    reps++;
  }
  return (elems * reps) / ((performance.now() - t0) / 1000);
}

export default async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const shape = [32768, 64];
  const n = shape[0]! * shape[1]!;
  const x0 = tf.randomNormal(shape, 0, 2, 'float32', 1);
  const x = tf.variable(x0, true);
  x0.dispose();

  const mulOne = tf.customGrad(((a: tf.Tensor) => ({
    value: tf.mul(a, 1),
    gradFunc: (dy: tf.Tensor) => tf.mul(dy, 1),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: tf.Tensor) => tf.Tensor;

  const fwdBwd = (f: () => tf.Tensor, vars: tf.Variable[]) => () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(f()) as tf.Scalar, vars);
    // force completion (wasm is synchronous, but read one value to be sure nothing is deferred)
    for (const g of Object.values(grads)) g.dataSync().length;
    tf.dispose([value, ...Object.values(grads)]);
  };

  const baseline = rate(
    fwdBwd(() => mulOne(x), [x]),
    n,
  );

  const act = new Quantizer({ place: 'datalane' });
  act.build([null, shape[1]!]);
  const actVars = [x, ...act.weights.filter((w) => w.trainable).map((w) => w.variable.read() as tf.Variable)];
  const quant = rate(
    fwdBwd(() => act.call(x, true), actVars),
    n,
  );

  const wq = new Quantizer({ place: 'weight' });
  wq.build(shape);
  const wVars = [x, ...wq.weights.filter((w) => w.trainable).map((w) => w.variable.read() as tf.Variable)];
  const weightRate = rate(
    fwdBwd(() => wq.call(x, true), wVars),
    n,
  );

  const inferRate = rate(() => {
    const y = act.call(x, false);
    y.dataSync().length;
    y.dispose();
  }, n);

  act.dispose();
  wq.dispose();
  x.dispose();
  console.log(
    JSON.stringify({
      backend,
      shape,
      quantizer_elems_per_s: Math.round(quant),
      baseline_elems_per_s: Math.round(baseline),
      ratio: +(quant / baseline).toFixed(3),
      weight_quantizer_elems_per_s: Math.round(weightRate),
      inference_elems_per_s: Math.round(inferRate),
    }),
  );
}
