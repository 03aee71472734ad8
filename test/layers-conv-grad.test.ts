import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QConv1D, QConv2D, type QConvArgs } from '../src/layers/conv.ts';
import { patches, windowGeometry, windowTaps, type Window1D } from '../src/layers/patches.ts';
import { makeRng, type Rng } from './util/rng.ts';

await initBackend();

type ConvFn = (x: tf.Tensor, k: tf.Tensor, b?: tf.Tensor | null) => tf.Tensor;
const ints = (rng: Rng, shape: number[], lo: number, hi: number) =>
  tf.tensor(
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(lo, hi)),
    shape,
  );

/**
 * The layer's convolution (conv2d forward, custom gradient: conv2dTranspose + im2col matmul) against the
 * slices + matmul formulation (every op differentiable on every backend). Small integers make every sum
 * exact, so values and gradients must agree exactly whatever the summation order.
 */
function check(seed: number, Layer: typeof QConv1D | typeof QConv2D, args: QConvArgs, inShape: number[], useBias: boolean) {
  const rng = makeRng(seed);
  const l = new Layer({ ...args, useBias });
  tf.dispose(l.apply(tf.zeros([1, ...inShape])) as tf.Tensor);
  const conv = (l as unknown as { conv: ConvFn }).conv.bind(l);
  const geoms = (l as unknown as { geoms: Window1D[] }).geoms;
  const c = inShape[inShape.length - 1]!;
  const kShape = [...(l.kernelSize as number[]), c, args.filters];
  const ref: ConvFn = (x, k, b) => {
    const p = patches(x, geoms, 0);
    const kc = kShape.slice(0, -1).reduce((a, v) => a * v, 1);
    let y = tf.matMul(tf.reshape(p, [-1, kc]), tf.reshape(k, [kc, args.filters]));
    if (b) y = tf.add(y, b);
    return tf.reshape(y, [x.shape[0]!, ...geoms.map((g) => g.out), args.filters]);
  };
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const x = ints(rng, [3, ...inShape], -4, 4),
      k = ints(rng, kShape, -3, 3),
      b = ints(rng, [args.filters], -5, 5);
    const outShape = [3, ...geoms.map((g) => g.out), args.filters];
    const w = ints(rng, outShape, -2, 2);
    const f = (fn: ConvFn) => (xx: tf.Tensor, kk: tf.Tensor, bb?: tf.Tensor) => tf.sum(tf.mul(fn(xx, kk, bb ?? null), w));
    const wrt = useBias ? [x, k, b] : [x, k];
    const mine = tf.grads(f(conv))(wrt),
      theirs = tf.grads(f(ref))(wrt);
    assert.deepEqual(conv(x, k, useBias ? b : null).shape, outShape);
    assert.deepEqual(
      Array.from(conv(x, k, useBias ? b : null).dataSync()),
      Array.from(ref(x, k, useBias ? b : null).dataSync()),
      'forward',
    );
    for (const [j, name] of (useBias ? ['x', 'k', 'b'] : ['x', 'k']).entries()) {
      assert.deepEqual(mine[j]!.shape, theirs[j]!.shape, name);
      assert.deepEqual(Array.from(mine[j]!.dataSync()), Array.from(theirs[j]!.dataSync()), `gradient wrt ${name}`);
    }
  });
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks from the forward or the gradient');
  l.dispose();
}

test('QConv2D gradient (input, kernel, bias) equals the slices + matmul reference: same/valid, strides, odd sizes', () => {
  check(1, QConv2D, { filters: 4, kernelSize: [3, 2], strides: [2, 1], padding: 'same' }, [7, 6, 3], true);
  check(2, QConv2D, { filters: 2, kernelSize: 3, strides: 2, padding: 'valid' }, [8, 7, 2], true);
  check(3, QConv2D, { filters: 3, kernelSize: [2, 3], strides: [1, 3], padding: 'same' }, [5, 8, 1], false);
  check(4, QConv2D, { filters: 1, kernelSize: 1, padding: 'valid' }, [3, 3, 2], true);
});

test('QConv1D gradient equals the slices + matmul reference', () => {
  check(5, QConv1D, { filters: 3, kernelSize: 3, strides: 2, padding: 'valid' }, [10, 2], true);
  check(6, QConv1D, { filters: 2, kernelSize: 4, strides: 3, padding: 'same' }, [11, 3], false);
});

test('window taps equal direct indexing (overlapping and non-overlapping windows, same/valid, odd sizes) and route gradients back', () => {
  const rng = makeRng(9);
  const cases: Array<[number[], number[], number[], 'same' | 'valid']> = [
    [[7, 6], [2, 2], [2, 2], 'valid'],
    [[7, 5], [2, 3], [2, 3], 'same'],
    [[5, 9], [1, 2], [2, 4], 'same'],
    [[6, 7], [3, 2], [2, 1], 'valid'],
    [[4, 4], [3, 3], [1, 1], 'same'],
  ];
  for (const [sp, k, s, padding] of cases) {
    const geoms = sp.map((n, a) => windowGeometry(n, k[a]!, s[a]!, padding));
    const N = 2,
      C = 3,
      [H, W] = sp as [number, number];
    const xs = Array.from({ length: N * H * W * C }, () => rng.int(-9, 9));
    const x = tf.tensor4d(xs, [N, H, W, C]);
    const taps = windowTaps(x, geoms, -100);
    assert.equal(taps.length, k[0]! * k[1]!);
    const [gh, gw] = geoms as [Window1D, Window1D];
    const at = (n: number, r: number, c: number, ch: number) =>
      r < 0 || r >= H || c < 0 || c >= W ? -100 : xs[((n * H + r) * W + c) * C + ch]!;
    taps.forEach((t, j) => {
      const di = Math.floor(j / k[1]!),
        dj = j % k[1]!;
      assert.deepEqual(t.shape, [N, gh.out, gw.out, C]);
      const v = t.dataSync();
      for (let n = 0; n < N; n++)
        for (let r = 0; r < gh.out; r++)
          for (let c = 0; c < gw.out; c++)
            for (let ch = 0; ch < C; ch++) {
              const want = at(n, r * gh.s + di - gh.padBefore, c * gw.s + dj - gw.padBefore, ch);
              assert.equal(v[((n * gh.out + r) * gw.out + c) * C + ch], want, `${JSON.stringify([sp, k, s, padding])} tap ${j}`);
            }
    });
    // gradient of Σ taps: how many windows read each input element
    const g = tf
      .grad((t: tf.Tensor) => tf.addN(windowTaps(t, geoms, -100)).sum())(x)
      .dataSync();
    for (let r = 0; r < H; r++)
      for (let c = 0; c < W; c++) {
        let cnt = 0;
        for (let i = 0; i < gh.out; i++)
          for (let di = 0; di < k[0]!; di++)
            if (i * gh.s + di - gh.padBefore === r)
              for (let o = 0; o < gw.out; o++) for (let dj = 0; dj < k[1]!; dj++) if (o * gw.s + dj - gw.padBefore === c) cnt++;
        assert.equal(g[(r * W + c) * C], cnt, `gradient count at ${r},${c}`);
      }
    tf.dispose([x, ...taps]);
  }
});
