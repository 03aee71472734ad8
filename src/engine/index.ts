/** The fast training engine (issue 8): WebAssembly SIMD kernels driven from a model description or a tfjs model. */
export { createEngine, Engine } from './engine.ts';
export { GraphEngine, createGraphEngine } from './graph.ts';
export type {
  ModelDesc,
  DenseDesc,
  KifDesc,
  KbiDesc,
  AdamConfig,
  EngineOptions,
  StepResult,
  EngineState,
  WorkerPool,
  WorkerPoolFactory,
  WorkerPoolInit,
  GraphModelDesc,
  GraphLayerDesc,
  BnDenseDesc,
  BnDesc,
  ConvDesc,
  PoolDesc,
  AddDesc,
  TableDesc,
  TrainEngine,
} from './types.ts';
export { EngineBinding, describeModel, describeAny, engineUnsupported, type EngineLoss } from './from-tfjs.ts';
export { fitWithEngine, type EngineFitOptions, type EngineFitResult, type FitLoopOptions } from './fit.ts';
export { loadKernels } from './kernels.ts';
