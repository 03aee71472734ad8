/**
 * hgq as a library: `import { QDense, fit, calibrate, trace, writeProject, ... } from 'hgq'`.
 * Build an HGQ model from the layers, train it (`fit`: the WebAssembly engine, else tfjs), calibrate it, trace
 * it into the bit-exact IR, emulate the IR and write Verilog/VHDL/HLS. Importing this module registers every
 * HGQ layer with tfjs, so `loadModel` reads any saved HGQ model. Guide: docs/library.md.
 */

// The TensorFlow.js that hgq's layers are built on: use this one for tensors and models (a second copy of
// tfjs in an application would hold its own backends and layer registry)
export * as tf from '@tensorflow/tfjs';
// TensorFlow.js backend: call once before building models (tfjs-node if installed, else wasm, else cpu)
export { initBackend, type BackendName } from './backend.ts';

// Layers
export {
  QLayer,
  setFiniteCheck,
  QDense,
  QBatchNormDense,
  QConv1D,
  QConv2D,
  QBatchNormalization,
  QEinsumDense,
  QEinsumDenseBatchnorm,
  QAdd,
  QSubtract,
  QMultiply,
  QMaximum,
  QMinimum,
  QMaxPooling1D,
  QMaxPooling2D,
  QAveragePooling1D,
  QAveragePooling2D,
  QGlobalMaxPooling1D,
  QGlobalMaxPooling2D,
  QGlobalAveragePooling1D,
  QGlobalAveragePooling2D,
  QFlatten,
  QReshape,
  QConcatenate,
  QSum,
  GetItem,
  QUnaryFunctionLUT,
  QSoftmax,
  QDenseT,
  QConvT1D,
  QConvT2D,
  QEinsumDenseT,
  registerLutFunction,
  hgqLayers,
  modelEbops,
  modelBeta,
  setModelBeta,
  type Activation,
  type QLayerArgs,
  type QConf,
  type QDenseArgs,
  type QBatchNormDenseArgs,
  type QConvArgs,
  type QBatchNormalizationArgs,
  type QEinsumDenseArgs,
  type QEinsumDenseBatchnormArgs,
  type QPoolingArgs,
  type QGlobalPoolingArgs,
  type QReshapeArgs,
  type QConcatenateArgs,
  type QSumArgs,
  type GetItemArgs,
  type QUnaryFunctionLUTArgs,
  type QSoftmaxArgs,
  type QDenseTArgs,
  type QEinsumDenseTArgs,
  type QConvTArgs,
  type UnaryFn,
} from './layers/index.ts';

// Quantizers and their defaults per place (HGQ2's QuantizerConfigScope)
export {
  Quantizer,
  withQuantizerConfig,
  type QuantizerOptions,
  type QuantizerConfig,
  type QuantizerScope,
  type Place,
  type QType,
  type Granularity,
} from './quantizer/index.ts';

// Training: fit, β schedules and PID, Pareto checkpoints, calibration, exact EBOPs, save/load
export { fit, tfjsLoss, type FitOptions, type FitResult, type TaskLoss } from './train/fit.ts';
export {
  fitWithEngine,
  engineUnsupported,
  type EngineFitOptions,
  type EngineFitResult,
  type EngineOptions,
} from './engine/index.ts';
export { piecewiseSchedule, parseSchedule, BetaPid, type KeyPoint, type Interp, type PidOptions } from './train/schedule.ts';
export {
  BetaScheduler,
  BetaPidCallback,
  EbopsLogger,
  ParetoCheckpoint,
  EarlyStopOnEbops,
  ProgressBar,
  type FrontEntry,
  type ParetoOptions,
} from './train/callbacks.ts';
export { calibrate, exactEbops, type CalibrateOptions, type CalibrateResult } from './train/calibrate.ts';
export { saveModel, loadModel } from './train/io.ts';

// HGQ2 (Python/Keras) checkpoints: decode a .keras file, build the equivalent hgq model
export { loadHgq2Model, type HgqModel } from './import/hgq2-model.ts';
export { buildHgqModel, ImportError } from './import/hgq2-build.ts';

// Model → IR program, and the check of its emulator against the model
export { trace, TraceError, supportedLayers, type TraceOptions, type CmvmMethod } from './trace/index.ts';
export { checkAgainstModel, type ModelCheck } from './trace/check.ts';

// The fixed-point IR: emulator, serialization, validation, cost
export { emulate, compileProgram, interpretProgram, type Emulator, type CompileOptions } from './ir/emulate.ts';
export { programToJSON, programFromJSON, readProgram, writeProgram } from './ir/serialize.ts';
export { validateProgram } from './ir/validate.ts';
export { analyzeProgram, type ProgramAnalysis, type LayerAnalysis } from './ir/cost.ts';
export { IR_FORMAT_VERSION, type Program, type Op, type OpKind, type Node, type TensorSpec, type OutputRef } from './ir/types.ts';

// Exact fixed-point arithmetic
export { quantize, quantizeArray } from './fixed/quantize.ts';
export { parseType, formatType, type ParsedType } from './fixed/typename.ts';
export { ROUND_MODES, OVERFLOW_MODES, type RoundMode, type OverflowMode, type Kif, type QInterval } from './fixed/types.ts';

// Constant matrix-vector products as adder graphs
export { solveCmvm, type CmvmInput, type CmvmOptions, type CmvmResult } from './cmvm/index.ts';

// Hardware projects, simulation against the emulator, synthesis
export {
  writeProject,
  generateProject,
  DEFAULT_PART,
  DEFAULT_CLOCK_NS,
  type HdlFormat,
  type ProjectOptions,
  type Summary,
} from './backends/index.ts';
export {
  verify,
  synth,
  hasTool,
  ToolMissingError,
  type VerifyOptions,
  type VerifyResult,
  type Simulator,
  type Mismatch,
  type SynthReport,
  type Family,
} from './eda/index.ts';

// Data files
export { readCsv, writeCsv, type CsvTable } from './data/csv.ts';
export { readNpy, writeNpy, type NdArray } from './data/npy.ts';
export { readIdx, loadMnist, type IdxArray, type ImageSet, type Split } from './data/mnist.ts';
