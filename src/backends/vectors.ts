/**
 * Test vectors on the bus layout: random port codes (uniform, with extreme values mixed in) and/or given
 * data quantized onto the port types, the emulator's expected outputs, and their hex-per-line encodings
 * (one whole bus vector per line, most significant digit first, element 0 in the least significant bits).
 */
import { totalmem } from 'node:os';
import { quantize } from '../fixed/index.ts';
import type { Program } from '../ir/types.ts';
import { compileProgram } from '../ir/emulate.ts';
import { mulberry32 as seededRandom } from '../util/random.ts';
import { dyadic, dyadicCode, fmtRange } from './fmt.ts';
import type { BusField, BusLayout, InputField } from './layout.ts';
import { inputLayout, outputLayout } from './layout.ts';

const MAX_EXACT_FIELD = 52;

function checkWidths(l: BusLayout, what: string): void {
  for (const f of l.fields)
    if (f.w > MAX_EXACT_FIELD)
      throw new RangeError(
        `${what} element ${f.index} is ${f.w} bits wide; vector files support fields up to ${MAX_EXACT_FIELD} bits`,
      );
}

/** Random input values on the port grids: 1 in 8 draws an extreme (min, max, 0, ±step), the rest uniform. */
export function randomPortValues(layout: BusLayout<InputField>, count: number, seed = 1): Float64Array {
  checkWidths(layout, 'input');
  const rnd = seededRandom(seed);
  const n = layout.fields.length;
  const x = new Float64Array(count * n);
  const ranges = layout.fields.map((f) => fmtRange(f).map(Number) as [number, number]);
  for (let v = 0; v < count; v++)
    for (let j = 0; j < n; j++) {
      const f = layout.fields[j]!;
      if (f.w === 0) continue;
      const [lo, hi] = ranges[j]!;
      let c: number;
      if (rnd() < 0.125) {
        const pick = Math.floor(rnd() * 5);
        c = [lo, hi, 0, 1, -1][pick]!;
        c = Math.min(hi, Math.max(lo, c));
      } else if (f.w <= 32) c = lo + Math.floor(rnd() * (hi - lo + 1));
      else c = lo + Math.floor(rnd() * 2 ** (f.w - 26)) * 2 ** 26 + Math.floor(rnd() * 2 ** 26);
      x[v * n + j] = c * 2 ** f.lsb + 0;
    }
  return x;
}

/** Given raw data (count × n), each element quantized onto its port type (so hardware and emulator see the same values). */
export function dataToPortValues(layout: BusLayout<InputField>, data: Float64Array): Float64Array {
  const n = layout.fields.length;
  if (n === 0 || data.length % n !== 0)
    throw new RangeError(`data has ${data.length} values, not a multiple of the ${n} input elements`);
  const x = new Float64Array(data.length);
  for (let k = 0; k < data.length; k++) {
    const f = layout.fields[k % n]!;
    x[k] = f.type ? quantize(data[k]!, f.type, f.round, f.overflow) : 0;
  }
  return x;
}

/** One hex line per vector: the bus value, ceil(width/4) digits. */
export function packHex(layout: BusLayout, values: Float64Array, count: number): string[] {
  checkWidths(layout, 'bus');
  const n = layout.fields.length;
  const W = Math.max(1, layout.width);
  const words = new Uint32Array(Math.ceil(W / 32));
  const digits = Math.ceil(W / 4);
  const lines: string[] = new Array(count);
  const ranges = layout.fields.map((f) => fmtRange(f).map(Number) as [number, number]); // once per field, not per element
  for (let v = 0; v < count; v++) {
    words.fill(0);
    for (let j = 0; j < n; j++) {
      const f = layout.fields[j]!;
      if (f.w === 0) continue;
      const val = values[v * n + j]!;
      const code = codeOf(f, ranges[j]!, val, v, j);
      // two's-complement pattern, written bit range by bit range (≤ 52 bits, exact in doubles)
      let p = code < 0 ? code + 2 ** f.w : code;
      let off = f.offset;
      let left = f.w;
      while (left > 0) {
        const bit = off % 32;
        const take = Math.min(left, 32 - bit);
        const chunk = p % 2 ** take;
        words[off >>> 5] = (words[off >>> 5]! | ((chunk * 2 ** bit) >>> 0)) >>> 0;
        p = Math.floor(p / 2 ** take);
        off += take;
        left -= take;
      }
    }
    let s = '';
    for (let d = digits - 1; d >= 0; d--) s += ((words[(d * 4) >>> 5]! >>> ((d * 4) % 32)) & 15).toString(16);
    lines[v] = s;
  }
  return lines;
}

function codeOf(f: BusField, [lo, hi]: [number, number], val: number, v: number, j: number): number {
  // Scaling by a power of two is exact, so a safe-integer result is the code; otherwise take the exact BigInt path.
  const scaled = val * 2 ** -f.lsb;
  const c = Number.isSafeInteger(scaled) && (scaled !== 0 || val === 0) ? scaled + 0 : Number(dyadicCode(dyadic(val), f.lsb));
  if (c < lo || c > hi)
    throw new Error(`internal: vector ${v} element ${j} value ${val} does not fit its field (${f.w} bits, step 2^${f.lsb})`);
  return c;
}

/** Decode one hex bus line into element values (for reports and tests). */
export function unpackHex(layout: BusLayout, line: string): number[] {
  const bus = BigInt('0x' + (line.trim() || '0'));
  return layout.fields.map((f) => {
    if (f.w === 0) return 0;
    let c = (bus >> BigInt(f.offset)) & ((1n << BigInt(f.w)) - 1n);
    if (f.signed && c >> BigInt(f.w - 1)) c -= 1n << BigInt(f.w);
    return Number(c) * 2 ** f.lsb + 0;
  });
}

export interface VectorSet {
  count: number;
  /** port values, count × nIn */
  inputs: Float64Array;
  /** emulator outputs, count × nOut */
  expected: Float64Array;
  inHex: string[];
  expHex: string[];
}

/** `count` random vectors, then the given data (quantized onto the ports), with expected outputs from the emulator. */
export function makeVectors(p: Program, count: number, opts: { data?: Float64Array; seed?: number } = {}): VectorSet {
  const il = inputLayout(p);
  const ol = outputLayout(p);
  const nIn = il.fields.length;
  const rand = randomPortValues(il, count, opts.seed ?? 1);
  const given = opts.data ? dataToPortValues(il, opts.data) : new Float64Array(0);
  const total = count + (nIn ? given.length / nIn : 0);
  const inputs = new Float64Array(total * nIn);
  inputs.set(rand, 0);
  inputs.set(given, rand.length);
  const expected = total === 0 ? new Float64Array(0) : compileProgram(p).run(inputs, total);
  return { count: total, inputs, expected, inHex: packHex(il, inputs, total), expHex: packHex(ol, expected, total) };
}

/**
 * Vector counts a check can handle. Vector files are built as one JS string each (V8's limit is 2^29
 * characters), the port values and expected outputs live in memory as float64, and a simulator runs ~10^4
 * vectors per second: 10 million is hours of simulation already.
 */
export const MAX_VECTORS = 10_000_000;
const MAX_FILE_CHARS = 2 ** 28;

/** Why `count` vectors for `p` are more than this machine can build (null when fine); `what` names the option. */
export function vectorCountProblem(count: number, what: string, p?: Program): string | null {
  if (count > MAX_VECTORS)
    return `${what} ${count} is more than the ${MAX_VECTORS.toLocaleString('en')} vectors hgq can check; use fewer`;
  if (!p) return null;
  const il = inputLayout(p);
  const ol = outputLayout(p);
  const hexChars = Math.ceil(Math.max(il.width, ol.width, 1) / 4) + 1;
  const fileLimit = Math.floor(MAX_FILE_CHARS / hexChars);
  // port values, expected outputs, and their hex lines (one-byte strings with ~24 bytes of header each)
  const bytesPerVector = 16 * (il.fields.length + ol.fields.length) + 2 * (hexChars + 32);
  const memLimit = Math.floor(totalmem() / 4 / bytesPerVector);
  const limit = Math.min(fileLimit, memLimit);
  if (count > limit)
    return `${what} ${count}: vectors of this design (${il.width} input bits, ${ol.width} output bits) are limited to ${limit.toLocaleString('en')} on this machine (${
      fileLimit <= memLimit ? 'vector file size' : `a quarter of its ${Math.round(totalmem() / 2 ** 30)} GiB memory`
    }); use fewer`;
  return null;
}
