/**
 * Input preprocessing fitted on a run's training split (standardize, min-max, or none), stored as
 * preprocess.json in the run and in every checkpoint folder, and applied by every command that later reads
 * raw data for that model (`hgq emulate --preprocess`, `hgq convert MODEL --data`): y = (x − shift)·scale per
 * input value.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { CsvTable } from '../data/csv.ts';

export type PreprocessMethod = 'standardize' | 'minmax' | 'none';

export interface Preprocess {
  format: 'hgq-preprocess';
  version: 1;
  method: PreprocessMethod;
  /** per input value (the per-sample shape, row-major); empty for `none` */
  shift: number[];
  scale: number[];
  /** the feature names, when the data had them (CSV header) */
  features?: string[];
}

export const PREPROCESS_FILE = 'preprocess.json';

/** Fits `method` on `x` (n samples × `width` values each, row-major). Constant features get scale 1. */
export function fitPreprocess(
  method: PreprocessMethod,
  x: ArrayLike<number>,
  n: number,
  width: number,
  features?: string[],
): Preprocess {
  const base = { format: 'hgq-preprocess' as const, version: 1 as const, method, ...(features ? { features } : {}) };
  if (method === 'none') return { ...base, shift: [], scale: [] };
  const shift = new Array<number>(width).fill(0);
  const scale = new Array<number>(width).fill(1);
  for (let c = 0; c < width; c++) {
    let lo = Infinity,
      hi = -Infinity,
      sum = 0;
    for (let r = 0; r < n; r++) {
      const v = x[r * width + c]!;
      sum += v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (method === 'minmax') {
      shift[c] = lo;
      scale[c] = hi > lo ? 1 / (hi - lo) : 1;
    } else {
      const mean = sum / n;
      let ss = 0;
      for (let r = 0; r < n; r++) ss += (x[r * width + c]! - mean) ** 2;
      const std = Math.sqrt(ss / n);
      shift[c] = mean;
      scale[c] = std > 0 ? 1 / std : 1;
    }
  }
  return { ...base, shift, scale };
}

/** Applies `p` in place to `x` (samples of `shift.length` values each). */
export function applyPreprocess(p: Preprocess, x: Float32Array | Float64Array): void {
  if (p.method === 'none') return;
  const w = p.shift.length;
  if (x.length % w !== 0)
    throw new Error(
      `preprocess: the data has ${x.length} values, not a multiple of the ${w} inputs per sample the preprocessing was fitted on`,
    );
  for (let j = 0; j < x.length; j++) {
    const c = j % w;
    x[j] = (x[j]! - p.shift[c]!) * p.scale[c]!;
  }
}

/** Parses preprocess.json text; throws naming the file when it is not one. */
export function parsePreprocess(text: string, where: string): Preprocess {
  let p: Preprocess;
  try {
    p = JSON.parse(text) as Preprocess;
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  const ok =
    p?.format === 'hgq-preprocess' &&
    ['standardize', 'minmax', 'none'].includes(p.method) &&
    Array.isArray(p.shift) &&
    Array.isArray(p.scale) &&
    p.shift.length === p.scale.length &&
    [...p.shift, ...p.scale].every((v) => typeof v === 'number' && Number.isFinite(v));
  if (!ok)
    throw new Error(
      `${where}: not an hgq preprocess.json (format "hgq-preprocess", method standardize|minmax|none, equal-length finite shift and scale)`,
    );
  return p;
}

/**
 * The preprocessing that belongs to a model: `path` is a preprocess.json file, or a model (or run) folder
 * holding one. Null when a folder has none (the model takes raw data).
 */
export function preprocessOf(path: string): Preprocess | null {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, PREPROCESS_FILE) : path;
  if (!existsSync(file)) return null;
  return parsePreprocess(readFileSync(file, 'utf8'), file);
}

/**
 * The hook for commands reading raw samples for a model: applies the model's preprocess.json (if any) to
 * `data` in place and says what it did (for a log line), or null when there was nothing to apply.
 */
export function preprocessRawData(modelPath: string, data: Float32Array | Float64Array): string | null {
  // only a model folder carries preprocessing; a program.json or an HGQ2 .keras file has none
  const p = preprocessOfModel(modelPath);
  if (!p || p.method === 'none') return null;
  applyPreprocess(p, data);
  return `applied ${p.method} preprocessing from ${join(modelPath, PREPROCESS_FILE)}`;
}

/**
 * A table read for a model whose preprocess.json names its features: when the table's header holds every
 * feature, the model's columns in the model's order (the table a run was trained from also holds the label
 * and maybe other columns). A table without a header, or a model without feature names, is returned as is.
 * Throws naming the missing columns when the header lacks some of the model's features.
 */
export function selectFeatureColumns(table: CsvTable, p: Preprocess | null, where: string): CsvTable {
  const names = p?.features;
  const header = table.header;
  if (!names || !header) return table;
  if (names.length === header.length && names.every((n, c) => header[c] === n)) return table;
  const index = names.map((n) => header.indexOf(n));
  const missing = names.filter((_, k) => index[k]! < 0);
  if (missing.length > 0)
    throw new Error(
      `${where}: the header lacks the model's feature column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} (the model reads ${names.join(',')})`,
    );
  const rows = table.shape[0]!;
  const width = header.length;
  const data = new Float64Array(rows * names.length);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < names.length; k++) data[r * names.length + k] = table.data[r * width + index[k]!]!;
  return { data, shape: [rows, names.length], header: names };
}

/** The preprocessing a model folder carries, or null for other model inputs (program.json, HGQ2 .keras). */
export function preprocessOfModel(modelPath: string): Preprocess | null {
  if (!existsSync(modelPath) || !statSync(modelPath).isDirectory()) return null;
  return preprocessOf(modelPath);
}
