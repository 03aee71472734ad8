/** Running open-source EDA tools on generated projects: simulation against the emulator, Yosys synthesis. */
export {
  verify,
  readSummary,
  simulatorMismatch,
  SIMULATOR_TOOLS,
  type VerifyOptions,
  type VerifyResult,
  type Simulator,
  type Mismatch,
} from './verify.ts';
export { synth, parseStat, yosysScript, type SynthReport, type Family } from './synth.ts';
export { hasTool, requireTool, ToolMissingError, TOOL_PACKAGES } from './tools.ts';
