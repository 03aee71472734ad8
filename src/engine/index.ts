/** The fast training engine (issue 8): WebAssembly SIMD kernels driven from a model description or a tfjs model. */
export { createEngine, Engine, type ModelDesc, type DenseDesc, type KifDesc, type KbiDesc, type AdamConfig, type EngineOptions, type StepResult, type EngineState, type ThreadPool, type ThreadPoolFactory } from './engine.ts';
export { EngineBinding, describeModel, describeAny, engineUnsupported, type EngineLoss } from './from-tfjs.ts';
export { fitWithEngine, type EngineFitOptions, type EngineFitResult } from './fit.ts';
export { loadKernels } from './kernels.ts';
export { GraphEngine, createGraphEngine, type GraphModelDesc, type GraphLayerDesc, type BnDenseDesc, type BnDesc, type ConvDesc, type PoolDesc, type AddDesc, type TrainEngine, type GraphEngineOptions } from './graph.ts';
