/**
 * `model.fit` on the wasm engine: epochs of shuffled mini-batches trained in WebAssembly, with the tfjs model
 * synced at epoch boundaries so tfjs-layers callbacks (β schedules, EBOPs logging, Pareto checkpoints, early
 * stopping, progress bars) and validation work unchanged. Batch-level logs carry loss and acc; the model's
 * weights are only current at epoch ends.
 */
import { mulberry32 } from '../util/random.ts';
import * as tf from '@tensorflow/tfjs';
import { EngineBinding, engineUnsupported, type EngineLoss } from './from-tfjs.ts';
import type { EngineOptions } from './types.ts';

/** What every fit takes, on the engine or on tfjs (train/fit.ts adds the choice between them). */
export interface FitLoopOptions {
  epochs: number;
  batchSize: number;
  loss: EngineLoss;
  /** shuffle the samples every epoch (default true) */
  shuffle?: boolean;
  validationData?: [tf.Tensor, tf.Tensor];
  callbacks?: tf.Callback[];
  /** seed of the wasm engine's shuffling PRNG (tfjs shuffles with its own generator) */
  seed?: number;
}

export interface EngineFitOptions extends FitLoopOptions {
  /**
   * The run's epoch number of this call's first epoch (default 0). Each epoch's order is drawn afresh from
   * (seed, run epoch), so a run split over several calls — or resumed after a kill — sees the same batches
   * as one unbroken call.
   */
  initialEpoch?: number;
  engine?: EngineOptions;
}

export interface EngineFitResult {
  epoch: number[];
  history: Record<string, number[]>;
  /** wall seconds spent in engine steps (excluding validation and callbacks) */
  trainSeconds: number;
  threads: number;
  relaxedSimd: boolean;
}

type Logs = Record<string, number>;

/** Trains `model` (compiled with tf.train.adam) on x (N×…, as the model's input) and one-hot/target y with the wasm engine. */
export async function fitWithEngine(
  model: tf.LayersModel,
  x: tf.Tensor,
  y: tf.Tensor,
  o: EngineFitOptions,
): Promise<EngineFitResult> {
  const why = engineUnsupported(model);
  if (why) throw new Error(`fitWithEngine: ${why}; train with the tfjs engine instead`);
  // x may have any per-sample shape (a leading Flatten/Reshape is free on row-major rows)
  if (x.rank < 2 || y.rank !== 2 || x.shape[0] !== y.shape[0])
    throw new Error(
      `fitWithEngine: x must be (samples, ...) and y 2-D with the same number of rows, got [${x.shape}] and [${y.shape}]`,
    );
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1))
    throw new Error(`fitWithEngine: epochs must be a positive integer, got ${o.epochs}`);
  if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1))
    throw new Error(`fitWithEngine: batchSize must be a positive integer, got ${o.batchSize}`);
  const N = x.shape[0]!,
    K = x.size / N,
    C = y.shape[1]!;
  const perSample = (model.inputs[0]!.shape.slice(1) as number[]).reduce((a, d) => a * d, 1);
  if (K !== perSample)
    throw new Error(
      `fitWithEngine: x has ${K} values per sample, the model's input [${model.inputs[0]!.shape.slice(1)}] takes ${perSample}`,
    );
  const xs = x.dataSync() as Float32Array,
    ys = y.dataSync() as Float32Array;
  // one NaN or Inf would turn every weight into NaN within a step; say where it is instead
  for (const [name, a, w] of [
    ['x', xs, K],
    ['y', ys, C],
  ] as const) {
    const j = a.findIndex((v) => !Number.isFinite(v));
    if (j >= 0)
      throw new Error(
        `fitWithEngine: ${name} has ${a[j]} at sample ${Math.floor(j / w)}, value ${j % w}; remove or impute non-finite values first`,
      );
  }
  const bind = await EngineBinding.create(model, o.loss, o.engine);
  const cbs = o.callbacks ?? [];
  const steps = Math.ceil(N / o.batchSize);
  const params = {
    epochs: o.epochs,
    initialEpoch: 0,
    samples: N,
    steps,
    batchSize: o.batchSize,
    verbose: 0,
    doValidation: !!o.validationData,
    metrics: ['loss', 'acc', ...(o.validationData ? ['val_loss', 'val_acc'] : [])],
  };
  for (const cb of cbs) {
    cb.setModel(model as unknown as Parameters<tf.Callback['setModel']>[0]);
    cb.setParams(params);
  }
  const history: Record<string, number[]> = {};
  const epochsDone: number[] = [];
  const idx = new Uint32Array(N);
  const first = o.initialEpoch ?? 0;
  // staging for engines without their own batch views (the graph path)
  let bx: Float32Array | null = null,
    by: Float32Array | null = null;
  let trainSeconds = 0;
  model.stopTraining = false;
  try {
    for (const cb of cbs) await cb.onTrainBegin();
    for (let epoch = 0; epoch < o.epochs && !model.stopTraining; epoch++) {
      for (const cb of cbs) await cb.onEpochBegin(epoch);
      bind.pull(); // β and the learning rate (schedules set them in onEpochBegin), and anything a callback changed
      for (let j = 0; j < N; j++) idx[j] = j;
      if (o.shuffle ?? true) {
        const rand = mulberry32(Math.imul((o.seed ?? 1) >>> 0, 0x9e3779b1) ^ (first + epoch));
        for (let j = N - 1; j > 0; j--) {
          const r = Math.floor(rand() * (j + 1));
          const t = idx[j]!;
          idx[j] = idx[r]!;
          idx[r] = t;
        }
      }
      let lossSum = 0,
        accSum = 0;
      for (let s = 0; s < steps; s++) {
        const b0 = s * o.batchSize,
          nb = Math.min(o.batchSize, N - b0);
        // gathered straight into the engine's memory where it offers views (saves a copy of the batch per step)
        const own = bind.engine.batchBuffers?.(nb);
        if (!own && !bx) {
          bx = new Float32Array(o.batchSize * K);
          by = new Float32Array(o.batchSize * C);
        }
        const tx = own ? own.x : bx!.subarray(0, nb * K);
        const ty = own ? own.y : by!.subarray(0, nb * C);
        for (let b = 0; b < nb; b++) {
          const r = idx[b0 + b]!;
          tx.set(xs.subarray(r * K, r * K + K), b * K);
          ty.set(ys.subarray(r * C, r * C + C), b * C);
        }
        const t0 = performance.now();
        const res = bind.engine.step(tx, ty);
        trainSeconds += (performance.now() - t0) / 1000;
        lossSum += res.loss * nb;
        accSum += res.accuracy * nb;
        if (cbs.length) {
          const logs: Logs = { batch: s, size: nb, loss: res.loss, acc: res.accuracy };
          for (const cb of cbs) await cb.onBatchEnd(s, logs);
        }
      }
      bind.push();
      const logs: Logs = { loss: lossSum / N, acc: accSum / N };
      if (o.validationData) {
        // one inference pass (tfjs, inference-mode quantizers) gives both the task loss and the accuracy
        const [vx, vy] = o.validationData;
        const [vl, vacc] = tf.tidy(() => {
          const p = model.predict(vx, { batchSize: 4096 }) as tf.Tensor;
          const l = o.loss === 'mse' ? tf.losses.meanSquaredError(vy, p) : tf.losses.softmaxCrossEntropy(vy, p);
          const a =
            o.loss === 'mse' ? tf.scalar(NaN) : tf.mean(tf.cast(tf.equal(tf.argMax(p, -1), tf.argMax(vy, -1)), 'float32'));
          return [l.dataSync()[0]!, a.dataSync()[0]!];
        });
        logs['val_loss'] = vl;
        if (o.loss === 'softmax_cross_entropy') logs['val_acc'] = vacc;
      }
      for (const cb of cbs) await cb.onEpochEnd(epoch, logs);
      epochsDone.push(epoch);
      for (const [k, v] of Object.entries(logs)) (history[k] ??= []).push(v);
    }
    for (const cb of cbs) await cb.onTrainEnd();
  } finally {
    bind.dispose();
  }
  return { epoch: epochsDone, history, trainSeconds, threads: bind.engine.threads, relaxedSimd: bind.engine.relaxed };
}
