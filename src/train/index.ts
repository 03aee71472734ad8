/** Training utilities for HGQ models: fit (wasm engine or tfjs), β schedules and PID, callbacks, Pareto front, calibration, model I/O (model-level EBOPs and β: src/layers/model.ts). */
export { piecewiseSchedule, parseSchedule, BetaPid, type KeyPoint, type Interp, type PidOptions } from './schedule.ts';
export { offer, weaklyDominates, type FrontPoint } from './pareto.ts';
export {
  EbopsLogger,
  BetaScheduler,
  BetaPidCallback,
  ParetoCheckpoint,
  EarlyStopOnEbops,
  ProgressBar,
  type FrontEntry,
  type ParetoOptions,
} from './callbacks.ts';
export { fit, tfjsLoss, type FitOptions, type FitResult, type TaskLoss } from './fit.ts';
export { calibrate, exactEbops, type CalibrateOptions, type CalibrateResult } from './calibrate.ts';
export { saveModel, loadModel, fsHandler, writeDirAtomic, writeFileAtomic } from './io.ts';
