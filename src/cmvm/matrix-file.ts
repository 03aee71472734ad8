/**
 * Constant matrices from files (docs/cmvm.md §3): JSON (an array of rows) or CSV (one row of W per line).
 * Row r holds output r's coefficients. Entries must be exact fixed-point numbers: decimals are parsed exactly
 * (0.1 is 1/10, which no fixed-point type holds, so it is rejected) and may have at most MAX_FRACTION_BITS
 * fraction bits and magnitude below 2^MAX_INTEGER_BITS.
 */
import { decimalToRational, doubleToDyadic, parseDecimalParts } from '../fixed/quantize.ts';

export const MAX_FRACTION_BITS = 32;
export const MAX_INTEGER_BITS = 40;

/** A matrix file that cannot be used; the message says where and what to fix. */
export class MatrixFileError extends Error {}

function isPowerOfTwo(d: bigint): boolean {
  return d > 0n && (d & (d - 1n)) === 0n;
}

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** The exact value of a decimal string, or a MatrixFileError naming `where`. */
export function parseEntry(token: string, where: string): number {
  const t = token.trim();
  if (t === '') throw new MatrixFileError(`${where}: empty entry (write 0 for a zero coefficient)`);
  const p = parseDecimalParts(t);
  if (p === null) throw new MatrixFileError(`${where}: "${t}" is not a number`);
  if (typeof p === 'number') throw new MatrixFileError(`${where}: "${t}" is not a finite number`);
  const r = decimalToRational(p);
  if (r === null) {
    // an exponent too large to expand: far outside the limits either way
    throw new MatrixFileError(
      p.scale > 0
        ? `${where}: ${t} is too large (|entry| must be below 2^${MAX_INTEGER_BITS})`
        : `${where}: ${t} needs more than the ${MAX_FRACTION_BITS} supported fraction bits; round it to a multiple of 2^-${MAX_FRACTION_BITS}`,
    );
  }
  const g = gcd(r.n, r.d);
  const n = g > 1n ? r.n / g : r.n;
  const d = g > 1n ? r.d / g : r.d;
  if (!isPowerOfTwo(d))
    throw new MatrixFileError(
      `${where}: ${t} is not a fixed-point number (its denominator is not a power of two); round it to a multiple of 2^-f first`,
    );
  return checkValue(Number(n) / Number(d), n, d, t, where);
}

function checkValue(v: number, n: bigint, d: bigint, shown: string, where: string): number {
  const fbits = d.toString(2).length - 1;
  if (fbits > MAX_FRACTION_BITS)
    throw new MatrixFileError(
      `${where}: ${shown} needs ${fbits} fraction bits, more than the ${MAX_FRACTION_BITS} supported; round it to a multiple of 2^-${MAX_FRACTION_BITS}`,
    );
  const mag = n < 0n ? -n : n;
  if (mag >= 1n << BigInt(MAX_INTEGER_BITS + fbits))
    throw new MatrixFileError(`${where}: ${shown} is too large (|entry| must be below 2^${MAX_INTEGER_BITS})`);
  return v + 0;
}

/**
 * A JSON number (already a double): exact if it has few fraction bits; 0.1 parses to a 55-bit fraction.
 * `token` is its spelling in the file: JSON.parse turns 1e400 into Infinity and 1e-400 into 0.
 */
function jsonEntry(v: unknown, token: string | undefined, where: string): number {
  if (typeof v === 'string') return parseEntry(v, where);
  if (typeof v !== 'number') throw new MatrixFileError(`${where}: ${JSON.stringify(v)} is not a number`);
  const shown = token ?? String(v);
  if (!Number.isFinite(v))
    throw new MatrixFileError(`${where}: ${shown} is too large (|entry| must be below 2^${MAX_INTEGER_BITS})`);
  if (v === 0 && !/^-?0*\.?0*(e|$)/i.test(shown))
    throw new MatrixFileError(
      `${where}: ${shown} is too small (nonzero entries need at most ${MAX_FRACTION_BITS} fraction bits: |entry| >= 2^-${MAX_FRACTION_BITS})`,
    );
  const { m, e } = doubleToDyadic(v);
  const n = e >= 0 ? m << BigInt(e) : m;
  const d = e >= 0 ? 1n : 1n << BigInt(-e);
  if (-e > MAX_FRACTION_BITS)
    throw new MatrixFileError(
      `${where}: ${v} is not an exact fixed-point number with at most ${MAX_FRACTION_BITS} fraction bits (decimals like 0.1 have no exact binary value); use multiples of 2^-f such as 0.125`,
    );
  return checkValue(v, n, d, String(v), where);
}

function checkShape(rows: number[][], source: string): number[][] {
  if (rows.length === 0)
    throw new MatrixFileError(`${source}: the matrix is empty (expected at least one row with at least one entry)`);
  const n = rows[0]!.length;
  if (n === 0) throw new MatrixFileError(`${source}: row 1 is empty (expected at least one entry per row)`);
  rows.forEach((r, i) => {
    if (r.length !== n)
      throw new MatrixFileError(
        `${source}: row ${i + 1} has ${r.length} entries but row 1 has ${n}; every row needs one entry per input`,
      );
  });
  return rows;
}

/** The number tokens of a JSON text in document order (strings skipped). */
function jsonNumberTokens(text: string): string[] {
  const tokens: string[] = [];
  for (const m of text.matchAll(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g)) if (m[0][0] !== '"') tokens.push(m[0]);
  return tokens;
}

export function parseMatrixJSON(text: string, source: string): number[][] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new MatrixFileError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new MatrixFileError(`${source}: expected a JSON array of rows, e.g. [[1, 2], [3, 4]]`);
  // entries are checked in document order and stop at the first non-number, so the n-th number entry is the
  // n-th number token of the text
  const tokens = jsonNumberTokens(text);
  let nth = 0;
  const rows = raw.map((row, i) => {
    if (!Array.isArray(row))
      throw new MatrixFileError(`${source}: row ${i + 1} is not an array (expected an array of rows, e.g. [[1, 2], [3, 4]])`);
    return row.map((v, j) =>
      jsonEntry(v, typeof v === 'number' ? tokens[nth++] : undefined, `${source}: row ${i + 1}, column ${j + 1}`),
    );
  });
  return checkShape(rows, source);
}

/** CSV: one row per line, comma-separated; blank lines are skipped. */
export function parseMatrixCSV(text: string, source: string): number[][] {
  const rows: number[][] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    rows.push(line.split(',').map((tok, j) => parseEntry(tok, `${source}: line ${i + 1}, column ${j + 1}`)));
  });
  return checkShape(rows, source);
}

/** By extension: .json → JSON, anything else → CSV. */
export function parseMatrixFile(text: string, path: string): number[][] {
  return /\.json$/i.test(path) ? parseMatrixJSON(text, path) : parseMatrixCSV(text, path);
}
