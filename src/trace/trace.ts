/**
 * trace(model): a trained, calibrated HGQ model (tfjs-layers, sequential or functional, any number of
 * inputs and outputs) → an IR program that computes exactly what the model computes in inference.
 *
 * Per sample, every tensor is an array of wires. Model inputs start as *raw* elements (not yet wires):
 * rewiring layers (reshape, flatten, slicing, concatenation) move them around, and the first quantizer
 * that reaches a raw element turns it into the program's `input` op with that quantizer's type, rounding
 * and overflow (a zero-width element becomes the constant 0). Layer semantics live in ./layers.ts.
 */
import type * as tf from '@tensorflow/tfjs';
import { optimizeProgram } from '../ir/optimize.ts';
import { validateProgram } from '../ir/validate.ts';
import type { OutputRef, Program, TensorSpec } from '../ir/types.ts';
import type { CmvmMethod } from './matvec.ts';
import { LAYER_HANDLERS, supportedLayers } from './layers.ts';
import { checkCalibrated } from './calibrated.ts';
import { prod, TraceError, Tracer, type Val } from './tracer.ts';

export { TraceError } from './tracer.ts';

export interface TraceOptions {
  /** Constant matrix products: 'da' = CMVM adder graphs (default), 'none' = plain CSD sums, balanced trees. */
  cmvm?: CmvmMethod;
  /** CMVM delay constraint in adder levels above the plain tree (−1 = unconstrained, default). */
  dc?: number;
  /** CMVM search effort: 0 fast (large layers), 1 baseline, 2 default, 3 thorough (see CmvmOptions.effort). */
  effort?: number;
  /** Threads for the CMVM search of large layers (default: the idle cores, see src/cmvm/parallel.ts; the same result with any). */
  cmvmThreads?: number;
  /**
   * Table layers: tables that read the same quantized wire share one multi-output lut op (packed fields read
   * back by rewiring; see shared-tables.ts). Default false.
   */
  shareTables?: boolean;
  /** Run dead-op elimination and constant folding (default true). */
  optimize?: boolean;
  /** Trace even when the model looks uncalibrated (tests of the raw state only). */
  allowUncalibrated?: boolean;
  /** Program name (default: the model's name). */
  name?: string;
}

type SymT = tf.SymbolicTensor;
interface TfNode {
  inputTensors: SymT[];
  outputTensors: SymT[];
}

function perSample(shape: readonly (number | null)[], what: string): number[] {
  return shape.slice(1).map((d) => {
    if (d === null || d === undefined)
      throw new TraceError(`${what}: per-sample shape [${shape.slice(1)}] has an unknown dimension; tracing needs fixed shapes`);
    return d;
  });
}

/** Traces `model` into a validated (and by default optimized) program. */
export function trace(model: tf.LayersModel, options: TraceOptions = {}): Program {
  const opts = {
    cmvm: options.cmvm ?? 'da',
    dc: options.dc ?? -1,
    ...(options.effort !== undefined ? { effort: options.effort } : {}),
    ...(options.cmvmThreads !== undefined ? { threads: options.cmvmThreads } : {}),
    ...(options.shareTables !== undefined ? { shareTables: options.shareTables } : {}),
  };
  if (opts.cmvm !== 'da' && opts.cmvm !== 'none')
    throw new TraceError(`cmvm method '${String(opts.cmvm)}' is not one of da, none`);
  if (!options.allowUncalibrated) checkCalibrated(model);
  const t = new Tracer(opts);
  const vals = new Map<number, Val>();
  const inputs: TensorSpec[] = [];
  let offset = 0;
  for (const x of model.inputs) {
    const shape = perSample(x.shape, `input '${x.name}'`);
    const n = prod(shape);
    const el = new Int32Array(n);
    for (let j = 0; j < n; j++) el[j] = -1 - (offset + j);
    vals.set(x.id, { shape, el });
    inputs.push({ name: x.name, shape });
    offset += n;
  }

  // Walk the graph: repeat over the layers until every node whose inputs are known has been computed.
  const done = new Set<TfNode>();
  let progress = true;
  while (progress) {
    progress = false;
    for (const layer of model.layers) {
      const nodes = (layer as unknown as { inboundNodes: TfNode[] }).inboundNodes;
      for (const node of nodes) {
        if (done.has(node)) continue;
        if (!node.inputTensors.every((s) => vals.has(s.id))) continue;
        if (node.outputTensors.every((s) => vals.has(s.id))) {
          done.add(node);
          continue;
        }
        const ins = node.inputTensors.map((s) => vals.get(s.id)!);
        const outs = traceLayer(t, layer, ins);
        if (outs.length !== node.outputTensors.length)
          throw new TraceError(
            `${layer.getClassName()} '${layer.name}': produced ${outs.length} outputs, expected ${node.outputTensors.length}`,
          );
        node.outputTensors.forEach((s, j) => {
          const want = perSample(s.shape, `${layer.getClassName()} '${layer.name}' output`);
          const got = outs[j]!;
          if (prod(want) !== got.el.length)
            throw new TraceError(
              `${layer.getClassName()} '${layer.name}': traced output has ${got.el.length} elements, the model says [${want}]`,
            );
          vals.set(s.id, { shape: want, el: got.el });
        });
        done.add(node);
        progress = true;
      }
    }
  }

  const outputs: TensorSpec[] = [];
  const out: OutputRef[] = [];
  for (const y of model.outputs) {
    const v = vals.get(y.id);
    if (!v)
      throw new TraceError(
        `output '${y.name}' could not be reached from the model inputs (a nested model or an unconnected layer?)`,
      );
    t.requireWires(v, `output '${y.name}'`);
    outputs.push({ name: y.name, shape: perSample(y.shape, `output '${y.name}'`) });
    for (const w of v.el) out.push({ wire: w, shift: 0, neg: false });
  }
  // input elements nothing reads (or pruned to zero width) get no input op; the input layout stays the model's
  const p = t.b.build(options.name ?? model.name, inputs, outputs, out);
  const result = options.optimize === false ? p : optimizeProgram(p);
  validateProgram(result);
  return result;
}

function traceLayer(t: Tracer, layer: tf.layers.Layer, ins: Val[]): Val[] {
  const cls = layer.getClassName();
  const h = LAYER_HANDLERS[cls];
  if (!h) {
    throw new TraceError(`unsupported layer ${cls} '${layer.name}': the tracer supports ${supportedLayers().join(', ')}`);
  }
  const prev = t.b.layer;
  t.b.layer = layer.name;
  try {
    return h(t, layer, ins);
  } catch (e) {
    if (e instanceof TraceError) throw e;
    throw new TraceError(`${cls} '${layer.name}': ${(e as Error).message}`);
  } finally {
    t.b.layer = prev;
  }
}
