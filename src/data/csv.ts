/**
 * Numeric CSV files: one sample per line, comma-separated, an optional header line (detected: a first
 * line with any non-numeric field). Values are written as exact decimals (docs/fixed-point.md §7).
 * Errors name the file, the line and the column.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.ts';
import { formatDyadic } from '../fixed/format.ts';
import type { NdArray } from './npy.ts';

export interface CsvTable extends NdArray {
  /** the header line's fields, when the file has one */
  header?: string[];
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL: Record<string, number> = {
  nan: NaN,
  inf: Infinity,
  '+inf': Infinity,
  '-inf': -Infinity,
  infinity: Infinity,
  '+infinity': Infinity,
  '-infinity': -Infinity,
};

function parseField(t: string): number | undefined {
  if (NUMBER.test(t)) return Number(t);
  const s = SPECIAL[t.toLowerCase()];
  return s;
}

/** Parses CSV text into a rows × columns array. `name` (the file name) prefixes every error message. */
export function parseCsv(text: string, name = '<csv>'): CsvTable {
  const lines = text.split(/\r?\n/);
  const rows: number[][] = [];
  let header: string[] | undefined;
  let width = -1;
  let firstRow = true;
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!.trim();
    if (line === '') continue;
    const fields = line.split(',').map((t) => t.trim());
    const vals = fields.map(parseField);
    if (firstRow) {
      firstRow = false;
      // a header has a non-empty, non-numeric field (an empty field is a data error, not a name)
      if (vals.some((v, j) => v === undefined && fields[j] !== '')) {
        header = fields;
        width = fields.length;
        continue;
      }
    }
    const badCol = vals.indexOf(undefined);
    if (badCol >= 0) {
      throw new Error(`${name}: line ${ln + 1}, column ${badCol + 1}: '${fields[badCol]}' is not a number`);
    }
    if (width >= 0 && fields.length !== width) {
      throw new Error(
        `${name}: line ${ln + 1} has ${fields.length} values, expected ${width} (like the ${header ? 'header' : 'first line'})`,
      );
    }
    width = fields.length;
    rows.push(vals as number[]);
  }
  if (rows.length === 0) throw new Error(`${name}: no data rows (empty file${header ? ' apart from a header' : ''})`);
  const data = new Float64Array(rows.length * width);
  rows.forEach((r, j) => data.set(r, j * width));
  return header ? { data, shape: [rows.length, width], header } : { data, shape: [rows.length, width] };
}

export function readCsv(path: string): CsvTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseCsv(text, path);
}

/**
 * Formats an array as CSV, one row per line (the last axis is the row; a 1-D array is one column),
 * every value as its exact decimal expansion.
 */
export function formatCsv(arr: NdArray, header?: string[]): string {
  const cols = arr.shape.length >= 2 ? arr.shape[arr.shape.length - 1]! : 1;
  const rows = cols === 0 ? 0 : arr.data.length / cols;
  const parts: string[] = [];
  if (header) parts.push(header.join(','));
  const row: string[] = new Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) row[c] = formatDyadic(arr.data[r * cols + c]!);
    parts.push(row.join(','));
  }
  return parts.join('\n') + '\n';
}

/** Writes a CSV file atomically (src/util/fs.ts writeFileAtomic: no temporary outlives a failure). */
export function writeCsv(path: string, arr: NdArray, header?: string[]): void {
  writeFileAtomic(path, formatCsv(arr, header));
}
