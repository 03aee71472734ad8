/** Exact fixed-point semantics (docs/fixed-point.md): types, quantization, intervals, type names, exact printing. */
export * from './types.ts';
export * from './quantize.ts';
export * from './interval.ts';
export * from './format.ts';
export * from './typename.ts';
