/**
 * Engine vs tfjs comparisons shared by the engine layer tests: one step's loss and every gradient (weights and
 * bit parameters, from the same state and data; engine on 2 threads), and the state after several Adam steps
 * (engine on 1 thread).
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { EngineBinding, describeAny, type EngineLoss } from '../../src/engine/from-tfjs.ts';
import type { QLayer } from '../../src/layers/base.ts';
import { makeRng } from './rng.ts';

/** Every got[j] within rel × max|want| (+ abs) of want[j]: the engine against tfjs or a float64 reference. */
export function close(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs = 1e-9): void {
  assert.equal(got.length, want.length, `${name}: length`);
  let scale = 0;
  for (let j = 0; j < want.length; j++) scale = Math.max(scale, Math.abs(want[j]!));
  for (let j = 0; j < want.length; j++) {
    const tol = rel * scale + abs;
    if (!(Math.abs(got[j]! - want[j]!) <= tol))
      assert.fail(`${name}[${j}]: engine ${got[j]} vs reference ${want[j]} (tol ${tol})`);
  }
}

/** Random inputs (B × per-sample shape) in ±scale and a one-hot target derived from two input features. */
export function batch(seed: number, B: number, inShape: number[], C: number, scale = 2) {
  const rng = makeRng(seed);
  const K = inShape.reduce((a, d) => a * d, 1);
  const x = Float32Array.from({ length: B * K }, () => (rng.next() * 2 - 1) * scale);
  const y = new Float32Array(B * C);
  for (let b = 0; b < B; b++) y[b * C + (((x[b * K]! > 0 ? 1 : 0) + (x[b * K + K - 1]! > 0.5 ? 2 : 0)) % C)] = 1;
  return { x, y, xt: tf.tensor(x, [B, ...inShape]), yt: tf.tensor2d(y, [B, C]) };
}

const taskLoss = (loss: EngineLoss, y: tf.Tensor, p: tf.Tensor) =>
  loss === 'mse' ? tf.losses.meanSquaredError(y, p) : tf.losses.softmaxCrossEntropy(y, p);

/**
 * One engine step against tfjs' gradients of the total loss (task + Σ β·EBOPs + L1) at the same state:
 * same loss and EBOPs, every bound trainable variable's gradient within `rel` of its largest magnitude.
 * Returns the names checked.
 */
export async function checkOneStep(
  model: tf.LayersModel,
  loss: EngineLoss,
  x: Float32Array,
  y: Float32Array,
  xt: tf.Tensor,
  yt: tf.Tensor,
  rel = 1e-3,
): Promise<string[]> {
  const { binding, graph } = describeAny(model, loss);
  assert.ok(graph, 'the model runs on the graph path');
  // the binding reads the state before tfjs' forward pass moves the batch-norm statistics
  const bind = await EngineBinding.create(model, loss, { threads: 2 }); // rows, columns and im2col chunks split over 2 threads
  assert.equal(bind.engine.threads, 2);
  try {
    const tvars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const ebopsT = () => model.layers.reduce((s, l) => s + ((l as QLayer).hgqEbops?.() ?? 0), 0);
    const { value, grads } = tf.variableGrads(() => {
      const out = model.apply(xt, { training: true }) as tf.Tensor;
      let l = taskLoss(loss, yt, out);
      for (const layer of model.layers) if ((layer as QLayer).regularization) l = tf.add(l, (layer as QLayer).regularization());
      return l as tf.Scalar;
    }, tvars);
    const ebopsWant = ebopsT(); // after the forward pass: WRAP integer bits follow the batch first
    const r = bind.engine.step(x, y);
    const want = value.dataSync()[0]!;
    assert.ok(Math.abs(r.loss - want) <= 2e-5 * Math.abs(want) + 1e-7, `loss: engine ${r.loss} vs tfjs ${want}`);
    assert.ok(Math.abs(r.ebops - ebopsWant) <= 1e-5 * ebopsWant + 1e-6, `EBOPs: engine ${r.ebops} vs tfjs ${ebopsWant}`);
    const eg = bind.engine.debugGradients();
    const checked: string[] = [];
    for (const [name, lv] of binding.vars) {
      const g = grads[(lv.read() as tf.Variable).name];
      if (!g) continue; // not trainable (WRAP integer bits, moving statistics)
      close(name, eg[name]!, g.dataSync(), rel);
      checked.push(name);
    }
    tf.dispose([value, ...Object.values(grads)]);
    return checked;
  } finally {
    bind.dispose();
  }
}

/**
 * `steps` batches trained with trainOnBatch on `a` and with the engine on `b` (same initial weights): the losses
 * agree step by step, and after push() every weight of b (incl. bit parameters and moving statistics) is
 * within Adam's per-step movement of a's, almost all of them closely.
 */
export async function checkSteps(
  a: tf.LayersModel,
  b: tf.LayersModel,
  loss: EngineLoss,
  batches: Array<ReturnType<typeof batch>>,
  lr: number,
): Promise<void> {
  b.setWeights(a.getWeights());
  const bind = await EngineBinding.create(b, loss, { threads: 1 });
  try {
    for (const bt of batches) {
      const lt = (await a.trainOnBatch(bt.xt, bt.yt)) as number;
      const le = bind.engine.step(bt.x, bt.y).loss;
      assert.ok(Math.abs(lt - le) <= 2e-4 * Math.abs(lt), `loss ${le} vs tfjs ${lt}`);
    }
    bind.push();
  } finally {
    bind.dispose();
  }
  const wa = a.getWeights(),
    wb = b.getWeights();
  let total = 0,
    near = 0;
  wa.forEach((t, j) => {
    const va = t.dataSync(),
      vb = wb[j]!.dataSync();
    for (let e = 0; e < va.length; e++) {
      total++;
      // Adam normalizes: a gradient that is ~0 up to rounding may move a parameter by up to lr per step
      assert.ok(
        Math.abs(va[e]! - vb[e]!) <= batches.length * lr * 1.01 + 1e-5 * Math.max(1, Math.abs(va[e]!)),
        `${a.weights[j]!.name}[${e}]: tfjs ${va[e]} vs engine ${vb[e]}`,
      );
      if (Math.abs(va[e]! - vb[e]!) <= 1e-5 * Math.max(1, Math.abs(va[e]!))) near++;
    }
  });
  assert.ok(near >= 0.97 * total, `only ${near}/${total} parameters agree closely`);
}

/**
 * Seeded weights (Glorot-uniform-like kernels, small biases) instead of tfjs' unseeded initializers: a rounding-level
 * difference can flip one table-output rounding, so each comparison runs on a fixed, reproducible state.
 */
export function seedWeights(m: tf.LayersModel, seed: number): void {
  const rng = makeRng(seed);
  for (const w of m.trainableWeights) {
    if (!/kernel|bias/.test(w.name)) continue;
    const shape = w.shape as number[];
    const lim = /bias/.test(w.name) ? 0.1 : Math.sqrt(6 / ((shape.at(-2) ?? 1) + shape.at(-1)!));
    const vals = Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => (rng.next() * 2 - 1) * lim);
    w.write(tf.tensor(vals, shape));
  }
}
