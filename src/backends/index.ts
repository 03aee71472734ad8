/** Hardware backends (no tfjs): IR program → Verilog / VHDL / HLS C++ projects with testbenches and vectors. */
export {
  generateProject,
  writeProject,
  beginProject,
  writeProjectInto,
  projectDirProblem,
  partNameProblem,
  topNameProblem,
  buildNetlist,
  updateSummary,
  keepingOwnership,
  PROJECT_KIND,
  DEFAULT_PART,
  DEFAULT_CLOCK_NS,
} from './project.ts';
export type { HdlFormat, ProjectOptions, Summary } from './project.ts';
export { lowerProgram, stageOf, type Netlist } from './netlist.ts';
export { writeVerilog, writeVerilogTestbench, hdlName } from './verilog.ts';
export { writeVhdl, writeVhdlTestbench } from './vhdl.ts';
export { writeHls, writeHlsTestbench } from './hls.ts';
export { writeVerilatorHarness } from './verilator-tb.ts';
export { inputLayout, outputLayout, layoutJson, type BusLayout, type BusField, type InputField } from './layout.ts';
export { makeVectors, packHex, unpackHex, vectorCountProblem, MAX_VECTORS, type VectorSet } from './vectors.ts';
