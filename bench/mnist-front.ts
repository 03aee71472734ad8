/**
 * `npm run bench -- mnist-front [FRONT_DIR]`: the hardware table of the MNIST demo's Pareto front (issue #6).
 * One row per front checkpoint: test accuracy and exact EBOPs (front.json, written by `hgq demo` after
 * calibration; re-computed from the loaded model as a check), the IR cost estimate (Σ adder bits of the
 * traced program, analyzeProgram) and adder depth, pipeline stages at latency cutoff 2, and Yosys 0.23
 * synth_xilinx xc7 LUT / CARRY4 / FF (SRL) of that pipelined design. Then the Pearson correlation of Yosys
 * LUTs with EBOPs (and with the IR cost). Markdown table, then one JSON line.
 *
 * Yosys takes minutes to tens of minutes per checkpoint (15k–32k ops), so every result is cached in a
 * results file after each step and a rerun resumes; checkpoints are processed in an order that spreads
 * over the front (cheapest, most expensive, middle, then bisecting). The whole process runs at nice 10
 * (Yosys inherits it), one Yosys at a time.
 *
 * FRONT_DIR (argument or HGQ_FRONT_DIR): front.json + the checkpoint directories.
 * Environment: HGQ_FRONT_RESULTS (results file; default FRONT_DIR/mnist-front-results.json),
 * HGQ_FRONT_WORK (projects; default $TMPDIR/hgq-mnist-front), HGQ_FRONT_SYNTH=0 (no Yosys),
 * HGQ_FRONT_MAX_SYNTH=N (at most N new Yosys runs), HGQ_FRONT_BUDGET_MIN=M (start no Yosys run after M
 * minutes), HGQ_FRONT_YOSYS_TIMEOUT_MIN (per run, default 90), HGQ_FRONT_ONLY=epoch-0059,epoch-0047,...
 * (process only these checkpoints, in this order; the table still lists every cached row).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { writeProject } from '../src/backends/project.ts';
import { synth } from '../src/eda/synth.ts';
import { hasTool } from '../src/eda/tools.ts';
import { analyzeProgram } from '../src/ir/cost.ts';
import { readProgram, writeProgram } from '../src/ir/serialize.ts';
import type { Program } from '../src/ir/types.ts';
import { writeFileAtomic } from '../src/util/fs.ts';

interface FrontEntry {
  path: string;
  val_accuracy: number;
  test_accuracy: number;
  ebops: number;
  epoch: number;
}

export interface FrontRow {
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
  yosys?: { lut: number; carry: number; ff: number; srl: number; depth: number; seconds: number };
  yosys_error?: string;
}

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

const r3 = (v: number): number => Math.round(v * 1000) / 1000;

export function markdownTable(rows: FrontRow[]): string {
  const head =
    '| epoch | test acc % | EBOPs (exact) | IR ops | IR cost (adder bits) | Yosys LUT | CARRY4 | FF | SRL | adder depth | stages @ cutoff 2 |';
  const sep = '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const cell = (v: number | undefined): string => (v === undefined ? '–' : String(v));
  const lines = rows.map(
    (r) =>
      `| ${r.epoch} | ${(r.test_accuracy * 100).toFixed(2)} | ${r.ebops} | ${cell(r.ops)} | ${cell(r.ir_cost)} | ${cell(r.yosys?.lut)} | ${cell(r.yosys?.carry)} | ${cell(r.yosys?.ff)} | ${cell(r.yosys?.srl)} | ${cell(r.adder_depth)} | ${cell(r.stages)} |`,
  );
  return [head, sep, ...lines].join('\n');
}

export default async function main(): Promise<void> {
  const given = process.argv[3] ?? process.env.HGQ_FRONT_DIR;
  if (given === undefined) throw new Error('give the --out folder of an `hgq demo` run (argument or HGQ_FRONT_DIR)');
  const frontDir = resolve(given);
  const frontFile = join(frontDir, 'front.json');
  if (!existsSync(frontFile))
    throw new Error(`${frontDir}: no front.json; give the --out directory of an \`hgq demo\` run (argument or HGQ_FRONT_DIR)`);
  const resultsFile = resolve(process.env.HGQ_FRONT_RESULTS ?? join(frontDir, 'mnist-front-results.json'));
  const work = resolve(process.env.HGQ_FRONT_WORK ?? join(tmpdir(), 'hgq-mnist-front'));
  const withSynth = process.env.HGQ_FRONT_SYNTH !== '0';
  if (withSynth && !hasTool('yosys'))
    throw new Error('yosys is not installed (apt-get install yosys); or set HGQ_FRONT_SYNTH=0 for the table without synthesis');
  const maxSynth = Number(process.env.HGQ_FRONT_MAX_SYNTH ?? Infinity);
  const budgetMs = Number(process.env.HGQ_FRONT_BUDGET_MIN ?? Infinity) * 60_000;
  const yosysTimeoutMs = Number(process.env.HGQ_FRONT_YOSYS_TIMEOUT_MIN ?? 90) * 60_000;
  try {
    setPriority(process.pid, 10); // Yosys and the tracer share a busy machine; children inherit it
  } catch {
    /* not permitted: run at the current priority */
  }
  const t0 = performance.now();

  // front.json holds the absolute paths of the demo run; the checkpoints sit next to it (the directory may have moved)
  const front = (JSON.parse(readFileSync(frontFile, 'utf8')) as FrontEntry[]).slice().sort((a, b) => a.ebops - b.ebops);
  const cached: Record<string, FrontRow> = existsSync(resultsFile)
    ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as { rows: Record<string, FrontRow> }).rows
    : {};
  const rows = new Map<string, FrontRow>();
  for (const e of front) {
    const name = basename(e.path);
    const prev = cached[name];
    const base: FrontRow = {
      checkpoint: name,
      epoch: e.epoch,
      test_accuracy: e.test_accuracy,
      val_accuracy: e.val_accuracy,
      ebops: e.ebops,
    };
    rows.set(name, prev && prev.ebops === e.ebops ? { ...prev, ...base } : base);
  }
  // Merge with what is on disk before writing: a second run (say HGQ_FRONT_SYNTH=0 tracing the rest of the
  // front while this one waits on Yosys) may share the results file; each keeps the other's fields.
  const save = (): void => {
    const disk: Record<string, FrontRow> = existsSync(resultsFile)
      ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as { rows: Record<string, FrontRow> }).rows
      : {};
    for (const [name, row] of rows) {
      const d = disk[name];
      if (d && d.ebops === row.ebops)
        for (const [k, v] of Object.entries(d))
          if ((row as unknown as Record<string, unknown>)[k] === undefined) (row as unknown as Record<string, unknown>)[k] = v;
    }
    writeFileAtomic(resultsFile, JSON.stringify({ front: frontDir, rows: Object.fromEntries(rows) }, null, 1) + '\n');
  };

  const only = process.env.HGQ_FRONT_ONLY?.split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const todo = only
    ? only.map((name) => {
        const k = front.findIndex((e) => basename(e.path) === name);
        if (k < 0)
          throw new Error(
            `HGQ_FRONT_ONLY: ${name} is not a checkpoint of ${frontFile} (names: ${front.map((e) => basename(e.path)).join(', ')})`,
          );
        return k;
      })
    : spreadOrder(front.length);
  let synthRuns = 0;
  for (const k of todo) {
    const e = front[k]!;
    const name = basename(e.path);
    const row = rows.get(name)!;
    const model = join(frontDir, name);
    const prjDir = join(work, basename(frontDir), name);
    const progFile = join(work, basename(frontDir), `${name}.program.json`);
    if (row.ir_cost === undefined || !existsSync(progFile)) {
      const { traceModelPath } = await import('../src/app/trace-model.ts');
      const { exactEbops } = await import('../src/train/calibrate.ts');
      const tr = await traceModelPath(model);
      row.ebops_loaded = exactEbops(tr.model).ebops;
      tr.model.dispose();
      if (row.ebops_loaded !== row.ebops)
        console.log(`  warning: ${name}: front.json says ${row.ebops} EBOPs, the loaded checkpoint has ${row.ebops_loaded}`);
      const a = analyzeProgram(tr.program);
      Object.assign(row, {
        ops: tr.program.ops.length,
        ir_cost: a.totalCost,
        adder_depth: a.depth,
        trace_seconds: r3(tr.traceMs / 1000),
      });
      mkdirSync(join(work, basename(frontDir)), { recursive: true });
      writeProgram(progFile, tr.program);
      save();
      console.log(`  ${name}: traced ${row.ops} ops, IR cost ${row.ir_cost}, depth ${row.adder_depth} (${row.trace_seconds} s)`);
    }
    let program: Program | undefined;
    if (row.stages === undefined || !existsSync(join(prjDir, 'summary.json'))) {
      program = readProgram(progFile);
      const s = writeProject(program, prjDir, { latencyCutoff: 2, vectors: 0 });
      Object.assign(row, { stages: s.stages, latency_cycles: s.latency_cycles });
      save();
    }
    if (!withSynth || row.yosys || synthRuns >= maxSynth || performance.now() - t0 > budgetMs) continue;
    console.log(`  ${name}: Yosys xc7 (${row.ops} ops, nice 10) ...`);
    synthRuns++;
    try {
      const y = await synth(prjDir, { family: 'xc7', timeoutMs: yosysTimeoutMs });
      row.yosys = { lut: y.lut, carry: y.carry, ff: y.ff, srl: y.srl, depth: y.depth, seconds: Math.round(y.seconds) };
      delete row.yosys_error;
      console.log(`  ${name}: LUT ${y.lut} CARRY4 ${y.carry} FF ${y.ff} SRL ${y.srl} (${Math.round(y.seconds)} s)`);
    } catch (err) {
      row.yosys_error = (err as Error).message.split('\n')[0];
      console.log(`  ${name}: Yosys failed: ${row.yosys_error}`);
    }
    save();
  }

  save();
  const all = front.map((e) => rows.get(basename(e.path))!);
  const syn = all.filter((r) => r.yosys);
  const corrEbops = pearson(
    syn.map((r) => r.ebops),
    syn.map((r) => r.yosys!.lut),
  );
  const corrCost = pearson(
    syn.map((r) => r.ir_cost!),
    syn.map((r) => r.yosys!.lut),
  );
  const traced = all.filter((r) => r.ir_cost !== undefined);
  const corrIr = pearson(
    traced.map((r) => r.ebops),
    traced.map((r) => r.ir_cost!),
  );
  console.log(
    `\nMNIST demo front (${frontDir}): ${all.length} checkpoints, ${syn.length} synthesized (Yosys 0.23 synth_xilinx xc7, latency cutoff 2)\n`,
  );
  console.log(markdownTable(all));
  console.log(
    `\nPearson r(Yosys LUT, EBOPs) = ${corrEbops.toFixed(4)}; r(Yosys LUT, IR cost) = ${corrCost.toFixed(4)} over ${syn.length} checkpoints`,
  );
  console.log(`Pearson r(IR cost, EBOPs) = ${corrIr.toFixed(4)} over ${traced.length} traced checkpoints`);
  console.log(
    JSON.stringify({
      front: frontDir,
      results: resultsFile,
      checkpoints: all.length,
      synthesized: syn.length,
      pearson_lut_ebops: Number.isNaN(corrEbops) ? null : r3(corrEbops),
      pearson_lut_ir_cost: Number.isNaN(corrCost) ? null : r3(corrCost),
      pearson_ir_cost_ebops: Number.isNaN(corrIr) ? null : r3(corrIr),
      rows: all,
    }),
  );
}
