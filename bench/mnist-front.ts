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
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { writeProject } from '../src/backends/project.ts';
import { readProgram } from '../src/ir/serialize.ts';
import {
  niceSelf,
  pearson,
  r3,
  RowCache,
  SynthGate,
  spreadOrder,
  synthKnobs,
  synthXc7,
  traceCheckpoint,
  type HardwareRow,
} from './front-lib.ts';

interface FrontEntry {
  path: string;
  val_accuracy: number;
  test_accuracy: number;
  ebops: number;
  epoch: number;
}

export type FrontRow = HardwareRow;

export { pearson, spreadOrder };

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
  const knobs = synthKnobs('HGQ_FRONT_', 90);
  niceSelf();

  // front.json holds the absolute paths of the demo run; the checkpoints sit next to it (the directory may have moved)
  const front = (JSON.parse(readFileSync(frontFile, 'utf8')) as FrontEntry[]).slice().sort((a, b) => a.ebops - b.ebops);
  const cache = new RowCache<FrontRow>(resultsFile, { front: frontDir });
  const rows = new Map<string, FrontRow>();
  for (const e of front) {
    const name = basename(e.path);
    const base: FrontRow = {
      checkpoint: name,
      epoch: e.epoch,
      test_accuracy: e.test_accuracy,
      val_accuracy: e.val_accuracy,
      ebops: e.ebops,
    };
    rows.set(name, cache.row(name, base));
  }
  const save = (): void => cache.save(rows);

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
  const gate = new SynthGate(knobs);
  for (const k of todo) {
    const e = front[k]!;
    const name = basename(e.path);
    const row = rows.get(name)!;
    const prjDir = join(work, basename(frontDir), name);
    const progFile = join(work, basename(frontDir), `${name}.program.json`);
    if (row.ir_cost === undefined || !existsSync(progFile)) {
      Object.assign(row, await traceCheckpoint(join(frontDir, name), progFile));
      if (row.ebops_loaded !== row.ebops)
        console.log(`  warning: ${name}: front.json says ${row.ebops} EBOPs, the loaded checkpoint has ${row.ebops_loaded}`);
      save();
      console.log(`  ${name}: traced ${row.ops} ops, IR cost ${row.ir_cost}, depth ${row.adder_depth} (${row.trace_seconds} s)`);
    }
    if (row.stages === undefined || !existsSync(join(prjDir, 'summary.json'))) {
      const s = writeProject(readProgram(progFile), prjDir, { latencyCutoff: 2, vectors: 0 });
      Object.assign(row, { stages: s.stages, latency_cycles: s.latency_cycles });
      save();
    }
    if (row.yosys || !gate.take()) continue;
    console.log(`  ${name}: Yosys xc7 (${row.ops} ops, nice 10) ...`);
    delete row.yosys_error;
    const r = await synthXc7(prjDir, knobs.yosysTimeoutMs);
    Object.assign(row, r);
    if ('yosys' in r)
      console.log(
        `  ${name}: LUT ${r.yosys.lut} CARRY4 ${r.yosys.carry} FF ${r.yosys.ff} SRL ${r.yosys.srl} (${r.yosys.seconds} s)`,
      );
    else console.log(`  ${name}: Yosys failed: ${r.yosys_error}`);
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
