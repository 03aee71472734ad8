/**
 * HDF5 datasets by name (h5wasm, the HDF5 C library in WebAssembly): numeric datasets (float 4/8 bytes,
 * integers 1-8 bytes) read into float64. Errors name the file, the dataset and the datasets the file holds.
 */
import { readFileSync } from 'node:fs';
import * as h5wasm from 'h5wasm';
import type { NdArray } from './npy.ts';

let ready: Promise<Awaited<typeof h5wasm.ready>> | null = null;
let counter = 0;

function h5(): Promise<Awaited<typeof h5wasm.ready>> {
  ready ??= h5wasm.ready.then((m) => {
    m.activate_throwing_error_handler(); // errors as exceptions, not C diagnostics on stderr
    return m;
  });
  return ready;
}

/** Every dataset path in the file ('/'-separated, no leading slash). */
function datasets(g: h5wasm.Group, prefix = ''): string[] {
  const out: string[] = [];
  for (const key of g.keys()) {
    const child = g.get(key);
    if (child instanceof h5wasm.Group) out.push(...datasets(child, `${prefix}${key}/`));
    else if (child instanceof h5wasm.Dataset) out.push(prefix + key);
  }
  return out;
}

/** Reads dataset `name` (a path inside the file, e.g. `x` or `train/features`). */
export async function readHdf5Dataset(path: string, name: string): Promise<NdArray> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  const m = await h5();
  const mem = `/hgq-data-${process.pid}-${++counter}.h5`;
  m.FS.writeFile(mem, bytes);
  let file: h5wasm.File | null = null;
  try {
    try {
      file = new h5wasm.File(mem, 'r');
    } catch {
      throw new Error(`${path}: not a readable HDF5 file`);
    }
    const node = file.get(name.replace(/^\//, ''));
    if (!(node instanceof h5wasm.Dataset)) {
      throw new Error(`${path}: no dataset '${name}' (the file holds: ${datasets(file).join(', ') || 'no datasets'})`);
    }
    const md = node.metadata;
    if (md.type !== 0 && md.type !== 1) throw new Error(`${path}: dataset '${name}' is not numeric (HDF5 type class ${md.type})`);
    const shape = [...(node.shape ?? [])];
    const value = node.value as unknown;
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    if (ArrayBuffer.isView(value)) {
      const arr = value as unknown as ArrayLike<number | bigint>;
      if (arr.length !== n) throw new Error(`${path}: dataset '${name}': read ${arr.length} values for shape [${shape}]`);
      for (let j = 0; j < n; j++) data[j] = Number(arr[j]);
    } else data[0] = Number(value);
    return { data, shape };
  } finally {
    try {
      file?.close();
    } catch {
      /* already failed */
    }
    m.FS.unlink(mem);
  }
}
