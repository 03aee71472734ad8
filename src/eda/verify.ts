/**
 * Bit-exact verification of generated RTL against the IR emulator: write vectors (random over the port
 * types incl. extremes, plus given data) with the emulator's expected outputs, simulate with Verilator
 * (fallback Icarus when Verilator is missing), compare every output bit of every vector.
 *
 * The Verilator binary is cached in <project>/sim/verilator, keyed by a hash of the sources, so repeated
 * verification of one design (new vectors) only reruns the simulation binary. Every path handed to a tool
 * is absolute (the tools run in other folders) and passed as one argument (no shell), so project paths
 * may hold spaces, quotes or `$`.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { programFromJSON } from '../ir/serialize.ts';
import type { Program } from '../ir/types.ts';
import { type HdlFormat, type Summary, type ProjectOptions, keepingOwnership, writeProject } from '../backends/project.ts';
import { inputLayout, outputLayout } from '../backends/layout.ts';
import { makeVectors, unpackHex, vectorCountProblem } from '../backends/vectors.ts';
import { removeStaleTemporaries, temporaryBeside } from '../util/fs.ts';
import { hasTool, run } from './tools.ts';

/** 'g++' is the C++ model of an HLS project (compiled against the given ap_fixed.h) */
export type Simulator = 'verilator' | 'icarus' | 'ghdl' | 'g++';

export interface VerifyOptions {
  /** random vectors (default 10000) */
  vectors?: number;
  /** extra raw input data (batch × nIn), quantized onto the ports */
  data?: Float64Array;
  /** default: verilator if installed, else icarus */
  simulator?: Simulator;
  seed?: number;
  /** when verifying a Program: project options for the temporary project */
  project?: ProjectOptions;
  /** HLS projects: directory holding ap_fixed.h (Vitis include dir or Xilinx's open-source headers); default $HGQ_AP_INCLUDE */
  apInclude?: string;
}

export interface Mismatch {
  vector: number;
  input: number[];
  expected: number[];
  got: number[];
}

export interface VerifyResult {
  simulator: Simulator;
  vectors: number;
  mismatches: number;
  first_mismatch?: Mismatch;
  build_seconds: number;
  run_seconds: number;
  vectors_per_second: number;
  dir: string;
}

export function readSummary(dir: string): Summary {
  const path = join(dir, 'summary.json');
  if (!existsSync(path)) throw new RangeError(`${dir} is not an hgq project (no summary.json); create one with \`hgq convert\``);
  return JSON.parse(readFileSync(path, 'utf8')) as Summary;
}

export function pickSimulator(want?: Simulator): Simulator {
  if (want) return want;
  if (hasTool('verilator')) return 'verilator';
  if (hasTool('iverilog')) return 'icarus';
  return 'verilator'; // raises the missing-tool error naming the package
}

/** The tools a simulator needs, in the order it runs them. */
export const SIMULATOR_TOOLS: Record<Simulator, string[]> = {
  verilator: ['verilator', 'make', 'g++'],
  icarus: ['iverilog', 'vvp'],
  ghdl: ['ghdl'],
  'g++': ['g++'],
};

/**
 * Why `sim` cannot simulate a project of `format` (null when it can): checked before any project is written.
 * Verilator reads a VHDL project through its Verilog twin; Icarus has no VHDL testbench; GHDL reads only VHDL;
 * an HLS project is the C++ model, compiled with g++.
 */
export function simulatorMismatch(format: HdlFormat, sim: Simulator): string | null {
  if (format === 'hls')
    return sim === 'g++'
      ? null
      : `an HLS project is verified by compiling its C++ model with g++; --simulator ${sim} does not apply`;
  if (sim === 'ghdl' && format !== 'vhdl')
    return 'the ghdl simulator needs a VHDL project (add --format vhdl, or use --simulator verilator or icarus)';
  if (sim === 'icarus' && format !== 'verilog')
    return `Icarus simulates Verilog only; a ${format} project needs --simulator verilator or ghdl`;
  if (sim === 'g++')
    return `g++ verifies HLS projects only; a ${format} project needs --simulator verilator, icarus${format === 'vhdl' ? ' or ghdl' : ''}`;
  return null;
}

export async function verify(target: string | Program, opts: VerifyOptions = {}): Promise<VerifyResult> {
  let dir: string;
  // absolute: the simulators run in <dir>/sim, where a relative project path would not resolve
  if (typeof target === 'string') dir = resolve(target);
  else {
    dir = join(mkdtempSync(join(tmpdir(), 'hgq-verify-')), 'project');
    writeProject(target, dir, { vectors: 1, ...opts.project });
  }
  const summary = readSummary(dir);
  const p: Program = programFromJSON(readFileSync(join(dir, 'program.json'), 'utf8'), join(dir, 'program.json'));
  const sim: Simulator = summary.format === 'hls' ? 'g++' : pickSimulator(opts.simulator);
  const unfit = simulatorMismatch(summary.format, sim);
  if (unfit) throw new RangeError(unfit);
  const apInclude = opts.apInclude ?? process.env.HGQ_AP_INCLUDE;
  if (sim === 'g++' && !apInclude)
    throw new RangeError(
      'verifying an HLS project compiles its C++ model with g++ and needs ap_fixed.h: give its directory (apInclude, --ap-include or $HGQ_AP_INCLUDE)',
    );
  const tooMany = vectorCountProblem(opts.vectors ?? 10000, 'verify vectors', p);
  if (tooMany) throw new RangeError(tooMany);
  const vec = makeVectors(p, opts.vectors ?? 10000, { data: opts.data, seed: opts.seed ?? 12345 });
  const res = await keepingOwnership(dir, () => {
    const simDir = join(dir, 'sim');
    mkdirSync(simDir, { recursive: true });
    writeFileSync(join(simDir, 'inputs.hex'), vec.inHex.join('\n') + '\n');
    writeFileSync(join(simDir, 'expected.hex'), vec.expHex.join('\n') + '\n');
    return sim === 'verilator'
      ? runVerilator(dir, summary)
      : sim === 'icarus'
        ? runIcarus(dir, summary)
        : sim === 'ghdl'
          ? runGhdl(dir, summary)
          : runHlsModel(dir, summary, apInclude!);
  });
  const parsed = parseResult(res.out, sim);
  if (parsed.vectors !== vec.count && parsed.mismatches === 0)
    throw new Error(`${sim}: the design produced ${parsed.vectors} valid outputs for ${vec.count} vectors`);
  const result: VerifyResult = {
    simulator: sim,
    vectors: vec.count,
    mismatches: parsed.mismatches + Math.max(0, vec.count - parsed.vectors),
    build_seconds: res.build,
    run_seconds: res.run,
    vectors_per_second: vec.count / Math.max(1e-9, res.run),
    dir,
  };
  if (parsed.first >= 0) {
    const il = inputLayout(p);
    const ol = outputLayout(p);
    result.first_mismatch = {
      vector: parsed.first,
      input: unpackHex(il, vec.inHex[parsed.first]!),
      expected: unpackHex(ol, vec.expHex[parsed.first]!),
      got: parsed.got ? unpackHex(ol, parsed.got) : [],
    };
  }
  return result;
}

function verilogSource(dir: string, s: Summary): string {
  const rel = s.format === 'vhdl' ? s.files.verilog_twin : s.files.source;
  if (!rel) throw new Error(`${dir}: summary.json names no Verilog source`);
  return resolve(dir, rel);
}

function hashFiles(paths: string[], extra: string): string {
  const h = createHash('sha256');
  for (const p of paths) h.update(readFileSync(p));
  h.update(extra);
  return h.digest('hex').slice(0, 16);
}

/**
 * Build speed over simulation speed: the design becomes a few huge straight-line C++ functions, which g++ -O1
 * compiles superlinearly (an MNIST checkpoint of 9k ops: ~240 s CPU; one 800 kB file alone 290 s at -O1,
 * 2 s at -O0). At -O0 in one translation unit (no --output-split: each unit re-parses the Verilator headers,
 * ~1 s) the same build takes ~11 s CPU and simulates at about half the -O1 speed (~15k vs ~22k vectors/s),
 * which 10k-vector checks never notice. The runtime (OPT_GLOBAL, cached below) stays at -O1.
 */
const VERILATOR_FLAGS = ['-O1', '--x-assign', 'fast', '--x-initial', 'fast', '-Wno-fatal', '--no-timing', '--output-split', '0'];

const MAKE_OPT = ['OPT_FAST=-O0', 'OPT_SLOW=-O0', 'OPT_GLOBAL=-O1'];
const RUNTIME_OBJS = ['verilated.o', 'verilated_threads.o'];

/**
 * The model in one translation unit (<top>__ALL.cpp including every generated file), whatever Verilator
 * decides: it turns each small combinational block (a table's `case`) into a lookup table in its constant
 * pool, writes every pool entry to a file of its own and then asks for one compile per file, each
 * re-parsing the Verilator headers (~1 s of CPU). A hybrid MNIST design (236 tables, 177 pool files) took
 * 186 s to build that way (434 s in make on a loaded machine), 13 s in one unit; simulation speed is unchanged.
 */
const ONE_UNIT = ['VM_PARALLEL_BUILDS=0'];

/**
 * Verilator's runtime (verilated.cpp, verilated_threads.cpp) is the same for every design: compile it once
 * per Verilator version and flags into a per-user cache directory and copy the objects into each build
 * (make then sees them up to date). Halves the build time of a small design.
 */
async function runtimeCache(mdir: string, mk: string): Promise<string | null> {
  const version = (await run('verilator', ['--version'], { cwd: mdir })).stdout.trim();
  const key = createHash('sha256')
    .update(version + MAKE_OPT.join(' '))
    .digest('hex')
    .slice(0, 12);
  const cache = join(tmpdir(), `hgq-verilator-runtime-${process.getuid?.() ?? 0}-${key}`);
  if (RUNTIME_OBJS.every((o) => existsSync(join(cache, o)))) return cache;
  try {
    await run('make', ['-f', mk, ...MAKE_OPT, ...RUNTIME_OBJS], { cwd: mdir });
    const tmp = temporaryBeside(cache);
    try {
      mkdirSync(tmp.path, { recursive: true });
      for (const o of RUNTIME_OBJS) copyFileSync(join(mdir, o), join(tmp.path, o));
      renameSync(tmp.path, cache);
    } catch {
      // another process won the race (or the cache is not writable): this build has its objects anyway
    } finally {
      tmp.release();
    }
    return cache;
  } catch {
    return null;
  }
}

/**
 * Build (or reuse) the Verilator simulation binary <dir>/sim/verilator/Vsim; returns its path and the build
 * time (0 when cached). GNU make cannot build in a folder whose path has spaces, and the generated makefile
 * names the sources by path, so the build runs in a private folder under the system temporary folder (the
 * sources copied in) and only the binary is kept.
 */
export async function buildVerilator(dir: string, s: Summary): Promise<{ bin: string; seconds: number; modelObjects?: number }> {
  const src = verilogSource(dir, s);
  const harness = resolve(dir, s.files.verilator_harness!);
  const keep = resolve(dir, 'sim', 'verilator');
  const key = hashFiles([src, harness], VERILATOR_FLAGS.join(' '));
  const stamp = join(keep, 'hgq.stamp');
  const bin = join(keep, 'Vsim');
  if (existsSync(bin) && existsSync(stamp) && readFileSync(stamp, 'utf8') === key) return { bin, seconds: 0 };
  const t0 = performance.now();
  /** objects compiled for the model and harness (each one a g++ run): what ONE_UNIT keeps few */
  let modelObjects = 0;
  rmSync(keep, { recursive: true, force: true });
  const buildRoot = join(tmpdir(), `hgq-verilator-build-${process.getuid?.() ?? 0}`);
  removeStaleTemporaries(buildRoot);
  const build = temporaryBeside(buildRoot);
  try {
    const mdir = build.path;
    mkdirSync(mdir, { recursive: true });
    // copies: the makefile and its dependency files name the sources by path, which make splits at spaces
    copyFileSync(src, join(mdir, `${s.top}.v`));
    copyFileSync(harness, join(mdir, `tb_${s.top}.cpp`));
    await run(
      'verilator',
      ['--cc', '--exe', ...VERILATOR_FLAGS, '--Mdir', '.', '--top-module', s.top, '-o', 'Vsim', `${s.top}.v`, `tb_${s.top}.cpp`],
      { cwd: mdir },
    );
    const mk = `V${s.top}.mk`;
    const cache = await runtimeCache(mdir, mk);
    if (cache) for (const o of RUNTIME_OBJS) if (!existsSync(join(mdir, o))) copyFileSync(join(cache, o), join(mdir, o));
    await run('make', ['-f', mk, ...MAKE_OPT, ...ONE_UNIT, '-j', '2'], { cwd: mdir });
    mkdirSync(keep, { recursive: true });
    copyFileSync(join(mdir, 'Vsim'), bin);
    chmodSync(bin, 0o755);
    writeFileSync(stamp, key);
    modelObjects = readdirSync(mdir).filter((f) => f.endsWith('.o') && !RUNTIME_OBJS.includes(f)).length;
  } finally {
    build.release();
  }
  return { bin, seconds: (performance.now() - t0) / 1000, modelObjects };
}

type SimRun = { out: string; build: number; run: number };

async function runVerilator(dir: string, s: Summary): Promise<SimRun> {
  const { bin, seconds } = await buildVerilator(dir, s);
  const r = await run(bin, [join(dir, 'sim', 'inputs.hex'), join(dir, 'sim', 'expected.hex')], { cwd: join(dir, 'sim') });
  return { out: r.stdout, build: seconds, run: r.seconds };
}

/**
 * Icarus records source paths, unquoted, in the .vvp file: it gets paths relative to the project (src/…,
 * tb/…: no spaces or quotes, the top is an identifier).
 */
async function runIcarus(dir: string, s: Summary): Promise<SimRun> {
  const src = s.format === 'vhdl' ? s.files.verilog_twin : s.files.source;
  const tb = s.format === 'verilog' ? s.files.testbench : undefined;
  if (!src || !tb) throw new Error(`${dir}: no Verilog testbench for Icarus (format ${s.format})`);
  const b = await run('iverilog', ['-g2005', '-o', 'sim/icarus.vvp', '-s', `tb_${s.top}`, src, tb], { cwd: dir });
  const r = await run('vvp', ['-n', 'icarus.vvp'], { cwd: join(dir, 'sim') });
  return { out: r.stdout, build: b.seconds, run: r.seconds };
}

/**
 * GHDL records its working folder, unquoted, in its library file, so it runs in a private folder under the
 * system temporary folder with copies of the sources and vectors (the project path may hold quotes).
 */
async function runGhdl(dir: string, s: Summary): Promise<SimRun> {
  if (s.format !== 'vhdl' || !s.files.testbench)
    throw new RangeError('the ghdl simulator needs a VHDL project (hgq convert --format vhdl)');
  const workRoot = join(tmpdir(), `hgq-ghdl-${process.getuid?.() ?? 0}`);
  removeStaleTemporaries(workRoot);
  const work = temporaryBeside(workRoot);
  try {
    mkdirSync(work.path, { recursive: true });
    copyFileSync(join(dir, s.files.source!), join(work.path, 'design.vhd'));
    copyFileSync(join(dir, s.files.testbench), join(work.path, 'tb.vhd'));
    for (const f of ['inputs.hex', 'expected.hex']) copyFileSync(join(dir, 'sim', f), join(work.path, f));
    const opts = ['--std=08', '--workdir=.'];
    const t0 = performance.now();
    await run('ghdl', ['-a', ...opts, 'design.vhd', 'tb.vhd'], { cwd: work.path });
    await run('ghdl', ['-e', ...opts, `tb_${s.top}`], { cwd: work.path });
    const build = (performance.now() - t0) / 1000;
    const r = await run('ghdl', ['-r', ...opts, `tb_${s.top}`, '--ieee-asserts=disable'], { cwd: work.path });
    return { out: r.stdout, build, run: r.seconds };
  } finally {
    work.release();
  }
}

async function runHlsModel(dir: string, s: Summary, apInclude: string): Promise<SimRun> {
  const exe = resolve(dir, 'sim', 'csim');
  const src = resolve(dir, s.files.source!);
  const b = await run(
    'g++',
    [
      '-std=c++17',
      '-O1',
      '-w',
      '-I',
      resolve(apInclude),
      '-I',
      resolve(dir, 'src'),
      src,
      resolve(dir, s.files.testbench!),
      '-o',
      exe,
    ],
    { cwd: dir },
  );
  const r = await run(exe, [join(dir, 'sim', 'inputs.hex'), join(dir, 'sim', 'expected.hex')], {
    cwd: join(dir, 'sim'),
    allowFail: true,
  });
  return { out: r.stdout, build: b.seconds, run: r.seconds };
}

/** Parse the testbench's RESULT / MISMATCH lines. */
export function parseResult(out: string, sim: string): { vectors: number; mismatches: number; first: number; got?: string } {
  const m = /RESULT vectors=(\d+) mismatches=(\d+) first=(-?\d+)/.exec(out);
  if (!m) throw new Error(`${sim}: no RESULT line in the simulation output:\n${out.split('\n').slice(-20).join('\n')}`);
  const mm = /MISMATCH vector=\d+ got=([0-9a-fA-FxXzZ]+)\b/.exec(out);
  const got = mm && /^[0-9a-fA-F]+$/.test(mm[1]!) ? mm[1] : undefined;
  return { vectors: Number(m[1]), mismatches: Number(m[2]), first: Number(m[3]), got };
}
