/**
 * The quantizer kernels' wasm module (assembly/quantizer.ts, embedded in wasm-bytes.ts), instantiated once per
 * tfjs-wasm memory so it works on the backend's tensors in place: the training kernels (train-kernels.ts) and
 * the RND inference kernels (kernels.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import { QUANTIZER_WASM_BASE64 } from './wasm-bytes.ts';

export interface QuantizerWasm {
  wrap_fwd(x: number, n: number, P: number, scale: number, step: number, m: number, out: number, amax: number): void;
  wrap_bwd(x: number, dy: number, n: number, P: number, scale: number, step: number, m: number, acc: number): void;
  infer_round(x: number, n: number, P: number, prm: number, out: number): void;
  infer_quant(x: number, n: number, P: number, prm: number, ovf: number, out: number): void;
}
export interface WasmBackendish {
  wasm: { asm?: { memory?: unknown }; HEAPU8: Uint8Array; _malloc(n: number): number; _free(p: number): void };
  dataIdMap: { get(id: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}
// The project compiles without the DOM lib: the few WebAssembly calls used here, typed locally.
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
  Memory: abstract new (...a: never[]) => object;
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let compiled: object | null | undefined;
const instances = new WeakMap<object, QuantizerWasm | null>();

function decodeBase64(s: string): Uint8Array {
  if (typeof Buffer !== 'undefined') return new Uint8Array(Buffer.from(s, 'base64'));
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let j = 0; j < bin.length; j++) out[j] = bin.charCodeAt(j);
  return out;
}

/** The kernels bound to this wasm backend's memory, or null when that cannot be done (e.g. a threaded build). */
export function wasmKernels(backend: WasmBackendish): QuantizerWasm | null {
  const memory = backend.wasm?.asm?.memory;
  if (!WA || !memory || !(memory instanceof WA.Memory)) return null;
  if (instances.has(memory)) return instances.get(memory)!;
  let k: QuantizerWasm | null = null;
  try {
    if (compiled === undefined) compiled = new WA.Module(decodeBase64(QUANTIZER_WASM_BASE64));
    if (compiled) k = new WA.Instance(compiled, { env: { memory } }).exports as unknown as QuantizerWasm;
  } catch {
    k = null; // a shared (threaded) memory does not link to this module: the tf-op path is used instead
  }
  instances.set(memory, k);
  return k;
}
