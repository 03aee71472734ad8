/**
 * Reader for Keras 3 `.keras` archives: a zip holding `config.json`, `metadata.json` and
 * `model.weights.h5`. Zip: jszip (CRC-checked); HDF5: h5wasm (the HDF5 C library in wasm).
 * See README.md in this folder for why these two.
 */
import { readFile } from 'node:fs/promises';
import JSZip from 'jszip';
import * as h5wasm from 'h5wasm';
import { ModelFileError } from '../util/user-files.ts';

export type H5Data =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface H5Tensor {
  /** [] for a scalar */
  shape: number[];
  /** 'float32' | 'float64' | 'uint8' | 'int32' | 'uint32' | ... */
  dtype: string;
  /** row-major (C order), like numpy */
  data: H5Data;
}

export interface KerasArchive {
  path: string;
  /** parsed config.json */
  config: any;
  /** parsed metadata.json, or null when the archive has none */
  metadata: any;
  /**
   * every dataset of model.weights.h5 except the optimizer's state, keyed by its path without the
   * leading '/' (e.g. 'layers/q_dense/vars/0')
   */
  weights: Map<string, H5Tensor>;
  /**
   * the optimizer's state (`optimizer/vars/0`: iterations, `1`: learning rate, then its slots), saved
   * when the model was compiled; not needed for inference (last-step.ts uses it to explain stored EBOPs)
   */
  optimizer: Map<string, H5Tensor>;
  /** attributes of every group that has some (e.g. 'layers/q_dense/vars' → { name: 'q_dense' }) */
  groupAttrs: Map<string, Record<string, unknown>>;
}

const WEIGHTS = 'model.weights.h5';
const CONFIG = 'config.json';
const METADATA = 'metadata.json';

function fail(path: string, what: string): never {
  throw new ModelFileError(path, what);
}

/** Read a `.keras` file. Errors name the file and say what is wrong. */
export async function readKerasArchive(path: string): Promise<KerasArchive> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    fail(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return readKerasArchiveBytes(bytes, path);
}

/** Same as readKerasArchive, from bytes already in memory; `label` names the source in errors. */
export async function readKerasArchiveBytes(bytes: Uint8Array, label: string): Promise<KerasArchive> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  if (!isZip) {
    fail(label, 'not a Keras archive: not a zip file (a Keras 3 .keras file is a zip holding config.json and model.weights.h5)');
  }
  let zip: JSZip;
  try {
    zip = await JSZip.loadAsync(bytes, { checkCRC32: true });
  } catch (e) {
    fail(label, `truncated or corrupted zip archive (${(e as Error).message}); re-copy or re-save the model`);
  }
  const members = Object.keys(zip.files).filter((n) => !zip.files[n]!.dir);
  const member = async (name: string, required: boolean): Promise<Uint8Array | null> => {
    const f = zip.file(name);
    if (!f) {
      if (!required) return null;
      fail(
        label,
        `the archive has no ${name} (members: ${members.join(', ') || 'none'}); a Keras 3 .keras file holds ${CONFIG}, ${METADATA} and ${WEIGHTS}`,
      );
    }
    try {
      return await f.async('uint8array');
    } catch (e) {
      fail(label, `cannot extract ${name}: ${(e as Error).message} (truncated or corrupted archive)`);
    }
  };
  const parseJson = (name: string, data: Uint8Array | null): any => {
    if (data === null) return null;
    try {
      return parsePythonJson(new TextDecoder().decode(data));
    } catch (e) {
      fail(label, `${name} is not valid JSON (${(e as Error).message})`);
    }
  };
  const config = parseJson(CONFIG, await member(CONFIG, true));
  const metadata = parseJson(METADATA, await member(METADATA, false));
  const h5 = (await member(WEIGHTS, true))!;
  const { weights, optimizer, groupAttrs } = await readH5(h5, `${label}: ${WEIGHTS}`);
  return { path: label, config, metadata, weights, optimizer, groupAttrs };
}

/** Python's json module writes Infinity, -Infinity and NaN (e.g. `i_decay_speed: Infinity`); JSON.parse does not accept them. */
export function parsePythonJson(text: string): any {
  const SENTINEL = '\u0000pyjson:';
  const patched = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) =>
    m.startsWith('"') ? m : JSON.stringify(SENTINEL + m),
  );
  return JSON.parse(patched, (_k, v) => {
    if (typeof v === 'string' && v.startsWith(SENTINEL)) return Number(v.slice(SENTINEL.length));
    return v;
  });
}

let h5Module: Promise<Awaited<typeof h5wasm.ready>> | null = null;
let fileCounter = 0;

async function h5Ready() {
  if (!h5Module) {
    h5Module = h5wasm.ready.then((m) => {
      // Throw HDF5 errors as JS exceptions instead of printing the C library's diagnostics on stderr.
      m.activate_throwing_error_handler();
      return m;
    });
  }
  return h5Module;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // HDF5's error stack: the innermost ('#00N') entry says what actually failed.
  const lines = msg
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const stack = lines.filter((l) => /^#\d+/.test(l));
  const last = stack.length ? stack[stack.length - 1]! : (lines[0] ?? msg);
  return last.replace(/^#\d+:\s*\S+ line \d+ in /, '');
}

const DTYPES: Record<string, string> = {
  'float-4': 'float32',
  'float-8': 'float64',
  'int-1-s': 'int8',
  'int-1-u': 'uint8',
  'int-2-s': 'int16',
  'int-2-u': 'uint16',
  'int-4-s': 'int32',
  'int-4-u': 'uint32',
  'int-8-s': 'int64',
  'int-8-u': 'uint64',
};

/** The typed array of each dtype with number elements (int64 and uint64 hold bigints). */
const NUMBER_ARRAYS: Record<string, new (values: number[]) => H5Data> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
};

/** A dataset's value as a typed array (h5wasm gives a scalar dataset as a bare number or bigint). */
function toTyped(dtype: string, v: unknown): H5Data {
  if (ArrayBuffer.isView(v)) return v as H5Data;
  if (dtype === 'int64') return new BigInt64Array([BigInt(v as number | bigint)]);
  if (dtype === 'uint64') return new BigUint64Array([BigInt(v as number | bigint)]);
  const Typed = NUMBER_ARRAYS[dtype];
  if (!Typed) throw new Error(`unsupported dtype ${dtype}`);
  return new Typed([v as number]);
}

async function readH5(bytes: Uint8Array, label: string) {
  const m = await h5Ready();
  const FS = m.FS;
  const name = `/hgq-import-${process.pid}-${++fileCounter}.h5`;
  FS.writeFile(name, bytes);
  let file: h5wasm.File | null = null;
  const weights = new Map<string, H5Tensor>();
  const optimizer = new Map<string, H5Tensor>();
  const groupAttrs = new Map<string, Record<string, unknown>>();
  try {
    try {
      file = new h5wasm.File(name, 'r');
    } catch (e) {
      fail(label, `not a readable HDF5 file (${firstLine(e)})`);
    }
    const walk = (g: h5wasm.Group, prefix: string) => {
      const attrs: Record<string, unknown> = {};
      for (const [k, a] of Object.entries(g.attrs)) attrs[k] = a.value;
      if (Object.keys(attrs).length) groupAttrs.set(prefix.replace(/\/$/, ''), attrs);
      for (const key of g.keys()) {
        const child = g.get(key);
        const p = prefix + key;
        if (child instanceof h5wasm.Group) walk(child, p + '/');
        else if (child instanceof h5wasm.Dataset) {
          const md = child.metadata;
          const tag = md.type === 1 ? `float-${md.size}` : md.type === 0 ? `int-${md.size}-${md.signed ? 's' : 'u'}` : '';
          const dtype = DTYPES[tag];
          if (!dtype) fail(label, `dataset ${p} has an unsupported HDF5 type (class ${md.type}, ${md.size} bytes)`);
          const shape = child.shape ?? [];
          const data = toTyped(dtype, child.value);
          const n = shape.reduce((a, b) => a * b, 1);
          if (data.length !== n) fail(label, `dataset ${p}: read ${data.length} values for shape [${shape}]`);
          (p.startsWith('optimizer/') ? optimizer : weights).set(p, { shape, dtype, data });
        }
      }
    };
    try {
      walk(file, '');
    } catch (e) {
      if (e instanceof Error && e.message.startsWith(label)) throw e;
      fail(label, `cannot read the HDF5 content (${firstLine(e)})`);
    }
  } finally {
    try {
      file?.close();
    } catch {
      /* already failed */
    }
    FS.unlink(name);
  }
  return { weights, optimizer, groupAttrs };
}
