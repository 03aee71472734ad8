/**
 * Trace a model from disk for the commands that take one (`hgq trace`, `hgq convert`): a tfjs model directory
 * (hgq's format) or an HGQ2 `.keras` checkpoint (imported on the fly).
 */
import type * as tf from '@tensorflow/tfjs';
import { UsageError } from '../cli/errors.ts';
import type { Program } from '../ir/types.ts';
import { trace, TraceError, type TraceOptions } from '../trace/trace.ts';
import { checkAgainstModel, type ModelCheck } from '../trace/check.ts';
import { loadModelAny, modelSource } from './load-model.ts';

export interface TracedModel {
  program: Program;
  model: tf.LayersModel;
  /** milliseconds: loading, tracing (incl. CMVM and optimization) */
  loadMs: number;
  traceMs: number;
  /** compare the program's emulator with the model on n random inputs */
  validate(n: number): ModelCheck;
}

/** True when `path` is a model this loader understands (a model directory or a .keras file). */
export function isModelPath(path: string): boolean {
  return modelSource(path) !== null;
}

export async function traceModelPath(path: string, opts: TraceOptions = {}): Promise<TracedModel> {
  const t0 = performance.now();
  const model = await loadModelAny(path);
  const t1 = performance.now();
  const program = trace(model, opts);
  const t2 = performance.now();
  return { program, model, loadMs: t1 - t0, traceMs: t2 - t1, validate: (n) => checkAgainstModel(model, program, n) };
}

/** `traceModelPath` for the CLI: a path that is not a model, or a model that cannot be traced, is a UsageError. */
export async function traceModelFile(path: string, opts: TraceOptions = {}): Promise<TracedModel> {
  if (!isModelPath(path))
    throw new UsageError(`${path}: not a model (expected a directory with model.json and weights.bin, or an HGQ2 .keras file)`);
  try {
    return await traceModelPath(path, opts);
  } catch (e) {
    // unsupported layers, uncalibrated models, bad archives: the message names the layer and what to do
    if (
      e instanceof TraceError ||
      /ImportError|CmvmSizeError|not a model|no such file/.test(`${(e as Error).name} ${(e as Error).message}`)
    )
      throw new UsageError((e as Error).message);
    throw e;
  }
}
