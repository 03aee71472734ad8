import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRng } from './util/rng.ts';
import { formatCsv, parseCsv, readCsv, writeCsv } from '../src/data/csv.ts';

test('CSV round trip is exact (exact decimal output) for random doubles, with and without header', () => {
  const rng = makeRng(9);
  const data = Float64Array.from({ length: 300 }, () => (rng.next() - 0.5) * 2 ** rng.int(-60, 60));
  data[0] = 0.1;
  data[1] = -0;
  data[2] = 2 ** -1074;
  const text = formatCsv({ data, shape: [100, 3] });
  assert.ok(text.startsWith('0.1000000000000000055511151231257827021181583404541015625,0,'));
  assert.ok(!/e[+-]/i.test(text), 'no exponent notation');
  const back = parseCsv(text, 'x.csv');
  assert.deepEqual(back.shape, [100, 3]);
  assert.deepEqual(
    Array.from(back.data),
    Array.from(data, (v) => v + 0),
  );
  const withHeader = parseCsv('a, b ,c\r\n' + text);
  assert.deepEqual(withHeader.header, ['a', 'b', 'c']);
  assert.deepEqual(withHeader.data, back.data);
});

test('CSV reader: blank lines skipped, exponents, inf/nan accepted as data', () => {
  const t = parseCsv('1e3,-2.5E-1\n\n+.5,  7 \ninf,nan\n\n');
  assert.deepEqual(t.shape, [3, 2]);
  assert.deepEqual(Array.from(t.data), [1000, -0.25, 0.5, 7, Infinity, NaN]);
});

test('malformed CSV gives errors naming the file, line and column', () => {
  assert.throws(() => parseCsv('1,2\n3,x\n', 'd.csv'), /d\.csv: line 2, column 2: 'x' is not a number/);
  assert.throws(() => parseCsv('a,b\n1,2\n3\n', 'd.csv'), /d\.csv: line 3 has 1 values, expected 2 \(like the header\)/);
  assert.throws(() => parseCsv('1,2,3\n4,5\n', 'e.csv'), /e\.csv: line 2 has 2 values, expected 3 \(like the first line\)/);
  assert.throws(() => parseCsv('1,,3\n', 'f.csv'), /f\.csv: line 1, column 2: '' is not a number/);
  assert.throws(() => parseCsv('0x10\n', 'g.csv'), /no data rows/); // a lone non-numeric line is a header
  assert.throws(() => parseCsv('a,b\n', 'h.csv'), /h\.csv: no data rows \(empty file apart from a header\)/);
  assert.throws(() => readCsv('/nonexistent/dir/x.csv'), /\/nonexistent\/dir\/x\.csv: cannot read/);
});

test('writeCsv writes atomically (only the target remains)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-csv-'));
  writeCsv(join(dir, 'o.csv'), { data: Float64Array.of(1.5, -2, 0.375, 4), shape: [2, 2] }, ['p', 'q']);
  assert.deepEqual(readdirSync(dir), ['o.csv']);
  assert.equal(readFileSync(join(dir, 'o.csv'), 'utf8'), 'p,q\n1.5,-2\n0.375,4\n');
  writeFileSync(join(dir, 'one.csv'), '3\n4\n');
  assert.deepEqual(readCsv(join(dir, 'one.csv')).shape, [2, 1]);
});
