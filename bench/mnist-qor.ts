/**
 * `npm run bench -- mnist-qor [--quick]`: the quality of results of our best MNIST recipes (issue #14).
 * Trains examples/mnist-qor.yaml (784-32-10, the small designs) and examples/mnist-qor-wide.yaml
 * (784-128-10, the accurate ones), the same runs as `hgq train <spec>`, then for each Pareto checkpoint at or
 * under HGQ_QOR_MAX_EBOPS and at or above the recipe's least accuracy: traces it, writes the Verilog project
 * (latency cutoff 2), verifies it in Verilator on MNIST test images (the emulator's outputs are the
 * reference), and synthesizes it with Yosys (synth_xilinx xc7). Last line: `{"rows":[{test_accuracy, ebops,
 * yosys_lut, ff, latency_cycles, verified_vectors, mismatches, model, …}, …]}` sorted by EBOPs; rows without
 * Yosys have yosys_lut null.
 *
 * Everything is cached and a rerun resumes: a training run folder is reused when its spec is the same
 * (and resumed when it was killed), each row's trace/verification/Yosys result is kept in the results file
 * after each step. Checkpoints are processed cheapest first, then spread over the front (the small end is
 * where the bars are, and Yosys grows with the design). The process runs at nice 10, one tool at a time.
 *
 * `--quick` (or HGQ_QOR_QUICK=1): a tenth of the epochs (β schedule and Pareto start scaled), 1,000 verified
 * images, at most 2 Yosys runs per recipe: a smoke run of the whole path.
 * Environment: HGQ_QOR_SPEC (comma-separated spec files instead of the two recipes), HGQ_QOR_RUN (training
 * run folder; default $TMPDIR/hgq-mnist-qor/<spec name>[-quick]; with several specs, a folder of one run
 * folder per spec), HGQ_QOR_RESULTS (default <run>/../<spec name>-results.json; with several specs, one file
 * per spec beside it), HGQ_QOR_MAX_EBOPS (default 40000: bigger designs take Yosys tens of minutes),
 * HGQ_QOR_MIN_ACCURACY (default 0.92 for the small recipe, HGQ_QOR_SPEC files and quick runs, 0.965 for the
 * wide one: the front's tail of tiny, inaccurate designs is skipped), HGQ_QOR_VERIFY (test images per row, default
 * 2000), HGQ_QOR_SYNTH=0 (no Yosys), HGQ_QOR_MAX_SYNTH=N (at most N new Yosys runs), HGQ_QOR_BUDGET_MIN=M
 * (start no Yosys run after M minutes), HGQ_QOR_YOSYS_TIMEOUT_MIN (per run, default 30).
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeProject } from '../src/backends/project.ts';
import { verify } from '../src/eda/verify.ts';
import { readProgram } from '../src/ir/serialize.ts';
import {
  niceSelf,
  RowCache,
  SynthGate,
  spreadOrder,
  synthKnobs,
  synthXc7,
  traceCheckpoint,
  type HardwareRow,
} from './front-lib.ts';

export interface QorRow extends HardwareRow {
  /** the recipe's name (its spec's `name`) */
  model?: string;
  /** MNIST test images run through Verilator and compared with the emulator */
  verified_vectors?: number;
  mismatches?: number;
  verify_seconds?: number;
}

/** The bars of issue #14: test accuracy at most this many Yosys LUTs. */
export const QOR_BARS = [
  { accuracy: 0.97, lut: 10_000 },
  { accuracy: 0.95, lut: 3_000 },
] as const;

const QUICK_EPOCH_FRACTION = 0.1;

interface Recipe {
  file: string;
  minAccuracy: number;
}

/**
 * The recipes trained by default (examples/) and the least test accuracy of the checkpoints each carries to
 * hardware (HGQ_QOR_MIN_ACCURACY overrides it): the small end of the front, and the wider model for the 97 %
 * bar, whose front under 97 % the small recipe covers for fewer LUTs (and Yosys on each of its ~20 designs
 * of 5k–25k LUT would add most of an hour).
 */
const DEFAULT_SPECS: Recipe[] = [
  { file: 'mnist-qor.yaml', minAccuracy: 0.92 },
  { file: 'mnist-qor-wide.yaml', minAccuracy: 0.965 },
];

/** The window of HGQ_QOR_SPEC files and of quick runs: the small recipe's. */
const BROAD_MIN_ACCURACY = DEFAULT_SPECS[0]!.minAccuracy;

interface Spec {
  name?: string;
  training: {
    epochs: number;
    pareto_start?: number;
    beta: { schedule?: string; warmup?: number; pid?: { warmup?: number } };
  };
}

/** The spec at a tenth of its epochs, the β schedule's key points, warm-ups and Pareto start scaled along. */
export function quickSpec<S extends Spec>(spec: S): S {
  const scale = (e: number): number => Math.round(e * QUICK_EPOCH_FRACTION);
  const t = spec.training;
  const beta = { ...t.beta };
  if (beta.schedule !== undefined)
    beta.schedule = beta.schedule
      .split(',')
      .map((k) => k.trim().replace(/^(\d+)/, (e) => String(scale(Number(e)))))
      .join(',');
  if (beta.warmup !== undefined) beta.warmup = scale(beta.warmup);
  if (beta.pid?.warmup !== undefined) beta.pid = { ...beta.pid, warmup: scale(beta.pid.warmup) };
  const epochs = Math.max(4, scale(t.epochs));
  const training = { ...t, epochs, beta };
  if (t.pareto_start !== undefined) training.pareto_start = Math.min(scale(t.pareto_start), epochs - 1);
  return { ...spec, training };
}

/** Rows of the final line, the issue's fields first. */
export function qorLine(rows: QorRow[]): string {
  return JSON.stringify({
    rows: rows.map((r) => ({
      test_accuracy: r.test_accuracy,
      ebops: r.ebops,
      yosys_lut: r.yosys?.lut ?? null,
      ff: r.yosys?.ff ?? null,
      latency_cycles: r.latency_cycles ?? null,
      verified_vectors: r.verified_vectors ?? 0,
      mismatches: r.mismatches ?? null,
      model: r.model ?? null,
      checkpoint: r.checkpoint,
      carry4: r.yosys?.carry ?? null,
      ir_cost: r.ir_cost ?? null,
    })),
  });
}

/** Which bars the rows meet: a synthesized row at or above the accuracy, at or under the LUTs, verified with 0 mismatches on ≥ 1,000 vectors. */
export function barsMet(rows: QorRow[]): { accuracy: number; lut: number; met: QorRow | null }[] {
  return QOR_BARS.map((b) => ({
    ...b,
    met:
      rows.find(
        (r) =>
          r.test_accuracy >= b.accuracy &&
          r.yosys !== undefined &&
          r.yosys.lut <= b.lut &&
          (r.verified_vectors ?? 0) >= 1000 &&
          r.mismatches === 0,
      ) ?? null,
  }));
}

function markdownTable(rows: QorRow[]): string {
  const cell = (v: number | undefined): string => (v === undefined ? '–' : String(v));
  return [
    '| model | checkpoint | test acc % | EBOPs | IR cost | Yosys LUT | FF | CARRY4 | latency (cycles) | verified | mismatches |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.model ?? ''} | ${r.checkpoint} | ${(r.test_accuracy * 100).toFixed(2)} | ${r.ebops} | ${cell(r.ir_cost)} | ${cell(r.yosys?.lut)} | ${cell(r.yosys?.ff)} | ${cell(r.yosys?.carry)} | ${cell(r.latency_cycles)} | ${cell(r.verified_vectors)} | ${cell(r.mismatches)} |`,
    ),
  ].join('\n');
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}="${raw}" must be a positive integer`);
  return n;
}

/** Trains the spec into `runDir` unless the same spec's complete run is there (a killed one is resumed). */
async function trainOnce(specFile: string, quick: boolean, runDir: string): Promise<void> {
  const { loadSpecFile } = await import('../src/app/spec.ts');
  const { runTraining, specHash } = await import('../src/app/run.ts');
  const { readMarker } = await import('../src/util/fs.ts');
  const spec = quick ? quickSpec(loadSpecFile(specFile)) : loadSpecFile(specFile);
  const marker = readMarker(runDir);
  const same = marker?.['spec_hash'] === specHash(spec);
  if (same && marker?.['status'] === 'complete' && existsSync(join(runDir, 'front.json'))) {
    console.log(`training: reusing the complete run in ${runDir}`);
    return;
  }
  console.log(
    `training ${specFile}${quick ? ' (quick)' : ''}: ${spec.training.epochs} epochs into ${runDir}${same ? ' (resuming)' : ''} ...`,
  );
  const t0 = performance.now();
  await runTraining(spec, { out: runDir, resume: same, report: false });
  console.log(`training: ${((performance.now() - t0) / 60_000).toFixed(1)} min`);
}

/** The first `n` MNIST test images (pixels in [0, 1], the inputs of a `preprocess: none` run). */
async function testImages(n: number): Promise<Float64Array> {
  const { loadMnist } = await import('../src/data/mnist.ts');
  const { test } = loadMnist({ limit: { train: 1, val: 1, test: n } });
  return Float64Array.from(test.images);
}

/** The bench's settings, read once from the environment (see the file's header). */
interface QorSettings {
  quick: boolean;
  maxEbops: number;
  nVerify: number;
  images: Float64Array;
  gate: SynthGate;
  knobs: ReturnType<typeof synthKnobs>;
}

/** The recipes the bench trains: HGQ_QOR_SPEC (comma-separated spec files), else DEFAULT_SPECS. */
async function recipes(minAccuracy: number | null, quick: boolean): Promise<Recipe[]> {
  const env = process.env.HGQ_QOR_SPEC;
  const list =
    env !== undefined
      ? env.split(',').map((f) => ({ file: resolve(f.trim()), minAccuracy: BROAD_MIN_ACCURACY }))
      : DEFAULT_SPECS.map((r) => ({ ...r, file: join(import.meta.dirname, '..', 'examples', r.file) }));
  for (const r of list) if (!existsSync(r.file)) throw new Error(`HGQ_QOR_SPEC: ${r.file}: no such file`);
  const names = await Promise.all(list.map((r) => specName(r.file)));
  const twice = names.find((n, k) => names.indexOf(n) !== k);
  if (twice !== undefined)
    throw new Error(
      `HGQ_QOR_SPEC: two specs are named "${twice}": give each its own \`name\` (their run folders are named after it)`,
    );
  // a quick run's short training stays below the wide recipe's window: the smoke run takes every recipe's
  // checkpoints from 92 % so that each goes through the hardware path
  return list.map((r) => ({ ...r, minAccuracy: minAccuracy ?? (quick ? BROAD_MIN_ACCURACY : r.minAccuracy) }));
}

/** One recipe: train (or reuse) its run, then trace, verify and synthesize its chosen front checkpoints. */
/** A spec file's `name` (run folders and rows are named after it). */
async function specName(file: string): Promise<string> {
  return (await import('../src/app/spec.ts')).loadSpecFile(file).name ?? 'mnist-qor';
}

async function benchSpec(recipe: Recipe, several: boolean, o: QorSettings): Promise<QorRow[]> {
  const specFile = recipe.file;
  const minAccuracy = recipe.minAccuracy;
  const recipeName = await specName(specFile);
  const runName = `${recipeName}${o.quick ? '-quick' : ''}`;
  // HGQ_QOR_RUN / HGQ_QOR_RESULTS name one run's folders: with several recipes, each gets a subfolder
  const runRoot = process.env.HGQ_QOR_RUN;
  const runDir = resolve(
    runRoot === undefined ? join(tmpdir(), 'hgq-mnist-qor', runName) : several ? join(runRoot, runName) : runRoot,
  );
  const resultsEnv = process.env.HGQ_QOR_RESULTS;
  const resultsFile = resolve(
    resultsEnv === undefined
      ? join(runDir, '..', `${runName}-results.json`)
      : several
        ? resultsEnv.replace(/(\.json)?$/, `-${runName}.json`)
        : resultsEnv,
  );

  await trainOnce(specFile, o.quick, runDir);
  const front = (
    JSON.parse(readFileSync(join(runDir, 'front.json'), 'utf8')) as {
      checkpoints: { path: string; epoch: number; ebops: number; val: { accuracy: number }; test: { accuracy: number } }[];
    }
  ).checkpoints
    .slice()
    .sort((a, b) => a.ebops - b.ebops);
  const chosen = front.filter((c) => c.ebops <= o.maxEbops && c.test.accuracy >= minAccuracy);
  console.log(
    `${recipeName} front: ${front.length} checkpoints, ${chosen.length} at or under ${o.maxEbops} EBOPs and at or above ${minAccuracy} test accuracy (test accuracy ${chosen.map((c) => (c.test.accuracy * 100).toFixed(2)).join(', ')})`,
  );

  const cache = new RowCache<QorRow>(resultsFile, { run: runDir, spec: specFile });
  const name = (path: string): string => path.split('/').pop()!;
  const rows = new Map<string, QorRow>();
  for (const c of chosen)
    rows.set(
      name(c.path),
      cache.row(name(c.path), {
        checkpoint: name(c.path),
        model: recipeName,
        epoch: c.epoch,
        test_accuracy: c.test.accuracy,
        val_accuracy: c.val.accuracy,
        ebops: c.ebops,
      }),
    );
  const save = (): void => cache.save(rows);
  const work = join(resultsFile.replace(/\.json$/, ''), 'projects');
  // cheapest first, then spread: the bars are at the small end
  for (const k of spreadOrder(chosen.length)) {
    const row = rows.get(name(chosen[k]!.path))!;
    const prjDir = join(work, row.checkpoint);
    const progFile = join(work, `${row.checkpoint}.program.json`);
    const tag = `${recipeName}/${row.checkpoint}`;
    if (row.ir_cost === undefined || !existsSync(progFile)) {
      Object.assign(row, await traceCheckpoint(join(runDir, chosen[k]!.path), progFile));
      if (row.ebops_loaded !== row.ebops)
        console.log(`  warning: ${tag}: front.json says ${row.ebops} EBOPs, the loaded checkpoint has ${row.ebops_loaded}`);
      save();
      console.log(`  ${tag}: traced ${row.ops} ops, IR cost ${row.ir_cost} (${row.trace_seconds} s)`);
    }
    if (row.stages === undefined || !existsSync(join(prjDir, 'summary.json'))) {
      const s = writeProject(readProgram(progFile), prjDir, { latencyCutoff: 2, vectors: 0 });
      Object.assign(row, { stages: s.stages, latency_cycles: s.latency_cycles });
      delete row.verified_vectors;
      save();
    }
    if ((row.verified_vectors ?? 0) < o.nVerify) {
      const v = await verify(prjDir, { vectors: 0, data: o.images, simulator: 'verilator' });
      Object.assign(row, {
        verified_vectors: v.vectors,
        mismatches: v.mismatches,
        verify_seconds: Math.round(v.build_seconds + v.run_seconds),
      });
      save();
      console.log(`  ${tag}: Verilator ${v.vectors} test images, ${v.mismatches} mismatches (${row.verify_seconds} s)`);
    }
    if (row.yosys || !o.gate.take()) continue;
    console.log(`  ${tag}: Yosys xc7 (${row.ops} ops, nice 10) ...`);
    delete row.yosys_error;
    const r = await synthXc7(prjDir, o.knobs.yosysTimeoutMs);
    Object.assign(row, r);
    console.log(
      'yosys' in r
        ? `  ${tag}: LUT ${r.yosys.lut} FF ${r.yosys.ff} CARRY4 ${r.yosys.carry} (${r.yosys.seconds} s)`
        : `  ${tag}: Yosys failed: ${r.yosys_error}`,
    );
    save();
  }
  save();
  console.log(`\n${recipeName} (${specFile}${o.quick ? ', quick' : ''}; run ${runDir}; results ${resultsFile})\n`);
  return chosen.map((c) => rows.get(name(c.path))!);
}

export default async function main(): Promise<void> {
  const quick = process.argv.includes('--quick') || process.env.HGQ_QOR_QUICK === '1';
  const maxEbops = Number(process.env.HGQ_QOR_MAX_EBOPS ?? 40_000);
  if (!(maxEbops > 0)) throw new Error(`HGQ_QOR_MAX_EBOPS="${process.env.HGQ_QOR_MAX_EBOPS}" must be a positive number`);
  const minAccuracy = process.env.HGQ_QOR_MIN_ACCURACY === undefined ? null : Number(process.env.HGQ_QOR_MIN_ACCURACY);
  if (minAccuracy !== null && !(minAccuracy >= 0 && minAccuracy <= 1))
    throw new Error(`HGQ_QOR_MIN_ACCURACY="${process.env.HGQ_QOR_MIN_ACCURACY}" must be a fraction between 0 and 1`);
  const nVerify = positiveInt('HGQ_QOR_VERIFY', quick ? 1000 : 2000);
  if (nVerify > 10_000) throw new Error(`HGQ_QOR_VERIFY=${nVerify}: MNIST has 10,000 test images`);
  const specs = await recipes(minAccuracy, quick);
  if (quick && process.env.HGQ_QOR_MAX_SYNTH === undefined) process.env.HGQ_QOR_MAX_SYNTH = String(2 * specs.length);
  const knobs = synthKnobs('HGQ_QOR_', 30);
  niceSelf();
  const t0 = performance.now();
  const settings: QorSettings = {
    quick,
    maxEbops,
    nVerify,
    images: await testImages(nVerify),
    gate: new SynthGate(knobs),
    knobs,
  };

  const all: QorRow[] = [];
  for (const spec of specs) all.push(...(await benchSpec(spec, specs.length > 1, settings)));
  all.sort((a, b) => a.ebops - b.ebops);
  console.log(markdownTable(all));
  for (const b of barsMet(all))
    console.log(
      `bar ≥ ${(b.accuracy * 100).toFixed(0)}% at ≤ ${b.lut} LUT: ${b.met ? `met by ${b.met.model}/${b.met.checkpoint} (${(b.met.test_accuracy * 100).toFixed(2)}%, ${b.met.yosys!.lut} LUT)` : 'not met'}`,
    );
  console.log(`bench time ${((performance.now() - t0) / 60_000).toFixed(1)} min`);
  console.log(qorLine(all));
}
