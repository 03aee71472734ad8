import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIdx, loadMnist, mnistDir } from '../src/data/mnist.ts';

function idx(type: number, shape: number[], body: number[], bytesPer = 1): Uint8Array {
  const h = new Uint8Array(4 + 4 * shape.length);
  const v = new DataView(h.buffer);
  h[2] = type;
  h[3] = shape.length;
  shape.forEach((s, d) => v.setUint32(4 + 4 * d, s, false));
  const b = new Uint8Array(body.length * bytesPer);
  const bv = new DataView(b.buffer);
  body.forEach((x, j) => (bytesPer === 1 ? bv.setUint8(j, x) : bv.setInt32(j * 4, x, false)));
  return new Uint8Array([...h, ...b]);
}

test('IDX parser reads uint8 and big-endian int32, plain and gzip', () => {
  const a = parseIdx(idx(0x08, [2, 3], [1, 2, 3, 4, 5, 255]));
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual(Array.from(a.data), [1, 2, 3, 4, 5, 255]);
  const b = parseIdx(gzipSync(idx(0x0c, [3], [-7, 65536, 2], 4)));
  assert.deepEqual(Array.from(b.data), [-7, 65536, 2]);
});

test('IDX parser rejects bad magic, truncation and corrupt gzip with clear messages', () => {
  assert.throws(() => parseIdx(new Uint8Array([1, 2, 3, 4]), 'x.idx'), /x\.idx: not an IDX file/);
  assert.throws(() => parseIdx(idx(0x08, [2, 3], [1, 2, 3]), 'y'), /truncated or corrupt/);
  const gz = gzipSync(idx(0x08, [4], [1, 2, 3, 4]));
  assert.throws(() => parseIdx(gz.subarray(0, gz.length - 6), 'z.gz'), /z\.gz: corrupt gzip/);
  assert.throws(() => parseIdx(idx(0x07, [1], [0]), 'w'), /unknown IDX element type/);
});

test('MNIST loads with pixels in [0,1], labels 0..9, a seeded reproducible disjoint split', () => {
  const s = loadMnist({ seed: 7, limit: { train: 500, val: 200, test: 100 } });
  assert.equal(s.train.n, 500);
  assert.equal(s.val.n, 200);
  assert.equal(s.test.n, 100);
  assert.equal(s.train.images.length, 500 * 784);
  let mx = 0,
    mn = 1;
  for (const p of s.train.images) {
    mx = Math.max(mx, p);
    mn = Math.min(mn, p);
  }
  assert.equal(mn, 0);
  assert.equal(mx, 1);
  for (const l of s.val.labels) assert.ok(l >= 0 && l <= 9);
  // first test label of MNIST t10k is 7 (file order is preserved for the test set)
  assert.equal(s.test.labels[0], 7);
  const again = loadMnist({ seed: 7, limit: { train: 500, val: 200, test: 100 } });
  assert.deepEqual(again.train.labels, s.train.labels);
  const other = loadMnist({ seed: 8, limit: { train: 500 } });
  assert.notDeepEqual(other.train.labels, s.train.labels);
});

test('MNIST with a missing file names the file', () => {
  const d = mkdtempSync(join(tmpdir(), 'mnist-'));
  copyFileSync(join(mnistDir(), 'train-labels-idx1-ubyte'), join(d, 'train-labels-idx1-ubyte'));
  writeFileSync(join(d, 'train-images-idx3-ubyte'), idx(0x08, [60000, 28, 28], [0, 0]));
  assert.throws(() => loadMnist({ dir: d }), /train-images-idx3-ubyte: IDX size mismatch/);
  assert.throws(() => loadMnist({ dir: join(d, 'nope') }), /MNIST: missing .*train-images-idx3-ubyte/);
});
