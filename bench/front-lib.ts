/**
 * What the hardware benches of a Pareto front share (bench/mnist-front.ts, bench/mnist-qor.ts): the
 * environment knobs that bound Yosys, a results file that a rerun resumes from, tracing a checkpoint to
 * a cached IR program, one Yosys run recorded as a row field, and the order that spreads over the front.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { dirname } from 'node:path';
import { synth } from '../src/eda/synth.ts';
import { hasTool } from '../src/eda/tools.ts';
import { analyzeProgram } from '../src/ir/cost.ts';
import { writeProgram } from '../src/ir/serialize.ts';
import { writeFileAtomic } from '../src/util/fs.ts';

export const r3 = (v: number): number => Math.round(v * 1000) / 1000;

/** Pearson correlation of paired samples (NaN for fewer than 3 pairs or zero variance). */
export function pearson(x: number[], y: number[]): number {
  const n = x.length;
  if (n < 3 || y.length !== n) return NaN;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let k = 0; k < n; k++) {
    sxy += (x[k]! - mx) * (y[k]! - my);
    sxx += (x[k]! - mx) ** 2;
    syy += (y[k]! - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/** Indices 0..n-1 in an order that covers the range early: ends, middle, then bisection of the gaps. */
export function spreadOrder(n: number): number[] {
  if (n <= 0) return [];
  const order = [0];
  if (n > 1) order.push(n - 1);
  let gaps: [number, number][] = [[0, n - 1]];
  while (order.length < n) {
    const next: [number, number][] = [];
    for (const [a, b] of gaps) {
      if (b - a < 2) continue;
      const m = Math.floor((a + b) / 2);
      order.push(m);
      next.push([a, m], [m, b]);
    }
    if (!next.length) break;
    gaps = next;
  }
  for (let k = 0; k < n; k++) if (!order.includes(k)) order.push(k);
  return order;
}

/** How much Yosys a bench may run: `${prefix}SYNTH=0`, `…MAX_SYNTH`, `…BUDGET_MIN`, `…YOSYS_TIMEOUT_MIN`. */
export interface SynthKnobs {
  synth: boolean;
  /** at most this many new Yosys runs */
  maxSynth: number;
  /** start no Yosys run after this many ms of the bench */
  budgetMs: number;
  /** per Yosys run */
  yosysTimeoutMs: number;
}

export function synthKnobs(prefix: string, defaultTimeoutMin: number): SynthKnobs {
  const env = (name: string): string | undefined => process.env[prefix + name];
  const knobs = {
    synth: env('SYNTH') !== '0',
    maxSynth: Number(env('MAX_SYNTH') ?? Infinity),
    budgetMs: Number(env('BUDGET_MIN') ?? Infinity) * 60_000,
    yosysTimeoutMs: Number(env('YOSYS_TIMEOUT_MIN') ?? defaultTimeoutMin) * 60_000,
  };
  for (const [k, v] of Object.entries({
    MAX_SYNTH: knobs.maxSynth,
    BUDGET_MIN: knobs.budgetMs,
    YOSYS_TIMEOUT_MIN: knobs.yosysTimeoutMs,
  }))
    if (!(v >= 0)) throw new Error(`${prefix}${k}="${env(k)}" must be a number >= 0`);
  if (knobs.synth && !hasTool('yosys'))
    throw new Error(`yosys is not installed (apt-get install yosys); or set ${prefix}SYNTH=0 for the table without synthesis`);
  return knobs;
}

/** Counts Yosys runs against the knobs' limits; `take()` says whether one more may start now. */
export class SynthGate {
  private runs = 0;
  private readonly t0 = performance.now();
  constructor(private readonly knobs: SynthKnobs) {}
  take(): boolean {
    if (!this.knobs.synth || this.runs >= this.knobs.maxSynth || performance.now() - this.t0 > this.knobs.budgetMs) return false;
    this.runs++;
    return true;
  }
}

/** Yosys and the tracer share a busy machine; children inherit the priority. */
export function niceSelf(): void {
  try {
    setPriority(process.pid, 10);
  } catch {
    /* not permitted: run at the current priority */
  }
}

/**
 * Rows keyed by checkpoint name, kept in a JSON file after every step. A cached row counts only while its
 * EBOPs equal the front's (another training run in the same folder makes other checkpoints). Saving merges
 * with what is on disk: a second bench process sharing the file (say one without Yosys tracing the rest of
 * the front) keeps the other's fields.
 */
export class RowCache<R extends { ebops: number }> {
  constructor(
    readonly file: string,
    private readonly header: Record<string, unknown>,
  ) {}

  private read(): Record<string, R> {
    return existsSync(this.file) ? (JSON.parse(readFileSync(this.file, 'utf8')) as { rows: Record<string, R> }).rows : {};
  }

  /** The cached row of `name` merged under `base` (base wins), or `base` when the cache has none for these EBOPs. */
  row(name: string, base: R): R {
    const prev = this.read()[name];
    return prev && prev.ebops === base.ebops ? { ...prev, ...base } : base;
  }

  save(rows: Map<string, R>): void {
    const disk = this.read();
    for (const [name, row] of rows) {
      const d = disk[name];
      if (d && d.ebops === row.ebops)
        for (const [k, v] of Object.entries(d))
          if ((row as Record<string, unknown>)[k] === undefined) (row as Record<string, unknown>)[k] = v;
    }
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileAtomic(this.file, JSON.stringify({ ...this.header, rows: Object.fromEntries(rows) }, null, 1) + '\n');
  }
}

export interface TraceFacts {
  /** EBOPs recomputed from the loaded checkpoint */
  ebops_loaded: number;
  ops: number;
  /** IR cost estimate: Σ adder bits (≈ LUTs) over the traced program */
  ir_cost: number;
  adder_depth: number;
  trace_seconds: number;
}

/** Traces the checkpoint folder `model` into `progFile` (IR JSON) and says what the program costs. */
export async function traceCheckpoint(model: string, progFile: string): Promise<TraceFacts> {
  const { traceModelPath } = await import('../src/app/trace-model.ts');
  const { exactEbops } = await import('../src/train/calibrate.ts');
  const tr = await traceModelPath(model);
  const ebops = exactEbops(tr.model).ebops;
  tr.model.dispose();
  const a = analyzeProgram(tr.program);
  mkdirSync(dirname(progFile), { recursive: true });
  writeProgram(progFile, tr.program);
  return {
    ebops_loaded: ebops,
    ops: tr.program.ops.length,
    ir_cost: a.totalCost,
    adder_depth: a.depth,
    trace_seconds: r3(tr.traceMs / 1000),
  };
}

export interface YosysFacts {
  lut: number;
  carry: number;
  ff: number;
  srl: number;
  depth: number;
  seconds: number;
}

/** Yosys 0.23 synth_xilinx (xc7) of the project in `prjDir`: the report, or the first line of the failure. */
export async function synthXc7(prjDir: string, timeoutMs: number): Promise<{ yosys: YosysFacts } | { yosys_error: string }> {
  try {
    const y = await synth(prjDir, { family: 'xc7', timeoutMs });
    return { yosys: { lut: y.lut, carry: y.carry, ff: y.ff, srl: y.srl, depth: y.depth, seconds: Math.round(y.seconds) } };
  } catch (err) {
    return { yosys_error: (err as Error).message.split('\n')[0] ?? 'Yosys failed' };
  }
}

/** One front checkpoint carried to hardware: what the MNIST front benches share (each adds its own facts). */
export interface HardwareRow {
  checkpoint: string;
  epoch: number;
  test_accuracy: number;
  val_accuracy: number;
  /** exact EBOPs after calibration (front.json) */
  ebops: number;
  /** the same, recomputed from the loaded checkpoint (must equal ebops) */
  ebops_loaded?: number;
  ops?: number;
  /** IR cost estimate: Σ adder bits (≈ LUTs) over the traced program */
  ir_cost?: number;
  adder_depth?: number;
  trace_seconds?: number;
  /** at latency cutoff 2 */
  stages?: number;
  latency_cycles?: number;
  yosys?: YosysFacts;
  yosys_error?: string;
}
