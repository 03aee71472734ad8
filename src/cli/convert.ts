/**
 * `hgq convert <program.json|model> <out-dir>`: writes a hardware project (RTL or HLS sources, testbenches,
 * vectors, Vivado/Vitis TCL, summary.json) and optionally checks it in a simulator against the emulator.
 *
 * Inputs other than an IR program (trained model directories) are plugged in by the tracer through
 * `registerConvertLoader`; `loadProgramForConvert` tries the registered loaders after program.json.
 */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { HdlFormat, Summary } from '../backends/project.ts';
import type { Program } from '../ir/types.ts';
import { CliError, UsageError } from './errors.ts';

/** What a loader returns: the program, and optionally a check of the emulator against the source model on n inputs. */
export interface LoadedProgram {
  program: Program;
  /** compare emulator and model on n random inputs; returns mismatching samples */
  validate?: (n: number) => Promise<{ samples: number; mismatches: number }>;
  /** the source model's exact EBOPs (model inputs only); copied into summary.json as `ebops` */
  ebops?: number;
}

/** A loader returns null when the path is not its kind of input. */
export type ConvertLoader = (path: string) => Promise<LoadedProgram | null>;

const loaders: ConvertLoader[] = [];

/** For the tracer: make `hgq convert` accept model directories (or other inputs). */
export function registerConvertLoader(loader: ConvertLoader): void {
  loaders.push(loader);
}

export async function loadProgramForConvert(path: string): Promise<LoadedProgram> {
  if (!existsSync(path)) throw new UsageError(`${path}: no such file or directory`);
  if (statSync(path).isFile() && path.toLowerCase().endsWith('.json')) {
    const { readProgram } = await import('../ir/serialize.ts');
    try {
      return { program: readProgram(path) };
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  for (const l of loaders) {
    const r = await l(path);
    if (r) return r;
  }
  throw new UsageError(
    `${path}: not an IR program (.json). Converting a trained model needs it traced to a program first; give the program.json written by the tracer`,
  );
}

function intOpt(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} "${v}" must be an integer >= ${min}`);
  return n;
}

function numOpt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
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

/** Raw input samples from CSV/NPY (batch × nIn), checked against the program's input size. */
async function readData(path: string, nIn: number): Promise<Float64Array> {
  const { readCsv } = await import('../data/csv.ts');
  const { readNpy } = await import('../data/npy.ts');
  let arr;
  try {
    arr = path.toLowerCase().endsWith('.npy') ? readNpy(path) : readCsv(path);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const per = arr.shape.length <= 1 ? (nIn === 1 ? 1 : arr.data.length) : arr.shape.slice(1).reduce((a, b) => a * b, 1);
  if (per !== nIn || arr.data.length % nIn !== 0)
    throw new UsageError(`${path}: the program takes ${nIn} input values per sample, the data has ${per} (shape [${arr.shape.join(', ')}])`);
  for (let k = 0; k < arr.data.length; k++)
    if (!Number.isFinite(arr.data[k]!)) throw new UsageError(`${path}: value ${k} is ${arr.data[k]} (inputs must be finite numbers)`);
  return arr.data;
}

export async function runConvert(input: string, outDir: string, o: ConvertOpts): Promise<Summary> {
  const format = o.format.toLowerCase();
  if (!['verilog', 'vhdl', 'hls'].includes(format)) throw new UsageError(`--format "${o.format}" is not one of verilog, vhdl, hls`);
  const cutoff = o.latencyCutoff === undefined ? 0 : Number(o.latencyCutoff);
  if (!Number.isFinite(cutoff) || cutoff < 0) throw new UsageError(`--latency-cutoff "${o.latencyCutoff}" must be a number >= 0 (0 = combinational)`);
  const clk = numOpt(o.clockPeriod, '--clock-period');
  const vectors = intOpt(o.vectors, '--vectors', 1);
  const validateN = intOpt(o.validate, '--validate', 1);
  const verifyN = intOpt(o.verify, '--verify', 1);
  if (o.simulator !== undefined && !['verilator', 'icarus', 'ghdl'].includes(o.simulator))
    throw new UsageError(`--simulator "${o.simulator}" is not one of verilator, icarus, ghdl`);
  const apInclude = o.apInclude ?? process.env.HGQ_AP_INCLUDE;
  if (verifyN !== undefined && format === 'hls' && !apInclude)
    throw new UsageError('--verify of an HLS project compiles the C++ model with g++ and needs ap_fixed.h: add --ap-include DIR (Vitis include dir or Xilinx HLS_arbitrary_Precision_Types/include)');

  const { writeProject, updateSummary, checkOutputDir, ProjectDirError } = await import('../backends/project.ts');
  try {
    checkOutputDir(outDir); // before tracing, which can take minutes
  } catch (e) {
    if (e instanceof ProjectDirError) throw new UsageError(e.message);
    throw e;
  }
  const loaded = await loadProgramForConvert(input);
  const nIn = loaded.program.inputs.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const data = o.data === undefined ? undefined : await readData(o.data, nIn);
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
  if (validateN !== undefined) {
    if (!loaded.validate) throw new UsageError('--validate compares the emulator with a source model; an IR program has none (use --verify for the RTL)');
    validation = await loaded.validate(validateN);
    log(`validate: ${validation.mismatches} mismatching of ${validation.samples} samples (emulator vs model)`);
    if (validation.mismatches > 0) throw new CliError(`the emulator disagrees with the model on ${validation.mismatches} of ${validation.samples} samples`);
  }

  const t0 = performance.now();
  let summary: Summary;
  try {
    summary = writeProject(loaded.program, outDir, {
      format: format as HdlFormat,
      latencyCutoff: cutoff,
      clockPeriodNs: clk,
      part: o.part,
      top: o.top,
      reset: o.reset,
      vectors,
      data,
    });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  log(`wrote ${outDir}: ${summary.format} top ${summary.top}, ${summary.stages} stage(s), latency ${summary.latency_cycles} cycle(s), estimated ${summary.estimated_lut} LUT (${((performance.now() - t0) / 1000).toFixed(2)} s)`);
  if (loaded.ebops !== undefined) summary = { ...summary, ebops: loaded.ebops } as Summary;
  if (validation) summary = { ...summary, validated_samples: validation.samples } as Summary;

  if (verifyN !== undefined) {
    const { verify } = await import('../eda/verify.ts');
    const { ToolMissingError } = await import('../eda/tools.ts');
    let r;
    try {
      r = verify(outDir, { vectors: verifyN, data, apInclude, simulator: o.simulator as 'verilator' | 'icarus' | 'ghdl' | undefined });
    } catch (e) {
      if (e instanceof ToolMissingError) throw new CliError(e.message);
      throw e;
    }
    summary = { ...summary, verified_vectors: r.vectors, mismatches: r.mismatches, simulator: r.simulator };
    if (r.first_mismatch) summary.first_mismatch = r.first_mismatch;
    updateSummary(outDir, summary);
    log(`verify (${r.simulator}): ${r.vectors} vectors, ${r.mismatches} mismatches (build ${r.build_seconds.toFixed(1)} s, ${Math.round(r.vectors_per_second)} vectors/s)`);
    if (r.mismatches > 0)
      throw new CliError(`verification failed: ${r.mismatches} of ${r.vectors} vectors differ; first: ${JSON.stringify(r.first_mismatch)}`);
  } else if (validation || loaded.ebops !== undefined) updateSummary(outDir, summary);
  return summary;
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('write a hardware project (Verilog/VHDL/HLS, testbenches, vectors, TCL, summary.json) for a trained model (model directory or HGQ2 .keras; traced on the way) or an IR program')
    .argument('<input>', 'model directory, HGQ2 .keras file, or program.json (an IR program from hgq trace)')
    .argument('<out-dir>', 'project directory to create (an earlier hgq project there is replaced atomically; any other non-empty directory is refused)')
    .option('-f, --format <FORMAT>', 'verilog, vhdl or hls', 'verilog')
    .option('-l, --latency-cutoff <N>', 'pipeline: cut the latency axis every N units (0 = combinational)', '0')
    .option('--clock-period <NS>', 'clock period in ns for the Vivado/Vitis constraints (default 5)')
    .option('--part <PART>', 'FPGA part for the Vivado/Vitis scripts (default xcvu13p-flga2577-2-e)')
    .option('--top <NAME>', 'top-level module name (default: the program name)')
    .option('--reset', 'add a synchronous reset for the valid pipeline')
    .option('--vectors <N>', 'test vectors written for the testbenches (default 1000)')
    .option('--validate <N>', 'check the emulator against the source model on N inputs (model inputs only)')
    .option('--verify <N>', 'simulate N random vectors and compare with the emulator bit for bit')
    .option('--data <FILE>', 'input samples (CSV or NPY) added to the testbench and --verify vectors, quantized onto the input ports')
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
