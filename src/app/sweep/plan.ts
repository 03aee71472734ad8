/**
 * A sweep file and the trials it stands for (docs/sweep.md): a base spec, axes over any spec field (grid
 * values, or random choices drawn with a seed), seeds, and a trial budget. Pure: the same file always gives
 * the same trials with the same ids, on every machine, so a sweep can be re-run, resumed or spread over
 * workers without any coordination beyond the ids.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { mulberry32 } from '../../util/random.ts';
import { loadSpecFile, nonFiniteNumbers, resolveSpec, SpecError, validateSpec } from '../spec.ts';

/** A sweep file that cannot be used: exit 2 in the CLI, naming the field. */
export class SweepFileError extends Error {
  override name = 'SweepFileError';
}

export type AxisSpec =
  | unknown[]
  | { choice: unknown[] }
  | { uniform: [number, number] }
  | { loguniform: [number, number] }
  | { int: [number, number] };

export interface SweepFile {
  /** the spec every trial starts from: a path (relative to the sweep file) or the spec itself */
  base: string | Record<string, unknown>;
  /** spec field path (`training.lr`, `model.layers[0].units`) → values (a grid axis) or a random choice */
  axes?: Record<string, AxisSpec>;
  /** every configuration runs once per seed (written to `training.seed`); default [0] */
  seeds?: number[];
  /** most trials to run; a larger grid is subsampled (seeded), random axes draw this many */
  budget?: number;
  /** seed of the random draws and the subsampling (default 0) */
  sample_seed?: number;
  /** shared folder where trials write their run folders (default OUT/trials); every worker must reach it */
  store?: string;
  /** threads each trial trains with (default 1: trials, not threads, use the cores) */
  threads_per_trial?: number;
}

export interface Trial {
  /** stable id: a hash of the trial's overrides and seed */
  id: string;
  /** field path → value set on the base spec */
  overrides: Record<string, unknown>;
  seed: number;
  /** the full spec this trial trains */
  spec: Record<string, unknown>;
}

export interface SweepPlan {
  /** stable id of the whole sweep (its trials), used to name the queue's jobs */
  id: string;
  trials: Trial[];
  /** absolute path of the trial store */
  store: string;
}

const numberPair = { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 };
const SWEEP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['base'],
  properties: {
    base: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'object' }] },
    axes: {
      type: 'object',
      additionalProperties: {
        anyOf: [
          { type: 'array', minItems: 1 },
          {
            type: 'object',
            additionalProperties: false,
            required: ['choice'],
            properties: { choice: { type: 'array', minItems: 1 } },
          },
          { type: 'object', additionalProperties: false, required: ['uniform'], properties: { uniform: numberPair } },
          { type: 'object', additionalProperties: false, required: ['loguniform'], properties: { loguniform: numberPair } },
          {
            type: 'object',
            additionalProperties: false,
            required: ['int'],
            properties: { int: { type: 'array', items: { type: 'integer' }, minItems: 2, maxItems: 2 } },
          },
        ],
      },
    },
    seeds: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 },
    budget: { type: 'integer', minimum: 1, maximum: 100000 },
    sample_seed: { type: 'integer', minimum: 0 },
    store: { type: 'string', minLength: 1 },
    threads_per_trial: { type: 'integer', minimum: 1, maximum: 256 },
  },
} as const;

const validateSweep = new Ajv({ allErrors: true, strict: false }).compile(SWEEP_SCHEMA);

/** Reads and checks a sweep file (YAML or JSON); relative paths in it are resolved against its folder. */
export function readSweepFile(path: string): { sweep: SweepFile; base: Record<string, unknown>; dir: string } {
  if (!existsSync(path)) throw new SweepFileError(`${path}: no such file`);
  const sweep = parseSpecText(readFileSync(path, 'utf8'), path) as SweepFile;
  const nonFinite = nonFiniteNumbers(sweep);
  if (nonFinite.length > 0)
    throw new SweepFileError(`${path}: ${nonFinite.map((f) => `${f.path}: ${f.value} is not a finite number`).join('; ')}`);
  if (!validateSweep(sweep)) {
    const msgs = (validateSweep.errors ?? [])
      .slice(0, 5)
      .map(
        (e) =>
          `${e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(top level)'}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` '${String(e.params.additionalProperty)}' (allowed: base, axes, seeds, budget, sample_seed, store, threads_per_trial)` : ''}`,
      );
    throw new SweepFileError(`${path}: ${msgs.join('; ')}`);
  }
  const dir = dirname(resolve(path));
  // the base is resolved like any spec (defaults filled in, file paths made absolute), so trials run from anywhere
  let base: Record<string, unknown>;
  try {
    if (typeof sweep.base === 'string')
      base = loadSpecFile(isAbsolute(sweep.base) ? sweep.base : resolve(dir, sweep.base)) as unknown as Record<string, unknown>;
    else base = resolveSpec(sweep.base, dir, `${path}: base`) as unknown as Record<string, unknown>;
  } catch (e) {
    if (e instanceof SpecError) throw new SweepFileError(`${path}: base: ${e.message}`);
    throw e;
  }
  for (const [axis, spec] of Object.entries(sweep.axes ?? {})) checkAxis(axis, spec, path);
  return { sweep, base, dir };
}

function parseSpecText(text: string, path: string): unknown {
  try {
    return path.toLowerCase().endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new SweepFileError(
      `${path}: not valid ${path.toLowerCase().endsWith('.json') ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`,
    );
  }
}

function checkAxis(axis: string, spec: AxisSpec, path: string): void {
  parseFieldPath(axis, path);
  if (Array.isArray(spec)) return;
  const range = 'uniform' in spec ? spec.uniform : 'loguniform' in spec ? spec.loguniform : 'int' in spec ? spec.int : null;
  if (range && !(range[0] <= range[1]))
    throw new SweepFileError(`${path}: axes.${axis}: the range [${range.join(', ')}] is empty; write [low, high]`);
  if ('loguniform' in spec && !(spec.loguniform[0] > 0))
    throw new SweepFileError(`${path}: axes.${axis}: loguniform needs a positive low end`);
}

type PathToken = string | number;

/** `model.layers[0].units` → ['model', 'layers', 0, 'units']. */
export function parseFieldPath(path: string, where = 'axes'): PathToken[] {
  const tokens: PathToken[] = [];
  const re = /([A-Za-z_][\w-]*)|\[(\d+)\]|(\.)/gy;
  let expectName = true;
  let m: RegExpExecArray | null;
  while (re.lastIndex < path.length && (m = re.exec(path))) {
    if (m[1] !== undefined && expectName) {
      tokens.push(m[1]);
      expectName = false;
    } else if (m[2] !== undefined && !expectName) tokens.push(Number(m[2]));
    else if (m[3] !== undefined && !expectName) expectName = true;
    else break;
  }
  if (re.lastIndex !== path.length || expectName || tokens.length === 0)
    throw new SweepFileError(`${where}: '${path}' is not a spec field path (write e.g. training.lr or model.layers[0].units)`);
  return tokens;
}

/** Sets `path` in `spec` (in place). Objects on the way are created; list indices must exist in the base spec. */
export function setField(spec: Record<string, unknown>, path: string, value: unknown): void {
  const tokens = parseFieldPath(path);
  let o: unknown = spec;
  for (let j = 0; j < tokens.length - 1; j++) {
    const t = tokens[j]!;
    const next = (o as Record<string | number, unknown>)[t];
    if (typeof t === 'number' && (!Array.isArray(o) || t >= o.length))
      throw new SweepFileError(`axes: ${path}: the base spec has no element ${t} there`);
    if (next === undefined || next === null) {
      if (typeof tokens[j + 1] === 'number')
        throw new SweepFileError(`axes: ${path}: the base spec has no list at ${tokens.slice(0, j + 1).join('.')}`);
      (o as Record<string | number, unknown>)[t] = {};
    } else if (typeof next !== 'object')
      throw new SweepFileError(`axes: ${path}: ${tokens.slice(0, j + 1).join('.')} is a value, not a mapping or list`);
    o = (o as Record<string | number, unknown>)[t];
  }
  const last = tokens.at(-1)!;
  if (typeof last === 'number' && (!Array.isArray(o) || last >= o.length))
    throw new SweepFileError(`axes: ${path}: the base spec has no element ${last} there`);
  (o as Record<string | number, unknown>)[last] = value;
}

function draw(spec: Exclude<AxisSpec, unknown[]>, rand: () => number): unknown {
  if ('choice' in spec) return spec.choice[Math.floor(rand() * spec.choice.length)];
  if ('uniform' in spec) return spec.uniform[0] + rand() * (spec.uniform[1] - spec.uniform[0]);
  if ('loguniform' in spec)
    return Math.exp(Math.log(spec.loguniform[0]) + rand() * (Math.log(spec.loguniform[1]) - Math.log(spec.loguniform[0])));
  return spec.int[0] + Math.floor(rand() * (spec.int[1] - spec.int[0] + 1));
}

/** Every combination of the grid axes, in file order (first axis slowest). */
function gridPoints(grid: [string, unknown[]][]): Record<string, unknown>[] {
  let points: Record<string, unknown>[] = [{}];
  for (const [axis, values] of grid) points = points.flatMap((p) => values.map((v) => ({ ...p, [axis]: v })));
  return points;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

export function hashOf(v: unknown, length = 12): string {
  return createHash('sha256').update(canonical(v)).digest('hex').slice(0, length);
}

/** The trials of a sweep: grid × random draws × seeds, capped by the budget (seeded subsample). */
export function planSweep(sweep: SweepFile, base: Record<string, unknown>, opts: { out: string; dir: string }): SweepPlan {
  const axes = Object.entries(sweep.axes ?? {});
  const grid = axes.filter((a): a is [string, unknown[]] => Array.isArray(a[1]));
  const random = axes.filter((a): a is [string, Exclude<AxisSpec, unknown[]>] => !Array.isArray(a[1]));
  const seeds = sweep.seeds ?? [0];
  const rand = mulberry32(sweep.sample_seed ?? 0);
  const points = gridPoints(grid);
  // with random axes, the budget says how many draws; each draw takes the next grid point in turn
  const configs =
    random.length === 0
      ? points
      : Array.from({ length: Math.max(1, Math.ceil((sweep.budget ?? points.length * seeds.length) / seeds.length)) }, (_, j) => {
          const c = { ...points[j % points.length]! };
          for (const [axis, spec] of random) c[axis] = draw(spec, rand);
          return c;
        });
  let combos = configs.flatMap((overrides) => seeds.map((seed) => ({ overrides, seed })));
  if (sweep.budget !== undefined && combos.length > sweep.budget) combos = seededSample(combos, sweep.budget, rand);
  const threads = sweep.threads_per_trial ?? 1;
  const trials = combos.map(({ overrides, seed }) => {
    const spec = structuredClone(base);
    for (const [axis, value] of Object.entries(overrides)) setField(spec, axis, value);
    setField(spec, 'training.seed', seed);
    setField(spec, 'training.threads', threads);
    const id = `t${hashOf({ overrides, seed, base })}`;
    try {
      validateSpec(
        spec,
        `trial ${id} (${
          Object.entries(overrides)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
            .join(', ') || 'base'
        }, seed ${seed})`,
      );
    } catch (e) {
      if (e instanceof SpecError) throw new SweepFileError(e.message);
      throw e;
    }
    return { id, overrides, seed, spec };
  });
  const ids = new Set(trials.map((t) => t.id));
  if (ids.size !== trials.length) throw new SweepFileError('two trials of the sweep are the same (an axis lists a value twice?)');
  const store = sweep.store
    ? isAbsolute(sweep.store)
      ? sweep.store
      : resolve(opts.dir, sweep.store)
    : resolve(opts.out, 'trials');
  return { id: `s${hashOf({ trials: trials.map((t) => t.id), store })}`, trials, store };
}

/** k of the items, in their original order, chosen without replacement. */
function seededSample<T>(items: T[], k: number, rand: () => number): T[] {
  const idx = items.map((_, j) => j);
  for (let j = idx.length - 1; j > 0; j--) {
    const r = Math.floor(rand() * (j + 1));
    [idx[j], idx[r]] = [idx[r]!, idx[j]!];
  }
  return idx
    .slice(0, k)
    .sort((a, b) => a - b)
    .map((j) => items[j]!);
}
