/** The fixed-point dataflow IR (docs/ir.md): types, builder, validation, serialization, emulator, cost, optimizer. */
export * from './types.ts';
export * from './interval.ts';
export * from './builder.ts';
export * from './validate.ts';
export * from './serialize.ts';
export * from './emulate.ts';
export * from './cost.ts';
export * from './optimize.ts';
export { compileWasmKernel, type WasmKernel } from './wasm.ts';
