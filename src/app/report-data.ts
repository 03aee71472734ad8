/**
 * What a run report shows, read from a run folder (docs/run-folder.md): the front, the per-epoch history and,
 * for one checkpoint, per-layer bit widths, EBOPs, estimated LUTs and pruning. Pure data: ./report.ts draws it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { readMarker } from '../util/fs.ts';

/** A run folder that cannot be reported (not a run, unreadable front or history): exit 2 in the CLI. */
export class RunFolderError extends Error {
  override name = 'RunFolderError';
}

export interface ReportCheckpoint {
  /** as written in front.json (relative to the run folder, or absolute in old demo folders) */
  path: string;
  /** resolved path on disk */
  dir: string;
  epoch: number;
  ebops: number;
  train_ebops?: number;
  val: Record<string, number>;
  test: Record<string, number>;
  yosys_lut?: number;
  /** the sweep trial the checkpoint came from (sweep folders) */
  trial?: string;
}

export interface HistoryRow {
  epoch: number;
  loss?: number;
  val_loss?: number;
  metrics?: Record<string, number>;
  ebops?: number;
  beta?: number;
  seconds?: number;
}

export interface RunData {
  dir: string;
  name: string;
  /** false while the run is still going or was killed: the front is the training-time one */
  complete: boolean;
  task: string;
  /** the quality axis of the front and whether higher is better */
  metric: string;
  higherIsBetter: boolean;
  checkpoints: ReportCheckpoint[];
  history: HistoryRow[];
  /** a sweep folder: the front merges the fronts of several trials */
  sweep: boolean;
}

interface FrontFileV1 {
  format?: string;
  task?: string;
  metric?: string;
  checkpoints?: unknown[];
}

/** Front metrics where lower is better (everything else, e.g. accuracy, is higher-is-better). */
export const LOWER_IS_BETTER = new Set(['loss', 'mse', 'mae', 'val_loss']);

/** Reads a run folder: the new front.json (or the partial front), the old demo array, and history.jsonl. */
export function readRun(runDir: string): RunData {
  const dir = resolve(runDir);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new RunFolderError(`${runDir}: no such folder (give a run folder written by hgq train or hgq demo)`);
  const marker = readMarker(dir);
  if (marker && marker.kind !== 'run' && marker.kind !== 'sweep')
    throw new RunFolderError(`${runDir} holds an hgq ${marker.kind}, not a training run or sweep`);
  const finalFront = join(dir, 'front.json');
  const partialFront = join(dir, 'state', 'front-partial.json');
  const frontPath = existsSync(finalFront) ? finalFront : existsSync(partialFront) ? partialFront : null;
  if (!frontPath)
    throw new RunFolderError(
      `${runDir}: no front.json (nor state/front-partial.json); is it a run folder of hgq train or hgq demo?`,
    );
  const raw = readJson(frontPath);
  const complete =
    frontPath === finalFront && (marker === null || marker['status'] === undefined || marker['status'] === 'complete');
  const front = Array.isArray(raw) ? legacyFront(raw, dir, frontPath) : currentFront(raw as FrontFileV1, dir, frontPath);
  return {
    dir,
    name: dir.split(/[\\/]/).pop() ?? dir,
    complete,
    ...front,
    history: readHistory(dir),
    sweep: marker?.kind === 'sweep',
  };
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new RunFolderError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function finite(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function numbers(o: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) if (finite(v) !== undefined) out[k] = v as number;
  return out;
}

function resolveCheckpoint(dir: string, p: string): string {
  return isAbsolute(p) ? p : join(dir, p);
}

function requireField<T>(v: T | undefined, what: string, where: string): T {
  if (v === undefined) throw new RunFolderError(`${where}: ${what} is missing or not a finite number`);
  return v;
}

/** front.json as docs/run-folder.md specifies it. */
function currentFront(
  f: FrontFileV1,
  dir: string,
  where: string,
): Omit<RunData, 'dir' | 'name' | 'complete' | 'history' | 'sweep'> {
  if (!f || typeof f !== 'object' || !Array.isArray(f.checkpoints))
    throw new RunFolderError(`${where}: expected {"format": "hgq-front", "checkpoints": [...]} or an array of checkpoints`);
  const metric = typeof f.metric === 'string' ? f.metric : 'accuracy';
  const checkpoints = f.checkpoints.map((c, j) => {
    const e = c as Record<string, unknown>;
    const at = `${where}: checkpoints[${j}]`;
    if (typeof e['path'] !== 'string') throw new RunFolderError(`${at}.path is missing`);
    return {
      path: e['path'],
      dir: resolveCheckpoint(dir, e['path']),
      epoch: finite(e['epoch']) ?? j,
      ebops: requireField(finite(e['ebops']) ?? finite(e['train_ebops']), 'ebops', at),
      train_ebops: finite(e['train_ebops']),
      val: numbers(e['val']),
      test: numbers(e['test']),
      yosys_lut: finite(e['yosys_lut']),
      trial: typeof e['trial'] === 'string' ? e['trial'] : undefined,
    };
  });
  return {
    task: typeof f.task === 'string' ? f.task : 'classification',
    metric,
    higherIsBetter: !LOWER_IS_BETTER.has(metric),
    checkpoints: sortByEbops(checkpoints),
  };
}

/** The demo's front.json before run folders: [{path, val_accuracy, test_accuracy, ebops, epoch}] (or ParetoCheckpoint's {accuracy}). */
function legacyFront(
  arr: unknown[],
  dir: string,
  where: string,
): Omit<RunData, 'dir' | 'name' | 'complete' | 'history' | 'sweep'> {
  const checkpoints = arr.map((c, j): ReportCheckpoint => {
    const e = (c ?? {}) as Record<string, unknown>;
    const at = `${where}: [${j}]`;
    if (typeof e['path'] !== 'string') throw new RunFolderError(`${at}.path is missing`);
    const val = finite(e['val_accuracy']) ?? finite(e['accuracy']);
    const test = finite(e['test_accuracy']);
    return {
      path: e['path'],
      dir: resolveCheckpoint(dir, e['path']),
      epoch: finite(e['epoch']) ?? j,
      ebops: requireField(finite(e['ebops']), 'ebops', at),
      val: val === undefined ? ({} as Record<string, number>) : { accuracy: val },
      test: test === undefined ? ({} as Record<string, number>) : { accuracy: test },
      yosys_lut: finite(e['yosys_lut']),
    };
  });
  return { task: 'classification', metric: 'accuracy', higherIsBetter: true, checkpoints: sortByEbops(checkpoints) };
}

function sortByEbops(c: ReportCheckpoint[]): ReportCheckpoint[] {
  return c.sort((a, b) => a.ebops - b.ebops);
}

/** history.jsonl: one object per epoch; a torn last line (a killed run) is skipped, any other bad line is an error. */
function readHistory(dir: string): HistoryRow[] {
  const path = join(dir, 'history.jsonl');
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  const rows: HistoryRow[] = [];
  lines.forEach((line, j) => {
    if (line.trim() === '') return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      if (j >= lines.length - 2) return; // the run was killed while appending its last line
      throw new RunFolderError(`${path}: line ${j + 1} is not JSON (${(e as Error).message})`);
    }
    rows.push({
      epoch: finite(o['epoch']) ?? rows.length,
      loss: finite(o['loss']),
      val_loss: finite(o['val_loss']),
      metrics: numbers(o['metrics']),
      ebops: finite(o['ebops']),
      beta: finite(o['beta']),
      seconds: finite(o['seconds']),
    });
  });
  return rows;
}

/** The value a checkpoint is judged by: test metric if present, else validation. */
export function quality(run: RunData, c: ReportCheckpoint): number | undefined {
  return c.test[run.metric] ?? c.val[run.metric];
}

/** The checkpoint to detail: `which` (a path as in front.json, a folder, or an epoch number), default the best by metric. */
export function chooseCheckpoint(run: RunData, which?: string): ReportCheckpoint {
  if (run.checkpoints.length === 0) throw new RunFolderError(`${run.dir}: the front has no checkpoints`);
  if (which !== undefined) {
    const byEpoch = /^\d+$/.test(which) ? run.checkpoints.find((c) => c.epoch === Number(which)) : undefined;
    const found =
      byEpoch ?? run.checkpoints.find((c) => c.path === which || c.dir === resolve(which) || c.dir === resolve(run.dir, which));
    if (!found)
      throw new RunFolderError(
        `--checkpoint ${which}: not in the front (have epochs ${run.checkpoints.map((c) => c.epoch).join(', ')})`,
      );
    return found;
  }
  const sign = run.higherIsBetter ? 1 : -1;
  let best = run.checkpoints[0]!;
  for (const c of run.checkpoints) {
    const q = quality(run, c);
    const qb = quality(run, best);
    if (q !== undefined && (qb === undefined || sign * q > sign * qb)) best = c;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------
// one checkpoint in detail

export interface BitMap {
  /** rows × cols of per-element bit widths as EBOPs counts them (0 = pruned) */
  rows: number;
  cols: number;
  bits: number[];
  /** what the axes are, e.g. "input" × "output" */
  rowLabel: string;
  colLabel: string;
}

export interface LayerDetail {
  name: string;
  className: string;
  ebops: number;
  /** IR cost-model LUT estimate of the layer's ops (plain CSD adder trees; CMVM lowers it) */
  estimatedLut?: number;
  weights?: BitMap;
  activations?: BitMap;
  weightCount: number;
  prunedWeights: number;
}

export interface CheckpointDetail {
  checkpoint: ReportCheckpoint;
  layers: LayerDetail[];
  /** how estimatedLut was computed, for the page */
  lutMethod: string;
}

interface QuantLike {
  shape: number[];
  k: ArrayLike<number>;
  i: ArrayLike<number>;
  f: ArrayLike<number>;
  overflow?: string;
}

/**
 * Per-element bits as EBOPs counts them (Quantizer.bits, HGQ2's `bits`): relu(i + f), plus the sign bit only
 * under SAT. 0 = pruned: the element is the constant 0 in hardware.
 */
function bitsOf(q: QuantLike): number[] {
  const sat = q.overflow === 'SAT';
  const out = new Array<number>(q.k.length);
  for (let j = 0; j < out.length; j++) {
    const magnitude = Math.max(0, q.i[j]! + q.f[j]!);
    out[j] = magnitude === 0 ? 0 : magnitude + (sat ? q.k[j]! : 0);
  }
  return out;
}

/** A weight tensor as a matrix: the last axis (outputs, filters) are columns, everything before it rows. */
function weightMap(q: QuantLike): BitMap {
  const cols = q.shape.length >= 2 ? q.shape[q.shape.length - 1]! : q.k.length;
  const bits = bitsOf(q);
  return {
    rows: Math.max(1, bits.length / Math.max(1, cols)),
    cols,
    bits,
    rowLabel: q.shape.length > 2 ? 'kernel tap × input channel' : 'input',
    colLabel: 'output',
  };
}

/** An activation quantizer's per-element widths folded into a near-square picture (row-major, as the tensor is laid out). */
function activationMap(q: QuantLike): BitMap {
  const bits = bitsOf(q);
  const n = bits.length;
  const cols = q.shape.length >= 2 ? q.shape[q.shape.length - 1]! : Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  while (bits.length < rows * cols) bits.push(Number.NaN); // padding cells, drawn empty
  return {
    rows,
    cols,
    bits,
    rowLabel: q.shape.length >= 2 ? 'position' : `element ÷ ${cols}`,
    colLabel: q.shape.length >= 2 ? 'channel' : `element mod ${cols}`,
  };
}

interface ExportingLayer {
  name: string;
  getClassName(): string;
  hgqEbops?: () => number;
  exportQuantized?: () => Record<string, unknown> & { inputQuantizers?: (QuantLike | null)[] };
}

/** Loads a checkpoint and reads every HGQ layer's bit widths and EBOPs; LUT estimates from a CSD trace when it succeeds. */
export async function checkpointDetail(c: ReportCheckpoint, opts: { estimateLuts?: boolean } = {}): Promise<CheckpointDetail> {
  const { loadModelAny } = await import('./load-model.ts');
  let model: tf.LayersModel;
  try {
    model = await loadModelAny(c.dir);
  } catch (e) {
    throw new RunFolderError(`checkpoint ${c.path}: ${(e as Error).message}`);
  }
  try {
    const layers: LayerDetail[] = [];
    for (const l of model.layers as unknown as ExportingLayer[]) {
      if (typeof l.exportQuantized !== 'function' || typeof l.hgqEbops !== 'function') continue;
      layers.push(layerDetail(l));
    }
    let lutMethod = 'not estimated';
    if (opts.estimateLuts !== false) lutMethod = await addLutEstimates(model, layers);
    return { checkpoint: c, layers, lutMethod };
  } finally {
    model.dispose();
  }
}

function layerDetail(l: ExportingLayer): LayerDetail {
  const ex = l.exportQuantized!();
  const kernel = (ex['kernel'] as { quant: QuantLike } | null | undefined)?.quant;
  const iq = ex.inputQuantizers?.find((q): q is QuantLike => q !== null);
  const weights = kernel ? weightMap(kernel) : undefined;
  const pruned = weights ? weights.bits.filter((b) => b === 0).length : 0;
  return {
    name: l.name,
    className: l.getClassName(),
    ebops: l.hgqEbops!(),
    weights,
    activations: iq ? activationMap(iq) : undefined,
    weightCount: weights ? weights.bits.length : 0,
    prunedWeights: pruned,
  };
}

/** Per-layer LUTs from the IR cost model over a trace with plain CSD adder trees (fast; an upper bound of the CMVM result). */
async function addLutEstimates(model: tf.LayersModel, layers: LayerDetail[]): Promise<string> {
  try {
    const { trace } = await import('../trace/trace.ts');
    const { analyzeProgram } = await import('../ir/cost.ts');
    const program = trace(model, { cmvm: 'none', allowUncalibrated: true });
    const per = analyzeProgram(program).perLayer;
    for (const L of layers) L.estimatedLut = Math.round(per[L.name]?.cost ?? 0);
    return 'IR cost model (adder bits ≈ LUTs) over plain CSD adder trees: an upper bound; hgq convert with CMVM gives fewer';
  } catch (e) {
    return `not estimated (trace failed: ${(e as Error).message})`;
  }
}
