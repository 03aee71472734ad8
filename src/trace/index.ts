/** Model → IR program (see trace.ts). */
export { trace, TraceError, type TraceOptions } from './trace.ts';
export { supportedLayers } from './layers.ts';
export type { CmvmMethod } from './matvec.ts';
