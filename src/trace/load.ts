/** Trace a model from disk: a tfjs model directory (hgq's format) or an HGQ2 `.keras` checkpoint (imported on the fly). */
import type * as tf from '@tensorflow/tfjs';
import { loadModelAny, modelSource } from '../import/load.ts';
import type { Program } from '../ir/types.ts';
import { trace, type TraceOptions } from './trace.ts';
import { checkAgainstModel, type ModelCheck } from './check.ts';

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
