/** Trainable HGQ quantizers on TensorFlow.js (docs/quantizers.md). */
export {
  type QType,
  type Place,
  type Granularity,
  type QuantizerConfig,
  type QuantizerOptions,
  type QuantizerScope,
  PLACES,
  withQuantizerConfig,
  resolveQuantizerConfig,
  homogeneousAxesFor,
  normalizePlace,
} from './config.ts';
export {
  Quantizer,
  l1LossOf,
  plainVariable,
  steRound,
  type QVariable,
  type QParamName,
  type WeightFactory,
  type QuantizerMode,
} from './quantizer.ts';
export { quantizeTensor, roundCodes, ceilLog2, exp2, satBounds } from './ops.ts';
export { setFusedKernels, fusedApplies } from './kernels.ts';
export { fusedSmallApplies, fusedRegTail, fusedBilinearSum } from './train-kernels.ts';
