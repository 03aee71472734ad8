/**
 * `fit(model, x, y, opts)`: the one call that trains an HGQ model. It runs on the fused WebAssembly engine
 * (src/engine) when the engine supports every layer and the optimizer, else on tfjs `model.fit`, with the same
 * callbacks (β schedules, Pareto checkpoints, …) and the same per-epoch logs either way.
 */
import * as tf from '@tensorflow/tfjs';
import { engineUnsupported, fitWithEngine, type EngineLoss, type EngineOptions, type FitLoopOptions } from '../engine/index.ts';

/** 'softmax_cross_entropy' on logits with one-hot y (classification), or 'mse' (regression): the engine's losses. */
export type TaskLoss = EngineLoss;

export interface FitOptions extends FitLoopOptions {
  /**
   * Adam learning rate when `fit` compiles the model (default 1e-3). A model compiled beforehand keeps its
   * optimizer and loss; `loss` must then name that same loss (the wasm engine computes it itself).
   */
  learningRate?: number;
  /** 'auto' (default): wasm when it can train this model, else tfjs with a one-line notice on stderr */
  engine?: 'auto' | 'wasm' | 'tfjs';
  /** wasm engine knobs: threads (default all cores), simd, schedule */
  engineOptions?: EngineOptions;
}

export interface FitResult {
  engine: 'wasm' | 'tfjs';
  /** why the wasm engine was not used, when `engine: 'auto'` fell back to tfjs */
  fallbackReason?: string;
  /** epochs run (fewer than asked when a callback stopped training) and the logs of each (loss, acc, val_*) */
  epoch: number[];
  history: Record<string, number[]>;
  /** wall seconds of the training loop */
  seconds: number;
}

const TASK_LOSSES: readonly TaskLoss[] = ['softmax_cross_entropy', 'mse'];

/** The tfjs loss of a task loss name (the engine's losses, for `model.compile`). */
export function tfjsLoss(loss: TaskLoss): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  return loss === 'mse' ? (t, p) => tf.losses.meanSquaredError(t, p) : (t, p) => tf.losses.softmaxCrossEntropy(t, p);
}

function isCompiled(model: tf.LayersModel): boolean {
  return (model as { optimizer?: tf.Optimizer }).optimizer != null;
}

/** Why the wasm engine cannot train this (compiled) model, or null when it can. */
function wasmUnsupported(model: tf.LayersModel): string | null {
  const opt = model.optimizer as unknown as { getClassName?: () => string };
  if (opt?.getClassName?.() !== 'Adam')
    return `the wasm engine trains with Adam, the model is compiled with ${opt?.getClassName?.() ?? 'another optimizer'}`;
  return engineUnsupported(model);
}

export async function fit(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, opts: FitOptions): Promise<FitResult> {
  if (!TASK_LOSSES.includes(opts.loss))
    throw new Error(`fit: loss '${String(opts.loss)}' is not one of ${TASK_LOSSES.join(', ')}`);
  const want = opts.engine ?? 'auto';
  if (!['auto', 'wasm', 'tfjs'].includes(want)) throw new Error(`fit: engine '${String(want)}' is not one of auto, wasm, tfjs`);
  if (!isCompiled(model)) {
    const metrics = opts.loss === 'softmax_cross_entropy' ? ['acc'] : [];
    model.compile({ optimizer: tf.train.adam(opts.learningRate ?? 1e-3), loss: tfjsLoss(opts.loss), metrics });
  }
  const why = want === 'tfjs' ? null : wasmUnsupported(model);
  if (why && want === 'wasm') throw new Error(`fit: ${why}; use engine 'auto' or 'tfjs'`);
  if (why) process.stderr.write(`hgq: fit: ${why}; training with tfjs model.fit\n`);
  const engine = want === 'tfjs' || why ? 'tfjs' : 'wasm';
  const t0 = performance.now();
  const common = {
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    shuffle: opts.shuffle ?? true,
    callbacks: opts.callbacks ?? [],
    ...(opts.validationData ? { validationData: opts.validationData } : {}),
  };
  const { epoch, history } =
    engine === 'wasm'
      ? await fitWithEngine(model, x, y, { ...common, loss: opts.loss, seed: opts.seed ?? 1, engine: opts.engineOptions ?? {} })
      : await model.fit(x, y, { ...common, verbose: 0 });
  const seconds = (performance.now() - t0) / 1000;
  return { engine, ...(why ? { fallbackReason: why } : {}), epoch, history: history as Record<string, number[]>, seconds };
}
