import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRng } from './util/rng.ts';
import { formatNpy, parseNpy, readNpy, writeNpy } from '../src/data/npy.ts';

/** An NPY file as numpy writes it: magic, version, header length, dict padded with spaces and '\n'. */
function npy(descr: string, shape: number[], body: Uint8Array, opts: { major?: number; fortran?: boolean } = {}): Uint8Array {
  const major = opts.major ?? 1;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': ${opts.fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const pre = major === 1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1) + '\n';
  const out = new Uint8Array(total + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const v = new DataView(out.buffer);
  if (major === 1) v.setUint16(8, dict.length, true);
  else v.setUint32(8, dict.length, true);
  for (let j = 0; j < dict.length; j++) out[pre + j] = dict.charCodeAt(j);
  out.set(body, total);
  return out;
}

function bytes(n: number, put: (v: DataView, j: number) => void, size: number): Uint8Array {
  const b = new Uint8Array(n * size);
  const v = new DataView(b.buffer);
  for (let j = 0; j < n; j++) put(v, j);
  return b;
}

test('reads every supported little-endian dtype, versions 1, 2 and 3', () => {
  const vals = [-3, 0, 5, 127, -128, 100];
  const u = [0, 1, 200, 255, 7, 9];
  const cases: [string, Uint8Array, number[]][] = [
    ['<f8', bytes(6, (v, j) => v.setFloat64(j * 8, vals[j]! + 0.125, true), 8), vals.map((x) => x + 0.125)],
    ['<f4', bytes(6, (v, j) => v.setFloat32(j * 4, vals[j]! / 4, true), 4), vals.map((x) => x / 4)],
    ['|i1', bytes(6, (v, j) => v.setInt8(j, vals[j]!), 1), vals],
    ['<i2', bytes(6, (v, j) => v.setInt16(j * 2, vals[j]! * 100, true), 2), vals.map((x) => x * 100)],
    ['<i4', bytes(6, (v, j) => v.setInt32(j * 4, vals[j]! * 1e6, true), 4), vals.map((x) => x * 1e6)],
    ['<i8', bytes(6, (v, j) => v.setBigInt64(j * 8, BigInt(vals[j]!) * 10n ** 12n, true), 8), vals.map((x) => x * 1e12)],
    ['|u1', bytes(6, (v, j) => v.setUint8(j, u[j]!), 1), u],
    ['<u2', bytes(6, (v, j) => v.setUint16(j * 2, u[j]! * 250, true), 2), u.map((x) => x * 250)],
    ['<u4', bytes(6, (v, j) => v.setUint32(j * 4, u[j]! * 1e7, true), 4), u.map((x) => x * 1e7)],
    ['<u8', bytes(6, (v, j) => v.setBigUint64(j * 8, BigInt(u[j]!) * 10n ** 13n, true), 8), u.map((x) => x * 1e13)],
    ['|b1', bytes(6, (v, j) => v.setUint8(j, j % 2), 1), [0, 1, 0, 1, 0, 1]],
  ];
  for (const major of [1, 2, 3]) {
    for (const [descr, body, want] of cases) {
      const a = parseNpy(npy(descr, [2, 3], body, { major }), 't.npy');
      assert.deepEqual(a.shape, [2, 3], descr);
      assert.deepEqual(Array.from(a.data), want, `${descr} v${major}`);
    }
  }
});

test('write f8 then read back is exact; shapes 1-D, scalar, 3-D; atomic write', () => {
  const rng = makeRng(4);
  const dir = mkdtempSync(join(tmpdir(), 'hgq-npy-'));
  for (const shape of [[7], [], [2, 3, 4], [0, 5]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float64Array.from({ length: n }, () => (rng.next() - 0.5) * 2 ** rng.int(-40, 40));
    const f = join(dir, 'a.npy');
    writeNpy(f, { data, shape });
    const back = readNpy(f);
    assert.deepEqual(back.shape, shape);
    assert.deepEqual(back.data, data);
    assert.equal(formatNpy({ data, shape }).length % 8, 0);
  }
  assert.deepEqual(readdirSync(dir), ['a.npy']);
});

test('bad files give clear errors naming the file and offset', () => {
  const ok = npy(
    '<f8',
    [2],
    bytes(2, (v, j) => v.setFloat64(j * 8, j, true), 8),
  );
  assert.throws(() => parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), 'a.npy'), /a\.npy: not an NPY file/);
  assert.throws(
    () => parseNpy(ok.subarray(0, ok.length - 3), 'b.npy'),
    /b\.npy: truncated data: shape \(2\) of <f8 needs 16 bytes, file has 13 \(byte offset 128\)/,
  );
  assert.throws(() => parseNpy(ok.subarray(0, 30), 'c.npy'), /c\.npy: truncated header/);
  assert.throws(
    () => parseNpy(npy('<f8', [2, 2], new Uint8Array(32), { fortran: true }), 'd.npy'),
    /d\.npy: array is stored in Fortran order; hgq reads C order only/,
  );
  assert.throws(() => parseNpy(npy('>f8', [1], new Uint8Array(8)), 'e.npy'), /e\.npy: big-endian dtype '>f8' is not supported/);
  assert.throws(() => parseNpy(npy('<c16', [1], new Uint8Array(16)), 'f.npy'), /f\.npy: unsupported dtype '<c16'/);
  const v9 = ok.slice();
  v9[6] = 9;
  assert.throws(() => parseNpy(v9, 'g.npy'), /g\.npy: unsupported NPY format version 9\.0/);
  const big = npy(
    '<i8',
    [1],
    bytes(1, (v) => v.setBigInt64(0, 2n ** 60n + 1n, true), 8),
  );
  assert.throws(
    () => parseNpy(big, 'h.npy'),
    /h\.npy: integer 1152921504606846977 at byte offset 128 does not fit a float64 exactly/,
  );
  assert.throws(() => readNpy('/nonexistent/x.npy'), /\/nonexistent\/x\.npy: cannot read/);
});
