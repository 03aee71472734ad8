/**
 * Training specs: read (YAML or JSON), checked against SPEC_SCHEMA with ajv (every error names the field path
 * and what is allowed), and resolved (defaults filled in) into the spec a run trains and records as spec.json.
 * `hgq train` flags become a spec here too, so both paths run the same code.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { definedEntries } from '../util/object.ts';
import { parseSchedule } from '../train/schedule.ts';
import { SPEC_SCHEMA } from './spec-schema.ts';

/** A bad spec, flag or data file: the message names the field or file and what is allowed (exit 2). */
export class SpecError extends Error {
  override name = 'SpecError';
}

export type Column = string | number;
export type Task = 'classification' | 'regression';

export interface DataSource {
  format?: 'csv' | 'npy' | 'npz' | 'hdf5' | 'idx' | 'mnist' | 'fashion-mnist';
  /** the file (CSV, NPZ, HDF5), or the folder of an IDX pair */
  path?: string;
  /** features: an NPY/IDX file, or the array's name inside an NPZ/HDF5 file */
  x?: string;
  /** labels or targets, like x */
  y?: string;
  /** CSV: feature columns (names or 0-based indices; default: every column but the label) */
  features?: Column[];
  /** CSV: the label column (classification) or target column(s) (regression) */
  label?: Column | Column[];
  /** mnist / fashion-mnist: which part of the set */
  part?: 'train' | 'test';
  /** keep only the first `limit` samples */
  limit?: number;
}

export interface LayerSpec {
  type: string;
  [arg: string]: unknown;
}

export interface TrainSpec {
  name?: string;
  out?: string;
  data: {
    task: Task;
    train: DataSource;
    val?: DataSource;
    test?: DataSource;
    val_split: number;
    test_split: number;
    seed: number;
    classes?: number;
    preprocess: 'standardize' | 'minmax' | 'none';
  };
  model: {
    input_shape?: number[];
    quantizer?: Record<string, Record<string, unknown>>;
    layers?: LayerSpec[];
    /** an MLP: hidden widths; the output layer (classes or targets wide) is added */
    hidden?: number[];
    activation?: 'relu' | 'linear';
    module?: string;
  };
  training: {
    epochs: number;
    batch_size: number;
    optimizer: {
      type: 'adam';
      lr: number;
      schedule: { type: 'constant' | 'cosine' | 'step'; min_lr?: number; every?: number; factor?: number };
    };
    beta: { schedule?: string; start: number; end: number; warmup?: number; pid?: PidSpec };
    engine: 'wasm' | 'tfjs';
    threads?: number;
    seed: number;
    quantize: boolean;
    pareto_start?: number;
    early_stopping?: { patience?: number; min_delta?: number; ebops_below?: number };
  };
}

export interface PidSpec {
  target_ebops: number;
  p?: number;
  i?: number;
  d?: number;
  warmup?: number;
  init_beta?: number;
  min_beta?: number;
  max_beta?: number;
}

let validator: ReturnType<Ajv['compile']> | null = null;

/** `/model/layers/2/units` → `model.layers[2].units` */
function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out || '(the spec)';
}

/** The schema node at an instance path (to list the allowed keys of an object). */
function schemaAt(instancePath: string): Record<string, unknown> | undefined {
  let node: Record<string, unknown> | undefined = SPEC_SCHEMA as unknown as Record<string, unknown>;
  for (const p of instancePath.split('/').slice(1)) {
    if (!node) return undefined;
    if (/^\d+$/.test(p)) node = node['items'] as Record<string, unknown> | undefined;
    else node = (node['properties'] as Record<string, Record<string, unknown>> | undefined)?.[p];
  }
  return node;
}

function describe(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys((schemaAt(e.instancePath)?.['properties'] as object | undefined) ?? {});
      return `${fieldPath(e.instancePath, String(params['additionalProperty']))}: unknown key; allowed keys here: ${allowed.join(', ')}`;
    }
    case 'required':
      return `${fieldPath(e.instancePath, String(params['missingProperty']))}: required`;
    case 'enum':
      return `${fieldPath(e.instancePath)}: must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'type':
      return `${fieldPath(e.instancePath)}: must be ${params['type'] === 'integer' ? 'an integer' : `a${/^[aeiou]/.test(String(params['type'])) ? 'n' : ''} ${params['type']}`}`;
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum':
    case 'exclusiveMaximum': {
      const node = schemaAt(e.instancePath);
      if (node?.['type'] === 'integer' && node['minimum'] === 1)
        return `${fieldPath(e.instancePath)}: must be a positive integer${node['maximum'] !== undefined ? ` <= ${node['maximum']}` : ''}`;
      if (node?.['exclusiveMinimum'] === 0 && node['exclusiveMaximum'] === 1)
        return `${fieldPath(e.instancePath)}: must be a fraction between 0 and 1 (exclusive)`;
      return `${fieldPath(e.instancePath)}: ${e.message}`;
    }
    case 'oneOf':
      if (e.instancePath === '/model')
        return 'model: give exactly one of layers (a list of layers), hidden (MLP widths) or module (a .mjs file building the model)';
      return `${fieldPath(e.instancePath)}: ${e.message}`;
    default:
      return `${fieldPath(e.instancePath)}: ${e.message}`;
  }
}

/** Every number in a parsed spec that is Infinity or NaN, with its field path (e.g. training.epochs). */
export function nonFiniteNumbers(v: unknown, path = ''): { path: string; value: number }[] {
  if (typeof v === 'number') return Number.isFinite(v) ? [] : [{ path: path || '(the spec)', value: v }];
  if (Array.isArray(v)) return v.flatMap((x, j) => nonFiniteNumbers(x, `${path}[${j}]`));
  if (typeof v === 'object' && v !== null)
    return Object.entries(v).flatMap(([k, x]) => nonFiniteNumbers(x, path ? `${path}.${k}` : k));
  return [];
}

/** Checks a spec object against the schema; throws SpecError listing every problem (the schema's wording made specific). */
export function validateSpec(raw: unknown, where = 'spec'): void {
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(SPEC_SCHEMA);
  // JSON.parse reads 1e400 as Infinity and YAML has .inf/.nan; ajv's `integer` and bounds let Infinity through
  const nonFinite = nonFiniteNumbers(raw);
  if (nonFinite.length > 0)
    throw new SpecError(`${where}: ${nonFinite.map((f) => `${f.path}: ${f.value} is not a finite number`).join('; ')}`);
  if (validator(raw)) return;
  const errors = validator.errors ?? [];
  // anyOf/oneOf report their branches too; keep the most specific message per field
  const msgs = [
    ...new Set(
      errors.filter((e) => e.keyword !== 'anyOf' && !(e.keyword === 'required' && e.schemaPath.includes('oneOf'))).map(describe),
    ),
  ];
  if (msgs.length === 0) msgs.push(...errors.map(describe));
  throw new SpecError(`${where}: ${msgs.length === 1 ? msgs[0] : `${msgs.length} problems:\n  ${msgs.join('\n  ')}`}`);
}

/** Reads a spec file (YAML or JSON by extension; YAML is a superset, so anything else is tried as YAML). */
export function readSpecFile(path: string): unknown {
  if (!existsSync(path)) throw new SpecError(`${path}: no such spec file`);
  if (!statSync(path).isFile()) throw new SpecError(`${path}: is a folder, not a spec file (.yaml or .json)`);
  const text = readFileSync(path, 'utf8');
  try {
    return path.toLowerCase().endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new SpecError(
      `${path}: not valid ${path.toLowerCase().endsWith('.json') ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`,
    );
  }
}

/** Makes every relative file path in the spec absolute against `base` (the spec file's folder), so spec.json stands alone. */
function absolutePaths(spec: TrainSpec, base: string): void {
  const abs = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  for (const s of [spec.data.train, spec.data.val, spec.data.test]) {
    if (!s) continue;
    s.path = abs(s.path);
    if (s.format !== 'npz' && s.format !== 'hdf5' && !(s.path && /\.(npz|h5|hdf5)$/i.test(s.path))) {
      s.x = abs(s.x);
      s.y = abs(s.y);
    }
  }
  spec.model.module = abs(spec.model.module);
  spec.out = abs(spec.out);
}

/** Validates and fills in defaults. `base` resolves relative paths (the spec file's folder; the working folder for flags). */
export function resolveSpec(raw: unknown, base: string, where = 'spec'): TrainSpec {
  validateSpec(raw, where);
  type Loose<T> = { [K in keyof T]?: T[K] extends object ? Loose<T[K]> : T[K] };
  const r = structuredClone(raw) as Partial<TrainSpec> & {
    data: Partial<TrainSpec['data']>;
    model: TrainSpec['model'];
    training?: Loose<TrainSpec['training']>;
  };
  const t: Loose<TrainSpec['training']> = r.training ?? {};
  const epochs = t.epochs ?? 30;
  const seed = t.seed ?? 1;
  const spec: TrainSpec = {
    ...(r.name !== undefined ? { name: r.name } : {}),
    ...(r.out !== undefined ? { out: r.out } : {}),
    data: {
      task: r.data.task ?? 'classification',
      train: r.data.train!,
      ...(r.data.val ? { val: r.data.val } : {}),
      ...(r.data.test ? { test: r.data.test } : {}),
      val_split: r.data.val_split ?? 0.2,
      test_split: r.data.test_split ?? 0.2,
      seed: r.data.seed ?? seed,
      ...(r.data.classes !== undefined ? { classes: r.data.classes } : {}),
      preprocess: r.data.preprocess ?? 'standardize',
    },
    model: r.model,
    training: {
      epochs,
      batch_size: t.batch_size ?? 256,
      optimizer: {
        type: 'adam',
        lr: t.optimizer?.lr ?? 3e-3,
        schedule: (t.optimizer?.schedule ?? { type: 'constant' }) as TrainSpec['training']['optimizer']['schedule'],
      },
      beta: { start: t.beta?.start ?? 1e-6, end: t.beta?.end ?? 1e-3, ...(t.beta ?? {}) } as TrainSpec['training']['beta'],
      engine: (t.engine ?? 'wasm') as 'wasm' | 'tfjs',
      ...(t.threads !== undefined ? { threads: t.threads } : {}),
      seed,
      quantize: t.quantize ?? true,
      ...(t.pareto_start !== undefined ? { pareto_start: t.pareto_start } : {}),
      ...(t.early_stopping ? { early_stopping: t.early_stopping as TrainSpec['training']['early_stopping'] } : {}),
    },
  };
  if (spec.model.layers) spec.model.layers = spec.model.layers.map((l) => ({ ...l }));
  if (spec.training.beta.schedule !== undefined && spec.training.beta.pid !== undefined)
    throw new SpecError(`${where}: training.beta: give either schedule or pid, not both`);
  const ps = spec.training.pareto_start;
  if (ps !== undefined && ps >= spec.training.epochs)
    throw new SpecError(
      `${where}: training.pareto_start ${ps} is not below training.epochs ${spec.training.epochs}: no checkpoint would be kept; lower it`,
    );
  if (spec.training.beta.schedule !== undefined) {
    try {
      parseSchedule(spec.training.beta.schedule); // a bad key point is refused before the run folder is made
    } catch (e) {
      throw new SpecError(`${where}: training.beta.schedule: ${(e as Error).message}`);
    }
  }
  if (spec.data.val && spec.data.train.format !== undefined && spec.data.val.format === undefined)
    spec.data.val.format = spec.data.train.format;
  if (spec.data.test && spec.data.train.format !== undefined && spec.data.test.format === undefined)
    spec.data.test.format = spec.data.train.format;
  absolutePaths(spec, base);
  return spec;
}

/** Reads, validates and resolves a spec file. */
export function loadSpecFile(path: string): TrainSpec {
  return resolveSpec(readSpecFile(path), dirname(resolve(path)), path);
}

/** The quick path's flags. */
export interface TrainFlags {
  data: string;
  test?: string;
  valSplit?: number;
  label: string;
  features?: string[];
  task: Task;
  hidden: number[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  betaStart?: number;
  betaEnd?: number;
  beta?: string;
  seed?: number;
  engine?: 'wasm' | 'tfjs';
  threads?: number;
  quantize?: boolean;
  preprocess?: 'standardize' | 'minmax' | 'none';
  out?: string;
}

/** Flags → a spec: an MLP (`hidden` widths, ReLU) on one table (CSV, or NPY/NPZ/HDF5 given by path). */
export function specFromFlags(f: TrainFlags): TrainSpec {
  const source = (path: string): DataSource => ({
    path,
    label: /^\d+$/.test(f.label) && !/\.csv$/i.test(path) ? Number(f.label) : f.label,
    ...(f.features ? { features: f.features } : {}),
  });
  const raw = {
    ...definedEntries({ out: f.out }),
    data: {
      task: f.task,
      train: source(f.data),
      ...definedEntries({
        test: f.test !== undefined ? source(f.test) : undefined,
        val_split: f.valSplit,
        preprocess: f.preprocess,
      }),
    },
    model: { hidden: f.hidden },
    training: definedEntries({
      epochs: f.epochs,
      batch_size: f.batchSize,
      optimizer: f.lr !== undefined ? { lr: f.lr } : undefined,
      beta:
        f.beta !== undefined || f.betaEnd !== undefined || f.betaStart !== undefined
          ? definedEntries({ schedule: f.beta, start: f.betaStart, end: f.betaEnd })
          : undefined,
      seed: f.seed,
      engine: f.engine,
      threads: f.threads,
      quantize: f.quantize,
    }),
  };
  return resolveSpec(raw, process.cwd(), 'flags');
}
