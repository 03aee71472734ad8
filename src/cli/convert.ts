/**
 * `hgq convert <program.json|model> <out-dir>`: writes a hardware project (RTL or HLS sources, testbenches,
 * vectors, Vivado/Vitis TCL, summary.json) and optionally checks it in a simulator against the emulator.
 * A model input (directory or .keras) is traced on the way: src/app/convert-input.ts.
 */
import { existsSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { HdlFormat, Summary } from '../backends/project.ts';
import type { Simulator } from '../eda/verify.ts';
import type { StagedDir } from '../util/fs.ts';
import { CliError, UsageError } from './errors.ts';
import { decimal } from './numbers.ts';

function intOpt(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = decimal(v);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} "${v}" must be an integer >= ${min}`);
  return n;
}

function numOpt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = decimal(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} "${v}" must be a positive number`);
  return n;
}

interface ConvertOpts {
  format: string;
  latencyCutoff?: string;
  clockPeriod?: string;
  part?: string;
  top?: string;
  reset?: boolean;
  vectors?: string;
  validate?: string;
  verify?: string;
  simulator?: string;
  data?: string;
  apInclude?: string;
  json?: boolean;
}

/**
 * Raw input samples from CSV/NPY (batch × nIn), checked against the program's input size. A CSV with a
 * header gives the columns a model trained by `hgq train` was fitted on (its preprocess.json names them).
 */
async function readData(path: string, nIn: number, modelPath: string): Promise<Float64Array> {
  const { readCsv } = await import('../data/csv.ts');
  const { readNpy } = await import('../data/npy.ts');
  const { preprocessOfModel, selectFeatureColumns } = await import('../app/preprocess.ts');
  let arr;
  try {
    arr = path.toLowerCase().endsWith('.npy')
      ? readNpy(path)
      : selectFeatureColumns(readCsv(path), preprocessOfModel(modelPath), path);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const per = arr.shape.length <= 1 ? (nIn === 1 ? 1 : arr.data.length) : arr.shape.slice(1).reduce((a, b) => a * b, 1);
  if (per !== nIn || arr.data.length % nIn !== 0)
    throw new UsageError(
      `${path}: the program takes ${nIn} input values per sample, the data has ${per} (shape [${arr.shape.join(', ')}])`,
    );
  for (let k = 0; k < arr.data.length; k++)
    if (!Number.isFinite(arr.data[k]!))
      throw new UsageError(`${path}: value ${k} is ${arr.data[k]} (inputs must be finite numbers)`);
  return arr.data;
}

/** Checks every option before any long work; returns them parsed. */
async function parseConvertOptions(o: ConvertOpts) {
  const format = o.format.toLowerCase() as HdlFormat;
  if (!['verilog', 'vhdl', 'hls'].includes(format))
    throw new UsageError(`--format "${o.format}" is not one of verilog, vhdl, hls`);
  const cutoff = o.latencyCutoff === undefined ? 0 : decimal(o.latencyCutoff);
  if (!Number.isFinite(cutoff) || cutoff < 0)
    throw new UsageError(`--latency-cutoff "${o.latencyCutoff}" must be a number >= 0 (0 = combinational)`);
  const clk = numOpt(o.clockPeriod, '--clock-period');
  const { vectorCountProblem } = await import('../backends/vectors.ts');
  const counted = (v: string | undefined, flag: string): number | undefined => {
    const n = intOpt(v, flag, 1);
    const why = n === undefined ? null : vectorCountProblem(n, flag);
    if (why) throw new UsageError(why);
    return n;
  };
  const vectors = counted(o.vectors, '--vectors');
  const validateN = counted(o.validate, '--validate');
  const verifyN = counted(o.verify, '--verify');
  const { partNameProblem, topNameProblem } = await import('../backends/project.ts');
  // written into the Vivado/Vitis TCL: a strict pattern, never quoted text
  const badPart = o.part === undefined ? null : partNameProblem(o.part);
  if (badPart) throw new UsageError(`--part: ${badPart}`);
  const badTop = o.top === undefined ? null : topNameProblem(o.top);
  if (badTop) throw new UsageError(`--top: ${badTop}`);
  if (o.simulator !== undefined && !['verilator', 'icarus', 'ghdl'].includes(o.simulator))
    throw new UsageError(`--simulator "${o.simulator}" is not one of verilator, icarus, ghdl`);
  if (o.simulator !== undefined && verifyN === undefined)
    throw new UsageError('--simulator chooses the simulator of --verify N; add --verify');
  const apInclude = o.apInclude ?? process.env.HGQ_AP_INCLUDE;
  let simulator: Simulator | undefined;
  if (verifyN !== undefined) {
    const { pickSimulator, simulatorMismatch, SIMULATOR_TOOLS } = await import('../eda/verify.ts');
    simulator =
      format === 'hls' ? ((o.simulator as Simulator | undefined) ?? 'g++') : pickSimulator(o.simulator as Simulator | undefined);
    const unfit = simulatorMismatch(format, simulator);
    if (unfit) throw new UsageError(`--simulator: ${unfit}`);
    if (format === 'hls' && !apInclude)
      throw new UsageError(
        '--verify of an HLS project compiles the C++ model with g++ and needs ap_fixed.h: add --ap-include DIR (Vitis include dir or Xilinx HLS_arbitrary_Precision_Types/include)',
      );
    if (apInclude !== undefined && format === 'hls' && !existsSync(join(apInclude, 'ap_fixed.h')))
      throw new UsageError(`--ap-include ${apInclude}: no ap_fixed.h there`);
    const { requireTool, ToolMissingError } = await import('../eda/tools.ts');
    try {
      for (const tool of SIMULATOR_TOOLS[simulator]) requireTool(tool);
    } catch (e) {
      if (e instanceof ToolMissingError) throw new CliError(`--verify with ${simulator}: ${e.message}`);
      throw e;
    }
  }
  if (o.data !== undefined && !(existsSync(o.data) && statSync(o.data).isFile()))
    throw new UsageError(`--data ${o.data}: no such file`);
  return { format, cutoff, clk, vectors, validateN, verifyN, simulator, apInclude };
}

/**
 * The whole convert is one staged write: the project is written into a private staging folder beside
 * `outDir`, verified there (sim/ inside it), its summary completed there, and only then swapped into place.
 * summary.json therefore never claims a verification the files next to it did not pass, a concurrent
 * convert into the same folder is refused (lock), and a failure or interrupt leaves `outDir` as it was.
 */
export async function runConvert(input: string, outDir: string, o: ConvertOpts): Promise<Summary> {
  const opt = await parseConvertOptions(o);
  if (!existsSync(input)) throw new UsageError(`${input}: no such file or directory`);
  const { beginProject, summaryText } = await import('../backends/project.ts');
  const created = missingFolders(resolve(outDir, '..'));
  const out = beginProject(outDir); // before tracing, which can take minutes
  let failure: CliError | undefined;
  let summary: Summary;
  try {
    ({ summary, failure } = await convertInto(out, input, outDir, opt, o));
    out.write('summary.json', summaryText(summary));
    out.commit();
  } catch (e) {
    out.abort();
    removeIfEmpty(created);
    throw e;
  }
  if (failure) throw failure;
  return summary;
}

/** The folders of `dir`'s path that do not exist yet, deepest first (created for the output, removed again on failure). */
function missingFolders(dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; !existsSync(d); d = dirname(d)) out.push(d);
  return out;
}

function removeIfEmpty(folders: string[]): void {
  for (const d of folders) {
    try {
      rmdirSync(d); // only when empty
    } catch {
      return;
    }
  }
}

type ConvertOptions = Awaited<ReturnType<typeof parseConvertOptions>>;

/** Load, validate, write the project into the staging folder and verify it there; a failed verification is returned, not thrown (the project is kept). */
async function convertInto(
  out: StagedDir,
  input: string,
  outDir: string,
  opt: ConvertOptions,
  o: ConvertOpts,
): Promise<{ summary: Summary; failure?: CliError }> {
  const { loadProgramForConvert } = await import('../app/convert-input.ts');
  const loaded = await loadProgramForConvert(input);
  const { vectorCountProblem } = await import('../backends/vectors.ts');
  for (const [n, flag] of [
    [opt.vectors, '--vectors'],
    [opt.verifyN, '--verify'],
    [opt.validateN, '--validate'],
  ] as const) {
    const why = n === undefined ? null : vectorCountProblem(n, flag, loaded.program);
    if (why) throw new UsageError(why);
  }
  const nIn = loaded.program.inputs.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const data = o.data === undefined ? undefined : await readData(o.data, nIn, input);
  const log = (s: string): void => {
    if (!o.json) process.stdout.write(s + '\n');
  };
  if (data) {
    // raw samples for a model trained by `hgq train`: its preprocess.json maps them onto the model's inputs
    const { preprocessRawData } = await import('../app/preprocess.ts');
    let note: string | null;
    try {
      note = preprocessRawData(input, data);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (note) log(`--data: ${note}`);
  }
  let validation: { samples: number; mismatches: number } | undefined;
  if (opt.validateN !== undefined) {
    if (!loaded.validate)
      throw new UsageError(
        '--validate compares the emulator with a source model; an IR program has none (use --verify for the RTL)',
      );
    validation = await loaded.validate(opt.validateN);
    log(`validate: ${validation.mismatches} mismatching of ${validation.samples} samples (emulator vs model)`);
    if (validation.mismatches > 0)
      throw new CliError(`the emulator disagrees with the model on ${validation.mismatches} of ${validation.samples} samples`);
  }

  const t0 = performance.now();
  let summary: Summary;
  try {
    const { writeProjectInto } = await import('../backends/project.ts');
    summary = writeProjectInto(out, loaded.program, {
      format: opt.format,
      latencyCutoff: opt.cutoff,
      clockPeriodNs: opt.clk,
      part: o.part,
      top: o.top,
      reset: o.reset,
      vectors: opt.vectors,
      data,
    });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  log(
    `wrote ${outDir}: ${summary.format} top ${summary.top}, ${summary.stages} stage(s), latency ${summary.latency_cycles} cycle(s), estimated ${summary.estimated_lut} LUT (${((performance.now() - t0) / 1000).toFixed(2)} s)`,
  );
  if (loaded.ebops !== undefined) summary = { ...summary, ebops: loaded.ebops } as Summary;
  if (validation) summary = { ...summary, validated_samples: validation.samples } as Summary;
  if (opt.verifyN === undefined) return { summary };

  const { verify } = await import('../eda/verify.ts');
  const { ToolMissingError } = await import('../eda/tools.ts');
  let r;
  try {
    r = await verify(out.staging, { vectors: opt.verifyN, data, apInclude: opt.apInclude, simulator: opt.simulator });
  } catch (e) {
    if (e instanceof ToolMissingError) throw new CliError(e.message);
    throw e;
  }
  summary = { ...summary, verified_vectors: r.vectors, mismatches: r.mismatches, simulator: r.simulator };
  if (r.first_mismatch) summary.first_mismatch = r.first_mismatch;
  log(
    `verify (${r.simulator}): ${r.vectors} vectors, ${r.mismatches} mismatches (build ${r.build_seconds.toFixed(1)} s, ${Math.round(r.vectors_per_second)} vectors/s)`,
  );
  if (r.mismatches === 0) return { summary };
  return {
    summary,
    failure: new CliError(
      `verification failed: ${r.mismatches} of ${r.vectors} vectors differ; first: ${JSON.stringify(r.first_mismatch)}`,
    ),
  };
}

export function register(program: Command): void {
  program
    .command('convert')
    .description(
      'write a hardware project (Verilog/VHDL/HLS, testbenches, vectors, TCL, summary.json) for a trained model (model directory or HGQ2 .keras; traced on the way) or an IR program',
    )
    .argument('<input>', 'model directory, HGQ2 .keras file, or program.json (an IR program from hgq trace)')
    .argument(
      '<out-dir>',
      'project folder to create (an earlier project hgq wrote there is replaced as a whole; any other non-empty folder is refused)',
    )
    .option('-f, --format <FORMAT>', 'verilog, vhdl or hls', 'verilog')
    .option('-l, --latency-cutoff <N>', 'pipeline: cut the latency axis every N units (0 = combinational)', '0')
    .option('--clock-period <NS>', 'clock period in ns for the Vivado/Vitis constraints (default 5)')
    .option('--part <PART>', 'FPGA part for the Vivado/Vitis scripts (default xcvu13p-flga2577-2-e)')
    .option('--top <NAME>', 'top-level module name (default: the program name)')
    .option('--reset', 'add a synchronous reset for the valid pipeline')
    .option('--vectors <N>', 'test vectors written for the testbenches (default 1000)')
    .option('--validate <N>', 'check the emulator against the source model on N inputs (model inputs only)')
    .option('--verify <N>', 'simulate N random vectors and compare with the emulator bit for bit')
    .option(
      '--data <FILE>',
      'input samples (CSV or NPY) added to the testbench and --verify vectors, quantized onto the input ports',
    )
    .option('--simulator <SIM>', 'verilator (default if installed), icarus, or ghdl (VHDL projects)')
    .option('--ap-include <DIR>', 'HLS --verify: directory with ap_fixed.h for the g++ C model (default $HGQ_AP_INCLUDE)')
    .option('--json', 'print summary.json as one JSON line at the end')
    .addHelpText(
      'after',
      `
summary.json: estimated_lut, latency_cycles, stages, the input/output bus layouts (per element: offset,
width, signed, f, step; element 0 in the least significant bits), ebops (when given a model) and, after
--verify, verified_vectors and mismatches. Exit 1 if verification finds a mismatch.

Example:
  $ hgq convert model.program.json prj --latency-cutoff 2 --verify 10000`,
    )
    .action(async (input: string, outDir: string, opts: ConvertOpts) => {
      const s = await runConvert(input, outDir, opts);
      if (opts.json) process.stdout.write(JSON.stringify(s) + '\n');
    });
}
