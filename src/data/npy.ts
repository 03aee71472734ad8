/**
 * NPY files (numpy's `.npy`, format versions 1, 2 and 3): read little-endian f4/f8/i1/i2/i4/i8/u1/u2/u4/u8
 * arrays in C order into float64; write float64 (`<f8`). Errors name the file and the byte offset.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.ts';

export interface NdArray {
  data: Float64Array;
  shape: number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

interface Dtype {
  size: number;
  get(v: DataView, off: number): number;
}

function dtypeOf(descr: string, where: string): Dtype {
  const m = /^([<>|=])([fiub])(\d+)$/.exec(descr);
  if (!m) throw new Error(`${where}: unsupported dtype '${descr}' (hgq reads f4, f8, i1, i2, i4, i8, u1, u2, u4, u8)`);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  if (order === '>' && size > 1) {
    throw new Error(
      `${where}: big-endian dtype '${descr}' is not supported; save the array little-endian (e.g. arr.astype('<f8'))`,
    );
  }
  const key = `${kind}${size}`;
  const big = (x: bigint, off: number): number => {
    if (x > 2n ** 53n || x < -(2n ** 53n)) {
      throw new Error(`${where}: integer ${x} at byte offset ${off} does not fit a float64 exactly`);
    }
    return Number(x);
  };
  const read = READ_NUMBER[key];
  if (read) return { size, get: read };
  const readBig = READ_BIGINT[key];
  if (readBig) return { size, get: (v, o) => big(readBig(v, o), o) };
  throw new Error(`${where}: unsupported dtype '${descr}' (hgq reads f4, f8, i1, i2, i4, i8, u1, u2, u4, u8)`);
}

/** Element readers by dtype (kind and bytes; NPY data is little-endian here). */
const READ_NUMBER: Record<string, (v: DataView, o: number) => number> = {
  f4: (v, o) => v.getFloat32(o, true),
  f8: (v, o) => v.getFloat64(o, true),
  i1: (v, o) => v.getInt8(o),
  i2: (v, o) => v.getInt16(o, true),
  i4: (v, o) => v.getInt32(o, true),
  u1: (v, o) => v.getUint8(o),
  u2: (v, o) => v.getUint16(o, true),
  u4: (v, o) => v.getUint32(o, true),
  b1: (v, o) => v.getUint8(o),
};
/** The 64-bit integer dtypes, read as bigints (then checked to fit a float64 exactly). */
const READ_BIGINT: Record<string, (v: DataView, o: number) => bigint> = {
  i8: (v, o) => v.getBigInt64(o, true),
  u8: (v, o) => v.getBigUint64(o, true),
};

/** Parses NPY bytes. `name` (the file name) prefixes every error message. */
export function parseNpy(bytes: Uint8Array, name = '<npy>'): NdArray {
  const bad = (off: number, what: string): Error => new Error(`${name}: ${what} (byte offset ${off}); is it a valid .npy file?`);
  if (bytes.length < 10 || MAGIC.some((b, j) => bytes[j] !== b)) throw bad(0, 'not an NPY file (missing \\x93NUMPY magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw bad(8, 'truncated header length');
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw bad(6, `unsupported NPY format version ${major}.${bytes[7]} (hgq reads versions 1, 2 and 3)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length)
    throw bad(headerStart, `truncated header (declares ${headerLen} bytes, file has ${bytes.length - headerStart})`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw bad(headerStart, `malformed header ${JSON.stringify(header.trim())}`);
  }
  if (fortran === 'True') {
    throw new Error(`${name}: array is stored in Fortran order; hgq reads C order only (save np.ascontiguousarray(arr))`);
  }
  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const t = part.trim();
    if (t === '') continue;
    if (!/^\d+L?$/.test(t)) throw bad(headerStart, `malformed shape (${shapeText})`);
    shape.push(Number(t.replace('L', '')));
  }
  const dtype = dtypeOf(descr, name);
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * dtype.size;
  if (bytes.length - dataStart < need) {
    throw bad(
      dataStart,
      `truncated data: shape (${shape.join(', ')}) of ${descr} needs ${need} bytes, file has ${bytes.length - dataStart}`,
    );
  }
  const data = new Float64Array(count);
  for (let j = 0, off = dataStart; j < count; j++, off += dtype.size) data[j] = dtype.get(view, off);
  return { data, shape };
}

export function readNpy(path: string): NdArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseNpy(bytes, path);
}

/** Serializes a float64 array as NPY version 1 (version 2 if the header does not fit), C order. */
export function formatNpy(arr: NdArray): Uint8Array {
  const count = arr.shape.reduce((a, b) => a * b, 1);
  if (count !== arr.data.length)
    throw new Error(`formatNpy: shape (${arr.shape.join(', ')}) holds ${count} elements, data has ${arr.data.length}`);
  const shapeText = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let dict = `{'descr': '<f8', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let major = 1;
  let pre = 10;
  if (dict.length + 1 + pre > 65535) {
    major = 2;
    pre = 12;
  }
  // numpy pads the header with spaces so that the data starts at a multiple of 64 bytes
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, ' ') + '\n';
  const out = new Uint8Array(total + 8 * count);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const v = new DataView(out.buffer);
  if (major === 1) v.setUint16(8, dict.length, true);
  else v.setUint32(8, dict.length, true);
  for (let j = 0; j < dict.length; j++) out[pre + j] = dict.charCodeAt(j);
  for (let j = 0; j < count; j++) v.setFloat64(total + 8 * j, arr.data[j]!, true);
  return out;
}

/** Writes an NPY file atomically (src/util/fs.ts writeFileAtomic: no temporary outlives a failure). */
export function writeNpy(path: string, arr: NdArray): void {
  writeFileAtomic(path, formatNpy(arr));
}
