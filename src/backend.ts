/**
 * TensorFlow.js backend selection. One call decides for the whole process:
 * tfjs-node when the user has installed it (optional, never required), else the WebAssembly backend, else the
 * pure-JS cpu backend with a one-line notice. Idempotent: later calls return the backend already chosen.
 *
 * Known gaps on wasm (tfjs 4.22), for code that trains on it: no Conv2DBackpropFilter, no UnsortedSegmentSum
 * (so gather has no gradient), no Einsum; MaxPool's gradient is wrong where the window max is <= 0. No backend
 * differentiates comparison ops: build masks with tf.step or inside a tf.customGrad forward.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';

let chosen: Promise<string> | null = null;

/** Initialize a backend (default: tensorflow if installed, else wasm, else cpu). Returns the active backend name. */
export function initBackend(preferred?: BackendName): Promise<string> {
  if (preferred !== undefined && !['wasm', 'cpu', 'tensorflow'].includes(preferred))
    return Promise.reject(new Error(`initBackend: unknown backend '${String(preferred)}'; use 'wasm', 'cpu' or 'tensorflow'`));
  if (chosen === null) chosen = choose(preferred);
  return chosen;
}

/** Switch backend explicitly (tests compare backends); registers wasm on first use. Returns the active name. */
export async function useBackend(name: BackendName): Promise<string> {
  if (name === 'wasm') await registerWasm();
  if (name === 'tensorflow' && !(await tryTfjsNode())) throw new Error("useBackend: '@tensorflow/tfjs-node' is not installed");
  if (!(await tf.setBackend(name))) throw new Error(`useBackend: backend '${name}' failed to initialize`);
  await tf.ready();
  chosen = Promise.resolve(tf.getBackend());
  return tf.getBackend();
}

async function choose(preferred?: BackendName): Promise<string> {
  const order: BackendName[] = preferred ? [preferred, 'wasm', 'cpu'] : ['tensorflow', 'wasm', 'cpu'];
  for (const name of order) {
    try {
      if (name === 'tensorflow' && !(await tryTfjsNode())) continue;
      if (name === 'wasm' && !(await registerWasm())) continue;
      if (await tf.setBackend(name)) {
        await tf.ready();
        if (name === 'cpu' && preferred !== 'cpu')
          process.stderr.write('hgq: WebAssembly backend unavailable, using the slower cpu backend\n');
        return tf.getBackend();
      }
    } catch {
      // try the next one
    }
  }
  throw new Error('initBackend: no TensorFlow.js backend could be initialized');
}

let tfjsNode: boolean | null = null;
async function tryTfjsNode(): Promise<boolean> {
  if (tfjsNode !== null) return tfjsNode;
  try {
    // A variable specifier keeps TypeScript and bundlers from requiring the optional package.
    const spec = '@tensorflow/tfjs-node';
    await import(spec);
    tfjsNode = tf.findBackend('tensorflow') !== null;
  } catch {
    tfjsNode = false;
  }
  return tfjsNode;
}

let wasmRegistered: boolean | null = null;
async function registerWasm(): Promise<boolean> {
  if (wasmRegistered !== null) return wasmRegistered;
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (typeof process !== 'undefined' && process.versions?.node) {
      // In Node the .wasm binaries are read from the package's dist directory (a path prefix, trailing slash).
      const require = createRequire(import.meta.url);
      const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
      wasm.setWasmPaths(join(dist, '/'));
    }
    wasmRegistered = tf.findBackend('wasm') !== null || tf.engine().registryFactory['wasm'] !== undefined;
    if (wasmRegistered) {
      try {
        patchWasmSlice();
      } catch (e) {
        // a tfjs version with another Slice: keep its kernel (slower slicing, same values)
        process.stderr.write(`hgq: note: kept tfjs-wasm's own Slice kernel (${(e as Error).message})\n`);
      }
    }
  } catch {
    wasmRegistered = false;
  }
  return wasmRegistered;
}

interface WasmBackendish {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

/**
 * tfjs-backend-wasm 4.22's Slice copies the whole input tensor out of the wasm heap (readSync) before taking
 * the slice, so cutting one batch off the 50k MNIST training images copied 157 MB: calibration, `predict` and
 * evaluation (which slice their input batch by batch) spent seconds there. A contiguous slice — a run of rows
 * of the leading axes, which is how batches are cut — is copied straight from a heap view instead; other slices
 * (and strings) go to the original kernel. Same values: a contiguous slice is one subarray either way.
 */
function patchWasmSlice(): void {
  const orig = tf.getKernel('Slice', 'wasm');
  if (!orig || (orig as { hgqContiguous?: boolean }).hgqContiguous) return;
  const kernelFunc: tf.KernelFunc = (args) => {
    const x = args.inputs['x'] as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
    if (x.dtype === 'string' || !tf.slice_util.isSliceContinous(x.shape, b, s)) return orig.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendish;
    const out = backend.makeOutput(s, x.dtype); // before the views: allocating may grow (detach) the heap
    const off = tf.slice_util.computeFlatOffset(b, tf.util.computeStrides(x.shape));
    const n = tf.util.sizeFromShape(s);
    (backend.typedArrayFromHeap(out) as Float32Array).set((backend.typedArrayFromHeap(x) as Float32Array).subarray(off, off + n));
    return out;
  };
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ ...orig, kernelFunc, hgqContiguous: true } as tf.KernelConfig);
}
