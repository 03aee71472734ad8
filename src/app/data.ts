/**
 * A run's data: each split read from its source (CSV, NPY, NPZ, HDF5, IDX, the MNIST and Fashion-MNIST
 * sets), checked (same sample counts, finite values, integer labels in range), split by fractions with a
 * seed where a split has no file, and preprocessed by a fit on the training split. Every problem is a
 * SpecError naming the file, the field and the sample.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readCsv } from '../data/csv.ts';
import { readNpy, type NdArray } from '../data/npy.ts';
import { readNpz } from '../data/npz.ts';
import { readHdf5Dataset } from '../data/hdf5.ts';
import { mnistDir, readIdx } from '../data/mnist.ts';
import { mulberry32 } from '../util/random.ts';
import { applyPreprocess, fitPreprocess, type Preprocess } from './preprocess.ts';
import { SpecError, type Column, type DataSource, type TrainSpec } from './spec.ts';

/** One split: n samples of `width` values (x, row-major) and their targets (y: one-hot rows or regression targets). */
export interface Split {
  n: number;
  x: Float32Array;
  y: Float32Array;
  /** classification: the class of each sample */
  labels?: Int32Array;
}

export interface RunData {
  task: TrainSpec['data']['task'];
  /** per-sample input shape the model takes */
  inputShape: number[];
  /** classification: classes; regression: targets per sample */
  outputs: number;
  featureNames?: string[];
  train: Split;
  val: Split;
  test: Split;
  preprocess: Preprocess;
  /** where each split came from, for the log */
  origin: { train: string; val: string; test: string };
}

/** Debian's `dataset-fashion-mnist` installs the IDX files here. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

interface Raw {
  x: NdArray;
  y: NdArray;
  names?: string[];
  where: string;
}

function formatOf(s: DataSource, role: string): NonNullable<DataSource['format']> {
  if (s.format) return s.format;
  const f = (s.path ?? s.x ?? '').toLowerCase();
  if (f.endsWith('.csv')) return 'csv';
  if (f.endsWith('.npz')) return 'npz';
  if (/\.(h5|hdf5|hdf)$/.test(f)) return 'hdf5';
  if (f.endsWith('.npy')) return 'npy';
  if (/ubyte(\.gz)?$|\.idx\d?(\.gz)?$/.test(f)) return 'idx';
  throw new SpecError(
    `data.${role}: cannot tell the format of '${s.path ?? s.x ?? ''}'; set data.${role}.format to one of csv, npy, npz, hdf5, idx, mnist, fashion-mnist`,
  );
}

function need(s: DataSource, key: 'path' | 'x' | 'y', role: string, fmt: string, what: string): string {
  const v = s[key];
  if (v === undefined) throw new SpecError(`data.${role}.${key}: required for ${fmt} data (${what})`);
  return v;
}

function fileMustExist(path: string, field: string): void {
  if (!existsSync(path)) throw new SpecError(`${field}: ${path}: no such file`);
}

/** Resolves CSV columns by header name or 0-based index. */
function columnIndex(c: Column, header: string[] | undefined, width: number, field: string, file: string): number {
  if (typeof c === 'number') {
    if (c >= width) throw new SpecError(`${field}: column ${c} is out of range (${file} has ${width} columns, 0-based)`);
    return c;
  }
  if (/^\d+$/.test(c) && !header?.includes(c)) return columnIndex(Number(c), header, width, field, file);
  if (!header)
    throw new SpecError(`${field}: '${c}' names a column, but ${file} has no header line; give 0-based column numbers`);
  const j = header.indexOf(c);
  if (j < 0) throw new SpecError(`${field}: no column '${c}' in ${file} (columns: ${header.join(', ')})`);
  return j;
}

function readCsvSource(s: DataSource, role: string): Raw {
  const path = need(s, 'path', role, 'CSV', 'the .csv file');
  fileMustExist(path, `data.${role}.path`);
  let t;
  try {
    t = readCsv(path);
  } catch (e) {
    throw new SpecError((e as Error).message);
  }
  const width = t.shape[1]!;
  if (s.label === undefined)
    throw new SpecError(`data.${role}.label: required for CSV data (the label or target column, by name or 0-based index)`);
  const labelCols = (Array.isArray(s.label) ? s.label : [s.label]).map((c) =>
    columnIndex(c, t.header, width, `data.${role}.label`, path),
  );
  const featCols = s.features
    ? s.features.map((c) => columnIndex(c, t.header, width, `data.${role}.features`, path))
    : Array.from({ length: width }, (_, j) => j).filter((j) => !labelCols.includes(j));
  const twice = featCols.find((j, k) => featCols.indexOf(j) !== k);
  if (twice !== undefined)
    throw new SpecError(
      `data.${role}.features: column '${t.header?.[twice] ?? twice}' is listed twice (by name or index); list each feature once`,
    );
  const overlap = featCols.find((j) => labelCols.includes(j));
  if (overlap !== undefined)
    throw new SpecError(
      `data.${role}.features: column '${t.header?.[overlap] ?? overlap}' is also the label; a model must not see its own label`,
    );
  const n = t.shape[0]!;
  const pick = (cols: number[]): NdArray => {
    const data = new Float64Array(n * cols.length);
    for (let r = 0; r < n; r++) for (let c = 0; c < cols.length; c++) data[r * cols.length + c] = t.data[r * width + cols[c]!]!;
    return { data, shape: [n, cols.length] };
  };
  const names = t.header ? featCols.map((j) => t.header![j]!) : undefined;
  return { x: pick(featCols), y: pick(labelCols), ...(names ? { names } : {}), where: path };
}

async function readArraySource(s: DataSource, role: string, fmt: 'npy' | 'npz' | 'hdf5' | 'idx'): Promise<Raw> {
  const wrap = async (f: () => NdArray | Promise<NdArray>): Promise<NdArray> => {
    try {
      return await f();
    } catch (e) {
      throw new SpecError((e as Error).message);
    }
  };
  if (fmt === 'npy' || fmt === 'idx') {
    const x = need(s, 'x', role, fmt.toUpperCase(), `the features file`);
    const y = need(s, 'y', role, fmt.toUpperCase(), `the labels file`);
    fileMustExist(x, `data.${role}.x`);
    fileMustExist(y, `data.${role}.y`);
    const read =
      fmt === 'npy'
        ? readNpy
        : (p: string): NdArray => {
            const a = readIdx(p);
            return { data: Float64Array.from(a.data), shape: a.shape };
          };
    return { x: await wrap(() => read(x)), y: await wrap(() => read(y)), where: x };
  }
  const path = need(s, 'path', role, fmt.toUpperCase(), `the .${fmt === 'npz' ? 'npz' : 'h5'} file`);
  fileMustExist(path, `data.${role}.path`);
  const x = need(s, 'x', role, fmt.toUpperCase(), `the features ${fmt === 'npz' ? 'array' : 'dataset'}'s name`);
  const y = need(s, 'y', role, fmt.toUpperCase(), `the labels ${fmt === 'npz' ? 'array' : 'dataset'}'s name`);
  const read = fmt === 'npz' ? readNpz : readHdf5Dataset;
  return { x: await wrap(() => read(path, x)), y: await wrap(() => read(path, y)), where: `${path}:${x}` };
}

function readImageSet(s: DataSource, role: string, fmt: 'mnist' | 'fashion-mnist'): Raw {
  const dir = s.path ?? (fmt === 'mnist' ? mnistDir() : FASHION_MNIST_DIR);
  const part = s.part ?? (role === 'test' ? 'test' : 'train');
  const stem = part === 'test' ? 't10k' : 'train';
  const file = (kind: string): string => {
    const p = join(dir, `${stem}-${kind}`);
    if (existsSync(p)) return p;
    if (existsSync(p + '.gz')) return p + '.gz';
    throw new SpecError(
      `data.${role}: ${p}(.gz) not found${fmt === 'fashion-mnist' ? ' (install it: apt-get install dataset-fashion-mnist, or set data.' + role + '.path to a folder with the IDX files)' : ''}`,
    );
  };
  const im = readIdx(file('images-idx3-ubyte'));
  const lb = readIdx(file('labels-idx1-ubyte'));
  const n = Math.min(im.shape[0]!, s.limit ?? Infinity);
  const px = im.data.length / im.shape[0]!;
  // pixels scaled to [0, 1], as the MNIST loader does
  const x = new Float64Array(n * px);
  for (let j = 0; j < x.length; j++) x[j] = im.data[j]! / 255;
  return {
    x: { data: x, shape: [n, ...im.shape.slice(1)] },
    y: { data: Float64Array.from(lb.data.subarray(0, n)), shape: [n] },
    where: `${fmt} ${part} (${dir})`,
  };
}

async function readSource(s: DataSource, role: string): Promise<Raw> {
  const fmt = formatOf(s, role);
  let raw: Raw;
  if (fmt === 'csv') raw = readCsvSource(s, role);
  else if (fmt === 'mnist' || fmt === 'fashion-mnist') raw = readImageSet(s, role, fmt);
  else raw = await readArraySource(s, role, fmt);
  const n = raw.x.shape[0] ?? 0;
  if (raw.x.shape.length < 2)
    throw new SpecError(`data.${role}: the features (${raw.where}) have shape [${raw.x.shape}]; expected (samples, features...)`);
  if ((raw.y.shape[0] ?? 1) !== n || raw.y.shape.length > 2)
    throw new SpecError(
      `data.${role}: ${n} samples of features but labels of shape [${raw.y.shape}] (${raw.where}); expected (${n}) or (${n}, k)`,
    );
  if (n === 0) throw new SpecError(`data.${role}: no samples in ${raw.where}`);
  if (s.limit !== undefined && s.limit < n) {
    const w = raw.x.data.length / n,
      k = raw.y.data.length / n;
    raw.x = { data: raw.x.data.slice(0, s.limit * w), shape: [s.limit, ...raw.x.shape.slice(1)] };
    raw.y = { data: raw.y.data.slice(0, s.limit * k), shape: [s.limit, ...raw.y.shape.slice(1)] };
  }
  for (const [what, a] of [
    ['features', raw.x],
    ['labels', raw.y],
  ] as const) {
    const w = a.data.length / (a.shape[0] ?? 1);
    const j = a.data.findIndex((v) => !Number.isFinite(v));
    if (j >= 0) {
      const col = j % w;
      const name = what === 'features' && raw.names ? ` ('${raw.names[col]}')` : '';
      throw new SpecError(
        `data.${role}: ${raw.where}: ${what} of sample ${Math.floor(j / w)} (0-based), value ${col}${name}, is ${a.data[j]}; remove or impute non-finite values first`,
      );
    }
  }
  return raw;
}

/** The most classes a classification task may have: the output layer and one-hot targets are this wide. */
export const MAX_CLASSES = 65_536;

/** Class labels of `y` (a column of integers, or one-hot rows), checked. */
function labelsOf(y: NdArray, role: string, where: string): Int32Array {
  const n = y.shape[0]!;
  const k = y.data.length / n;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    if (k === 1) {
      const v = y.data[r]!;
      if (!Number.isInteger(v) || v < 0)
        throw new SpecError(
          `data.${role}: ${where}: label of sample ${r} is ${v}; classification labels must be integers 0, 1, … (use data.task: regression for real-valued targets)`,
        );
      if (v >= MAX_CLASSES)
        throw new SpecError(
          `data.${role}: ${where}: label of sample ${r} is ${v}; classification labels are class indices below ${MAX_CLASSES} (the most classes hgq trains); renumber the classes 0, 1, … or use data.task: regression`,
        );
      out[r] = v;
    } else {
      let best = -1,
        ones = 0;
      for (let c = 0; c < k; c++) {
        const v = y.data[r * k + c]!;
        if (v !== 0 && v !== 1)
          throw new SpecError(
            `data.${role}: ${where}: labels are ${k} wide but sample ${r} has ${v} at ${c}; give one integer label per sample or one-hot rows`,
          );
        if (v === 1) {
          ones++;
          best = c;
        }
      }
      if (ones !== 1) throw new SpecError(`data.${role}: ${where}: one-hot row of sample ${r} has ${ones} ones`);
      out[r] = best;
    }
  }
  return out;
}

function permutation(n: number, seed: number): Int32Array {
  const rng = mulberry32(seed);
  const p = Int32Array.from({ length: n }, (_, j) => j);
  for (let j = n - 1; j > 0; j--) {
    const r = Math.floor(rng() * (j + 1));
    const t = p[j]!;
    p[j] = p[r]!;
    p[r] = t;
  }
  return p;
}

interface Part {
  x: Float64Array;
  y: Float64Array;
  labels?: Int32Array;
  n: number;
}

function take(p: Part, idx: ArrayLike<number>, w: number, k: number): Part {
  const x = new Float64Array(idx.length * w),
    y = new Float64Array(idx.length * k);
  const labels = p.labels ? new Int32Array(idx.length) : undefined;
  for (let j = 0; j < idx.length; j++) {
    const r = idx[j]!;
    x.set(p.x.subarray(r * w, r * w + w), j * w);
    y.set(p.y.subarray(r * k, r * k + k), j * k);
    if (labels) labels[j] = p.labels![r]!;
  }
  return { x, y, n: idx.length, ...(labels ? { labels } : {}) };
}

/** Splits off `fraction` of `p` (after a seeded shuffle): [rest, part]. */
function splitOff(p: Part, fraction: number, seed: number, w: number, k: number, what: string): [Part, Part] {
  const nPart = Math.round(p.n * fraction);
  if (nPart < 1 || nPart >= p.n)
    throw new SpecError(
      `data.${what}_split: ${fraction} of ${p.n} samples leaves ${nPart} for ${what} and ${p.n - nPart} for training; give more data or another fraction`,
    );
  const perm = permutation(p.n, seed);
  return [take(p, perm.subarray(nPart), w, k), take(p, perm.subarray(0, nPart), w, k)];
}

/** Reads, checks, splits and preprocesses the data of `spec`. */
export async function loadRunData(spec: TrainSpec): Promise<RunData> {
  const d = spec.data;
  const roles = (['train', 'val', 'test'] as const).filter((r) => d[r] !== undefined);
  const raws: Partial<Record<'train' | 'val' | 'test', Raw>> = {};
  for (const r of roles) raws[r] = await readSource(d[r]!, r);
  const train = raws.train!;
  const sampleShape = train.x.shape.slice(1);
  const w = sampleShape.reduce((a, b) => a * b, 1);
  for (const r of roles) {
    const got = raws[r]!.x.shape.slice(1);
    if (got.join(',') !== sampleShape.join(','))
      throw new SpecError(
        `data.${r}: samples of shape [${got}] (${raws[r]!.where}), but the training samples are [${sampleShape}]`,
      );
  }

  // targets: one-hot classes, or regression targets
  let outputs: number;
  const parts: Partial<Record<'train' | 'val' | 'test', Part>> = {};
  if (d.task === 'classification') {
    const labels: Partial<Record<string, Int32Array>> = {};
    for (const r of roles) labels[r] = labelsOf(raws[r]!.y, r, raws[r]!.where);
    const trainMax = labels['train']!.reduce((a, b) => Math.max(a, b), 0);
    outputs =
      d.classes ??
      Math.max(
        trainMax + 1,
        raws.train!.y.data.length / raws.train!.x.shape[0]! > 1 ? raws.train!.y.data.length / raws.train!.x.shape[0]! : 0,
      );
    if (outputs < 2)
      throw new SpecError(`data.train: ${train.where}: every label is ${trainMax}; classification needs at least two classes`);
    for (const r of roles) {
      const bad = labels[r]!.findIndex((v) => v >= outputs);
      if (bad >= 0)
        throw new SpecError(
          `data.${r}: ${raws[r]!.where}: label of sample ${bad} is ${labels[r]![bad]}, out of range: ${d.classes !== undefined ? `data.classes is ${d.classes}` : `the training labels are 0..${outputs - 1}`} (set data.classes if some classes are absent from training)`,
        );
      const n = labels[r]!.length;
      const y = new Float64Array(n * outputs);
      for (let j = 0; j < n; j++) y[j * outputs + labels[r]![j]!] = 1;
      parts[r] = { x: raws[r]!.x.data, y, labels: labels[r]!, n };
    }
  } else {
    outputs = raws.train!.y.data.length / raws.train!.x.shape[0]!;
    for (const r of roles) {
      const n = raws[r]!.x.shape[0]!;
      const k = raws[r]!.y.data.length / n;
      if (k !== outputs) throw new SpecError(`data.${r}: ${k} targets per sample, the training data has ${outputs}`);
      parts[r] = { x: raws[r]!.x.data, y: raws[r]!.y.data, n };
    }
  }

  const origin = { train: train.where, val: raws.val?.where ?? '', test: raws.test?.where ?? '' };
  let tr = parts.train!;
  let test = parts.test,
    val = parts.val;
  if (!test) {
    [tr, test] = splitOff(tr, d.test_split, d.seed, w, outputs, 'test');
    origin.test = `${Math.round(d.test_split * 100)}% of ${basename(train.where)} (seed ${d.seed})`;
  }
  if (!val) {
    [tr, val] = splitOff(tr, d.val_split, d.seed + 1, w, outputs, 'val');
    origin.val = `${Math.round(d.val_split * 100)}% of ${basename(train.where)} (seed ${d.seed + 1})`;
  }

  const preprocess = fitPreprocess(d.preprocess, tr.x, tr.n, w, train.names);
  const finish = (p: Part): Split => {
    const x = Float32Array.from(p.x);
    applyPreprocess(preprocess, x);
    return { n: p.n, x, y: Float32Array.from(p.y), ...(p.labels ? { labels: p.labels } : {}) };
  };
  let inputShape = sampleShape;
  if (spec.model.input_shape) {
    const per = spec.model.input_shape.reduce((a, b) => a * b, 1);
    if (per !== w)
      throw new SpecError(
        `model.input_shape: [${spec.model.input_shape}] holds ${per} values, but each sample has ${w} ([${sampleShape}])`,
      );
    inputShape = spec.model.input_shape;
  }
  return {
    task: d.task,
    inputShape,
    outputs,
    ...(train.names ? { featureNames: train.names } : {}),
    train: finish(tr),
    val: finish(val),
    test: finish(test),
    preprocess,
    origin,
  };
}
