/**
 * Writes a complete hardware project for an IR program: sources (Verilog, VHDL or HLS C++), testbenches
 * (Icarus/GHDL and Verilator C++), test vectors with the emulator's expected outputs, Vivado TCL + XDC,
 * the program itself (so `verify` can regenerate vectors) and summary.json. Everything is written into a
 * private staging folder beside `outDir` (src/util/fs.ts StagedDir: locked, marker written last, swapped into
 * place), so the folder is always one run's complete output; only an absent, empty or earlier hgq project
 * folder is replaced (projectDirProblem).
 *
 * Layout: src/<top>.v|.vhd|.cpp(+.h), tb/ (tb_<top>.v|.vhd Icarus/GHDL testbench, tb_<top>.cpp Verilator
 * harness or HLS C testbench, inputs.hex, expected.hex, for VHDL also the Verilog twin <top>.v used by
 * Verilator and Yosys), vivado/build.tcl + <top>.xdc (or vitis/build.tcl), program.json, summary.json, the
 * ownership marker .hgq-output.json (written last);
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
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { programToJSON } from '../ir/serialize.ts';
import type { Program } from '../ir/types.ts';
import { analyze } from './analysis.ts';
import { writeHls, writeHlsTestbench } from './hls.ts';
import { layoutJson } from './layout.ts';
import { lowerProgram, type Netlist } from './netlist.ts';
import { makeVectors, vectorCountProblem } from './vectors.ts';
import { writeVerilatorHarness } from './verilator-tb.ts';
import { hdlName, writeVerilog, writeVerilogTestbench } from './verilog.ts';
import { writeVhdl, writeVhdlTestbench } from './vhdl.ts';
import {
  assertCreatableDir,
  MARKER,
  OutputPathError,
  readMarker,
  StagedDir,
  whyNotReplaceable,
  writeFileAtomic,
  writeMarker,
} from '../util/fs.ts';

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
  if (!(Number.isFinite(clk) && clk > 0)) throw new RangeError(`clock period must be > 0 ns (a finite number), got ${clk}`);
  const part = opts.part ?? DEFAULT_PART;
  const badName = partNameProblem(part) ?? (opts.top === undefined ? null : topNameProblem(opts.top));
  if (badName) throw new RangeError(badName);
  const top = hdlName(opts.top ?? p.name);
  const source = p;
  // the name is quoted in the sources' header comments: a line break in it would end the comment
  p = { ...p, name: commentSafe(p.name) };
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
  const tooMany = vectorCountProblem(nvec, 'testbench vectors', p);
  if (tooMany) throw new RangeError(tooMany);
  const vec = makeVectors(p, nvec, { data: opts.data, seed: opts.seed });
  files.set((rel.inputs = 'tb/inputs.hex'), vec.inHex.map((l) => l + '\n').join(''));
  files.set((rel.expected = 'tb/expected.hex'), vec.expHex.map((l) => l + '\n').join(''));
  files.set((rel.program = 'program.json'), programToJSON(source));
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
    name: source.name,
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
  files.set('summary.json', summaryText(summary));
  return { files, summary };
}

/** `name` as text for a one-line comment in any of the generated languages: printable ASCII only. */
function commentSafe(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '?');
}

/** The marker kind of a project folder (src/util/fs.ts). */
export const PROJECT_KIND = 'project';

/**
 * Why `outDir` may not receive a project (null when it may): it must be absent, empty, or a project hgq
 * wrote and marked, holding nothing else. A project written by hgq before the ownership marker existed
 * (summary.json, no marker) is refused too: nothing shows which of its files are hgq's.
 */
export function projectDirProblem(outDir: string): string | null {
  const why = whyNotReplaceable(outDir, [PROJECT_KIND]);
  if (why && readMarker(outDir) === null && existsSync(join(outDir, 'summary.json')) && statSync(outDir).isDirectory())
    return (
      `${outDir} holds a project written by an earlier hgq (summary.json, but no ${MARKER}), and hgq can no longer tell ` +
      'whether every file in it is its own, so it will not replace it: move out anything you added and remove the folder ' +
      `(rm -r ${JSON.stringify(outDir)}), or choose another folder`
    );
  return why;
}

/**
 * Opens a project output: checks `outDir` (projectDirProblem, as OutputPathError), locks it and opens a
 * staging folder beside it. Write the project into `.staging`, verify there, then `commit()`.
 */
export function beginProject(outDir: string): StagedDir {
  assertCreatableDir(outDir);
  const why = projectDirProblem(outDir);
  if (why) throw new OutputPathError(why);
  return StagedDir.begin(outDir, PROJECT_KIND);
}

export function summaryText(summary: Summary): string {
  return JSON.stringify(summary, null, 2) + '\n';
}

/** Writes the project of `p` into an open StagedDir (see beginProject); returns its summary. */
export function writeProjectInto(out: StagedDir, p: Program, opts: ProjectOptions = {}): Summary {
  const { files, summary } = generateProject(p, opts);
  for (const [rel, text] of files) out.write(rel, text);
  return summary;
}

/** Writes the project of `p` as a whole into `outDir` (replacing only an earlier project of hgq's). */
export function writeProject(p: Program, outDir: string, opts: ProjectOptions = {}): Summary {
  const out = beginProject(outDir);
  try {
    const summary = writeProjectInto(out, p, opts);
    out.commit();
    return summary;
  } catch (e) {
    out.abort();
    throw e;
  }
}

/**
 * Runs `work`, which adds files to the project `dir` (verify's sim/, synth's reports/), and keeps the folder
 * hgq's: when it was hgq's before (marker, nothing foreign), the marker is rewritten to list the new files.
 * A folder holding files of the user's stays unmarked for them (it was not replaceable before either).
 */
export async function keepingOwnership<T>(dir: string, work: () => T | Promise<T>): Promise<T> {
  const marker = readMarker(dir);
  const ours = marker !== null && whyNotReplaceable(dir, [marker.kind]) === null;
  try {
    return await work();
  } finally {
    if (ours) {
      const { format: _f, version: _v, kind, hgq_version: _h, files: _files, ...extra } = marker;
      writeMarker(dir, kind, extra);
    }
  }
}

/** Rewrites summary.json of the project `dir` in place (atomically), keeping the folder hgq's. */
export function updateSummary(dir: string, summary: Summary): Promise<void> {
  return keepingOwnership(dir, () => writeFileAtomic(join(dir, 'summary.json'), summaryText(summary)));
}

/**
 * Strings that go into the Vivado/Vitis TCL scripts and constraints unquoted. Tcl substitutes `[...]`, `$`
 * and `\\` even in a plain word, so a part name is a strict pattern (Xilinx part names are letters, digits,
 * '-' and '.', e.g. xcvu13p-flga2577-2-e), never escaped text.
 */
const PART_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Why `part` is not a valid FPGA part name (null when it is). */
export function partNameProblem(part: string): string | null {
  return PART_NAME.test(part)
    ? null
    : `part "${part}" is not a part name: letters, digits, '-', '_' and '.' only, at most 64 characters (e.g. ${DEFAULT_PART})`;
}

/** Why `top` is not usable as the top-level name (null when it is): it must already be a plain HDL identifier. */
export function topNameProblem(top: string): string | null {
  const ok = hdlName(top);
  return ok === top
    ? null
    : `top-level name "${top}" is not a plain Verilog/VHDL identifier (letters, digits, '_', not a keyword); e.g. ${ok}`;
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
