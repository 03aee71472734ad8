import { test } from 'node:test';
import assert from 'node:assert/strict';
import { broadcastIndex, conv1d, conv1dGeometry, einsum, parseEinsum } from '../src/import/nd.ts';
import { roundHalfEven } from '../src/util/rounding.ts';
import { makeRng } from './util/rng.ts';

const rand = (n: number, rng = makeRng(n)) => Float64Array.from({ length: n }, () => rng.int(-8, 8) / 4);

test('roundHalfEven matches numpy round on ties and non-ties', () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, -0],
    [-1.5, -2],
    [-2.5, -2],
    [2.4999, 2],
    [2.5001, 3],
    [-2.5001, -3],
    [3, 3],
  ];
  for (const [x, want] of cases) assert.equal(roundHalfEven(x) + 0, want + 0, `round(${x})`);
});

test('einsum: matmul fast path equals explicit sums; full contraction equals the grand total', () => {
  const rng = makeRng(1);
  const [B, N, C, D] = [3, 4, 5, 6];
  const A = rand(B * N * C, rng);
  const W = rand(C * D, rng);
  const y = einsum(parseEinsum('bnc,cC->bnC'), A, [B, N, C], W, [C, D]);
  assert.deepEqual(y.shape, [B, N, D]);
  for (let r = 0; r < B * N; r++)
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += A[r * C + c]! * W[c * D + d]!;
      assert.equal(y.data[r * D + d], s);
    }
  // generic path (output order differs from the matmul form) agrees after transposition
  const yt = einsum(parseEinsum('bnc,cC->bCn'), A, [B, N, C], W, [C, D]);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++)
      for (let d = 0; d < D; d++) assert.equal(yt.data[(b * D + d) * N + n], y.data[(b * N + n) * D + d]);
  const full = einsum(parseEinsum('bnc,cC->'), A, [B, N, C], W, [C, D]);
  assert.equal(
    full.data[0],
    y.data.reduce((a, v) => a + v, 0),
  );
  assert.throws(() => parseEinsum('...c,cC->...C'), /unsupported einsum/);
});

test('conv1d: same padding centres a 3-tap kernel; valid shrinks; strides', () => {
  assert.deepEqual(conv1dGeometry(50, { kernelSize: 3, stride: 1, dilation: 1, padding: 'same' }), { Lout: 50, padLeft: 1 });
  assert.deepEqual(conv1dGeometry(50, { kernelSize: 3, stride: 1, dilation: 1, padding: 'valid' }), { Lout: 48, padLeft: 0 });
  assert.deepEqual(conv1dGeometry(10, { kernelSize: 4, stride: 2, dilation: 1, padding: 'same' }), { Lout: 5, padLeft: 1 });
  const x = Float64Array.from([1, 2, 3, 4]);
  const k = Float64Array.from([10, 100, 1000]);
  const y = conv1d(x, [1, 4, 1], k, [3, 1, 1], { kernelSize: 3, stride: 1, dilation: 1, padding: 'same' });
  // out[p] = 10·x[p−1] + 100·x[p] + 1000·x[p+1] (cross-correlation, zero padded)
  assert.deepEqual([...y.data], [100 + 2000, 10 + 200 + 3000, 20 + 300 + 4000, 30 + 400]);
});

test('broadcastIndex follows numpy broadcasting and rejects incompatible shapes', () => {
  assert.deepEqual([...broadcastIndex([1, 3], [2, 3])], [0, 1, 2, 0, 1, 2]);
  assert.deepEqual([...broadcastIndex([2, 1], [2, 3])], [0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...broadcastIndex([3], [2, 3])], [0, 1, 2, 0, 1, 2]);
  assert.throws(() => broadcastIndex([2], [2, 3]), /cannot broadcast/);
});
