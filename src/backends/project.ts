/**
 * Writes a complete hardware project for an IR program: sources (Verilog, VHDL or HLS C++), testbenches
 * (Icarus/GHDL and Verilator C++), test vectors with the emulator's expected outputs, Vivado TCL + XDC,
 * the program itself (so `verify` can regenerate vectors) and summary.json. Everything is written into a
 * temporary sibling directory that is renamed onto `outDir` at the end.
 *
 * Layout: src/<top>.v|.vhd|.cpp(+.h), tb/ (tb_<top>.v|.vhd Icarus/GHDL testbench, tb_<top>.cpp Verilator
 * harness or HLS C testbench, inputs.hex, expected.hex, for VHDL also the Verilog twin <top>.v used by
 * Verilator and Yosys), vivado/build.tcl + <top>.xdc (or vitis/build.tcl), program.json, summary.json;
 * `verify` adds sim/, `synth` adds reports/.
 *
 * summary.json: name, top, format, latency_cutoff, clock_period_ns, part, stages, latency_cycles
 * (= stages − 1), estimated_lut (IR cost model over the ops that reach hardware, adder bits ≈ LUTs),
 * adder_depth (IR latency of the deepest output), ports (name → description), inputs and outputs (bus
 * layouts: width, lsb_first, fields[] of {index, offset, width, signed, f, step}: element `index` occupies
 * bits [offset, offset+width) and holds value/step as a two's-complement (signed) or unsigned integer;
 * width 0 = no bits, the value is 0), files (role → relative path), testbench_vectors; after verify:
 * verified_vectors, mismatches, simulator, first_mismatch; after synth: yosys_<family>.
 *
 * Hex vector files: one vector per line, the whole bus as one hex number (most significant digit first,
 * ceil(width/4) digits), element 0 in the least significant bits.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { programToJSON } from '../ir/serialize.ts';
import type { Program } from '../ir/types.ts';
import { analyze } from './analysis.ts';
import { writeHls, writeHlsTestbench } from './hls.ts';
import { layoutJson } from './layout.ts';
import { lowerProgram, type Netlist } from './netlist.ts';
import { makeVectors } from './vectors.ts';
import { writeVerilatorHarness } from './verilator-tb.ts';
import { hdlName, writeVerilog, writeVerilogTestbench } from './verilog.ts';
import { writeVhdl, writeVhdlTestbench } from './vhdl.ts';

export type HdlFormat = 'verilog' | 'vhdl' | 'hls';

export interface ProjectOptions {
  format?: HdlFormat;
  /** 0 = combinational */
  latencyCutoff?: number;
  clockPeriodNs?: number;
  part?: string;
  /** top-level name (default: from the program's name) */
  top?: string;
  reset?: boolean;
  /** random vectors written for the testbench (default 1000) */
  vectors?: number;
  /** extra raw input data for the testbench vectors (batch × nIn) */
  data?: Float64Array;
  seed?: number;
}

export const DEFAULT_PART = 'xcvu13p-flga2577-2-e';
export const DEFAULT_CLOCK_NS = 5;

export interface Summary {
  name: string;
  top: string;
  format: HdlFormat;
  latency_cutoff: number;
  clock_period_ns: number;
  part: string;
  stages: number;
  latency_cycles: number;
  estimated_lut: number;
  adder_depth: number;
  ports: Record<string, string>;
  inputs: object;
  outputs: object;
  files: Record<string, string>;
  testbench_vectors: number;
  verified_vectors?: number;
  mismatches?: number;
  simulator?: string;
  first_mismatch?: unknown;
}

export function buildNetlist(p: Program, opts: { latencyCutoff?: number } = {}): { nl: Netlist; depth: number; cost: number } {
  const a = analyze(p);
  const nl = lowerProgram(p, { latencyCutoff: opts.latencyCutoff ?? 0, latency: a.latency });
  return { nl, depth: a.depth, cost: a.totalCost };
}

/** The project's files as (relative path → text), and its summary. Pure: nothing is written. */
export function generateProject(p: Program, opts: ProjectOptions = {}): { files: Map<string, string>; summary: Summary } {
  const format = opts.format ?? 'verilog';
  if (!['verilog', 'vhdl', 'hls'].includes(format)) throw new RangeError(`unknown format "${format}" (use verilog, vhdl or hls)`);
  const cutoff = opts.latencyCutoff ?? 0;
  const clk = opts.clockPeriodNs ?? DEFAULT_CLOCK_NS;
  if (!(clk > 0)) throw new RangeError(`clock period must be > 0 ns, got ${clk}`);
  const part = opts.part ?? DEFAULT_PART;
  const top = hdlName(opts.top ?? p.name);
  const { nl, depth, cost } = buildNetlist(p, { latencyCutoff: cutoff });
  const files = new Map<string, string>();
  const piped = nl.stages > 1;
  const rel: Record<string, string> = {};
  if (format === 'verilog') {
    files.set((rel.source = `src/${top}.v`), writeVerilog(nl, top, opts));
    files.set((rel.testbench = `tb/tb_${top}.v`), writeVerilogTestbench(nl, top, opts));
  } else if (format === 'vhdl') {
    files.set((rel.source = `src/${top}.vhd`), writeVhdl(nl, top, opts));
    files.set((rel.testbench = `tb/tb_${top}.vhd`), writeVhdlTestbench(nl, top, opts));
  } else {
    files.set((rel.source = `src/${top}.cpp`), writeHls(p, top));
    files.set((rel.header = `src/${top}.h`), writeHls(p, top, { header: true }));
    files.set((rel.testbench = `tb/tb_${top}.cpp`), writeHlsTestbench(p, top));
  }
  if (format !== 'hls') {
    // the Verilator harness drives the Verilog; a VHDL project carries the Verilog twin for it
    if (format === 'vhdl') files.set((rel.verilog_twin = `tb/${top}.v`), writeVerilog(nl, top, opts));
    files.set((rel.verilator_harness = `tb/tb_${top}.cpp`), writeVerilatorHarness(nl, top, opts));
    files.set((rel.vivado_tcl = 'vivado/build.tcl'), vivadoTcl(top, format, part, clk));
    files.set((rel.xdc = `vivado/${top}.xdc`), xdc(clk, piped));
  } else files.set((rel.vitis_tcl = 'vitis/build.tcl'), vitisTcl(top, part, clk));
  const nvec = opts.vectors ?? 1000;
  const vec = makeVectors(p, nvec, { data: opts.data, seed: opts.seed });
  files.set((rel.inputs = 'tb/inputs.hex'), vec.inHex.map((l) => l + '\n').join(''));
  files.set((rel.expected = 'tb/expected.hex'), vec.expHex.map((l) => l + '\n').join(''));
  files.set((rel.program = 'program.json'), programToJSON(p));
  const ports: Record<string, string> = {};
  if (format !== 'hls') {
    if (piped) ports.clk = 'input, rising edge';
    if (piped && opts.reset) ports.rst = 'input, synchronous active-high, clears valid';
    ports.valid_in = 'input, 1 bit';
    ports.valid_out = `output, 1 bit, valid_in delayed by ${nl.stages - 1} cycle(s)`;
    ports.inp = `input, ${Math.max(1, nl.inWidth)} bits (layout: inputs)`;
    ports.outp = `output, ${Math.max(1, nl.outWidth)} bits (layout: outputs)`;
  }
  const summary: Summary = {
    name: p.name,
    top,
    format,
    latency_cutoff: cutoff,
    clock_period_ns: clk,
    part,
    stages: format === 'hls' ? 1 : nl.stages,
    latency_cycles: format === 'hls' ? 0 : nl.stages - 1,
    estimated_lut: Math.round(cost),
    adder_depth: depth,
    ports,
    inputs: layoutJson(nl.inputs),
    outputs: layoutJson(nl.outputs),
    files: rel,
    testbench_vectors: vec.count,
  };
  files.set('summary.json', JSON.stringify(summary, null, 2) + '\n');
  return { files, summary };
}

/**
 * Write files into a temporary sibling directory, then rename it onto `outDir`. An existing `outDir` is
 * replaced only when it is empty or an earlier hgq project (has summary.json): a mistyped path must never
 * delete a user's directory.
 */
export function writeFilesAtomically(outDir: string, files: Map<string, string>): void {
  checkOutputDir(outDir);
  const dest = resolve(outDir);
  const parent = dirname(dest);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dest)}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    for (const [path, text] of files) {
      const full = join(tmp, path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, text);
    }
    if (existsSync(dest)) {
      const old = `${tmp}.old`;
      renameSync(dest, old);
      renameSync(tmp, dest);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, dest);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** The output directory already holds something that is not an hgq project. */
export class ProjectDirError extends Error {}

/** Throws ProjectDirError unless `outDir` is absent, empty, or an earlier hgq project (has summary.json). */
export function checkOutputDir(outDir: string): void {
  const dest = resolve(outDir);
  if (!existsSync(dest)) return;
  const replaceable = statSync(dest).isDirectory() && (readdirSync(dest).length === 0 || existsSync(join(dest, 'summary.json')));
  if (!replaceable) throw new ProjectDirError(`${outDir} exists and is not an hgq project (no summary.json); choose a new or empty directory, or remove it first`);
}

export function writeProject(p: Program, outDir: string, opts: ProjectOptions = {}): Summary {
  const { files, summary } = generateProject(p, opts);
  writeFilesAtomically(outDir, files);
  return summary;
}

/** Rewrite summary.json in place (temp file + rename). */
export function updateSummary(dir: string, summary: Summary): void {
  const path = join(dir, 'summary.json');
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(summary, null, 2) + '\n');
  renameSync(tmp, path);
}

function vivadoTcl(top: string, format: HdlFormat, part: string, clk: number): string {
  const read = format === 'vhdl' ? `read_vhdl -vhdl2008 $root/src/${top}.vhd` : `read_verilog $root/src/${top}.v`;
  return `# Vivado out-of-context synthesis and implementation of ${top} (generated by hgq).
# Usage: vivado -mode batch -source vivado/build.tcl   (from the project directory or anywhere)
set root [file normalize [file join [file dirname [info script]] ..]]
set top ${top}
set part ${part}
set reports $root/reports
file mkdir $reports
create_project -in_memory -part $part
${read}
read_xdc -mode out_of_context $root/vivado/${top}.xdc
synth_design -top $top -part $part -mode out_of_context -flatten_hierarchy rebuilt
report_utilization -file $reports/synth_utilization.rpt
report_timing_summary -file $reports/synth_timing.rpt
opt_design
place_design
route_design
report_utilization -file $reports/impl_utilization.rpt
report_utilization -hierarchical -file $reports/impl_utilization_hier.rpt
report_timing_summary -max_paths 10 -file $reports/impl_timing.rpt
write_checkpoint -force $reports/$top.dcp
# clock period ${clk} ns (see ${top}.xdc)
`;
}

function xdc(clk: number, piped: boolean): string {
  return piped
    ? `# clock constraint (period in ns)\ncreate_clock -period ${clk} -name clk [get_ports clk]\n`
    : `# combinational design: constrain input-to-output delay (ns)\nset_max_delay ${clk} -from [all_inputs] -to [all_outputs]\n`;
}

function vitisTcl(top: string, part: string, clk: number): string {
  return `# Vitis HLS project for ${top} (generated by hgq). Usage: vitis_hls -f vitis/build.tcl
set root [file normalize [file join [file dirname [info script]] ..]]
open_project -reset ${top}_prj
set_top ${top}
add_files $root/src/${top}.cpp
add_files -tb $root/tb/tb_${top}.cpp -cflags "-I$root/src"
add_files -tb $root/tb/inputs.hex
add_files -tb $root/tb/expected.hex
open_solution -reset solution1
set_part ${part}
create_clock -period ${clk} -name default
csim_design
csynth_design
exit
`;
}
