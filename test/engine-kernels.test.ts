// Individual engine kernels: the quantizers equal src/fixed bit for bit (in float32's exact range), the SIMD
// matmuls equal a float64 reference, and Adam equals tf.train.adam on the same tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { instantiate, loadKernels, WA, type KernelExports } from '../src/engine/kernels.ts';
import { quantize } from '../src/fixed/index.ts';
import { makeRng } from './util/rng.ts';

async function kernels(simd: 'simd128' | 'auto' = 'simd128') {
  const { module } = await loadKernels(simd);
  const mem = new WA.Memory({ initial: 64, maximum: 64, shared: true });
  const k: KernelExports = instantiate(module, mem);
  let off = 1024;
  const alloc = (src: ArrayLike<number> | number) => {
    const n = typeof src === 'number' ? src : src.length;
    const p = off;
    off += Math.ceil((n * 4) / 64) * 64 + 64;
    if (typeof src !== 'number') new Float32Array(mem.buffer, p, n).set(src);
    else new Float32Array(mem.buffer, p, n).fill(0);
    return p;
  };
  const view = (p: number, n: number) => new Float32Array(mem.buffer, p, n);
  return {
    k,
    alloc,
    view,
    reset: () => {
      off = 1024;
    },
  };
}

const rte = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

test('weight quantizer (KBI, RND, SAT/SAT_SYM) equals src/fixed bit for bit', async () => {
  const { k, alloc, view } = await kernels();
  const rng = makeRng(11);
  for (const [mode, ovf] of [
    [1, 'SAT'],
    [2, 'SAT_SYM'],
  ] as const) {
    const n = 20000;
    const w = new Float32Array(n),
      b = new Float32Array(n),
      i = new Float32Array(n),
      kk = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      b[j] = rng.int(0, 23) + (rng.next() - 0.5) * 0.98;
      i[j] = rng.int(-8, 8) + (rng.next() - 0.5) * 0.98;
      kk[j] = rng.chance(0.7) ? 1 : 0;
      const f = rte(b[j]) - rte(i[j]);
      // ties, values on the grid, and far out of range
      const r = rng.next();
      w[j] =
        r < 0.2
          ? Math.fround((rng.int(-4000, 4000) + 0.5) * 2 ** -f)
          : r < 0.3
            ? Math.fround(rng.int(-4000, 4000) * 2 ** -f)
            : r < 0.4
              ? Math.fround((rng.next() - 0.5) * 2 ** 12)
              : Math.fround((rng.next() - 0.5) * 2 ** (rte(i[j]) + 2));
    }
    const out = alloc(n);
    k.kbi_fwd(n, alloc(w), alloc(b), alloc(i), alloc(kk), mode, out);
    const got = view(out, n);
    for (let j = 0; j < n; j++) {
      const bb = rte(b[j]),
        f = bb - rte(i[j]),
        ii = Math.max(rte(i[j]), -f);
      if (kk[j] + ii + f <= 0) continue; // zero width: inference-only zeroing, not the training forward
      const want = quantize(w[j], { k: kk[j] as 0 | 1, i: ii, f }, 'RND', ovf);
      assert.equal(got[j], want, `${ovf} w=${w[j]} k=${kk[j]} i=${ii} f=${f}`);
    }
  }
});

test('activation quantizer (KIF, RND; WRAP rounds only in training, SAT/SAT_SYM clip) equals src/fixed', async () => {
  const { k, alloc, view } = await kernels();
  const rng = makeRng(12);
  const K = 37,
    CB = 256,
    nb = 250,
    nbPad = 256;
  for (const [mode, ovf] of [
    [0, 'WRAP'],
    [1, 'SAT'],
    [2, 'SAT_SYM'],
  ] as const) {
    const iv = Float32Array.from({ length: K }, () => rng.int(-3, 8) + (rng.next() - 0.5) * 0.9);
    const fv = Float32Array.from({ length: K }, () => rng.int(-2, 12) + (rng.next() - 0.5) * 0.9);
    const kv = Float32Array.from({ length: K }, () => (rng.chance(0.6) ? 1 : 0));
    const h = new Float32Array(K * CB);
    for (let j = 0; j < h.length; j++) {
      const f = rte(fv[Math.floor(j / CB)]);
      h[j] = rng.chance(0.3)
        ? Math.fround((rng.int(-3000, 3000) + 0.5) * 2 ** -f)
        : Math.fround((rng.next() - 0.5) * 2 ** rng.int(-4, 12));
    }
    const prep = alloc(4 * K),
      amx = alloc(K),
      a = alloc(K * CB);
    k.prep_act(K, alloc(iv), alloc(fv), alloc(kv), mode, prep);
    k.act_q(alloc(h), a, K, CB, nbPad, nb, mode === 0 ? 2 : 6, prep, amx);
    const got = view(a, K * CB),
      am = view(amx, K);
    for (let r = 0; r < K; r++) {
      const f = rte(fv[r]),
        i = Math.max(rte(iv[r]), -f);
      let mx = 0;
      for (let b = 0; b < nb; b++) {
        const x = h[r * CB + b];
        // WRAP in training: rounding only = quantizing into a type too wide to wrap
        const want =
          mode === 0
            ? quantize(x, { k: 1, i: 40, f }, 'RND', 'WRAP')
            : kv[r] + i + f <= 0
              ? null
              : quantize(x, { k: kv[r] as 0 | 1, i, f }, 'RND', ovf);
        if (want === null) continue;
        assert.ok(got[r * CB + b] === want, `${ovf} x=${x} k=${kv[r]} i=${i} f=${f}: ${got[r * CB + b]} vs ${want}`); // -0 == 0
        mx = Math.max(mx, Math.abs(want));
      }
      if (mode === 0) assert.equal(am[r], Math.fround(mx), `absmax of row ${r} over valid samples only`);
    }
  }
});

test('SIMD matmuls (forward X·W, backward dY·Wᵀ and Xᵀ·dY) equal a float64 reference for odd shapes', async () => {
  const { k, alloc, view, reset } = await kernels('auto');
  const rng = makeRng(13);
  // [64, 32, 240] runs with 256-sample rows (the 1 KB-stride dW tiles); the wide ones take the k-blocked forward
  // and the grouped dW loops (the input chunk > 64 KB, or the reused dW operand > 32 KB), odd sizes included
  for (const [K, N, nbPad] of [
    [1, 1, 16],
    [3, 5, 32],
    [16, 64, 48],
    [33, 7, 16],
    [64, 32, 240],
    [150, 90, 240],
    [40, 101, 240],
    [201, 9, 96],
  ]) {
    reset();
    const CB = nbPad + 16;
    const A = Float32Array.from({ length: K * CB }, () => rng.next() * 2 - 1);
    const W = Float32Array.from({ length: K * N }, () => rng.next() * 2 - 1);
    const D = Float32Array.from({ length: N * CB }, () => rng.next() * 2 - 1);
    const bias = Float32Array.from({ length: N }, () => rng.next() - 0.5);
    const pA = alloc(A),
      pW = alloc(W),
      pD = alloc(D),
      pb = alloc(bias);
    const Z = alloc(N * CB),
      gW = alloc(K * N),
      gB = alloc(N),
      dX = alloc(K * CB),
      sums = alloc(3 * K);
    k.dense_fwd(pA, K, pW, N, pb, Z, CB, nbPad, 1, 0, 0, 0, nbPad, alloc(48));
    k.dense_bwd_dw(pA, K, pD, N, CB, nbPad, gW, gB);
    k.dense_bwd_dx(pD, N, pW, K, CB, nbPad, 8, pA, pA, 0, dX, sums, alloc(48));
    // the engine's path: the kernel transposed once per step (transpose_w), then dense_bwd_dx_t
    const pWT = alloc(K * N),
      dXt = alloc(K * CB);
    k.transpose_w(pW, K, N, pWT);
    const wt = view(pWT, K * N);
    for (let kk = 0; kk < K; kk++)
      for (let n = 0; n < N; n++) assert.equal(wt[n * K + kk], W[kk * N + n], `transpose_w [${kk}, ${n}]`);
    k.dense_bwd_dx_t(pD, N, pWT, K, CB, nbPad, 8, pA, pA, 0, dXt, sums, alloc(48));
    const z = view(Z, N * CB),
      gw = view(gW, K * N),
      gb = view(gB, N),
      dx = view(dX, K * CB),
      dxt = view(dXt, K * CB);
    const tol = (n: number) => 1e-6 * n + 1e-6;
    for (let n = 0; n < N; n++)
      for (let b = 0; b < nbPad; b++) {
        let s = bias[n];
        for (let kk = 0; kk < K; kk++) s += A[kk * CB + b] * W[kk * N + n];
        assert.ok(Math.abs(z[n * CB + b] - Math.max(0, s)) <= tol(K), `fwd ${K}x${N} [${n},${b}]`);
      }
    for (let kk = 0; kk < K; kk++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let b = 0; b < nbPad; b++) s += A[kk * CB + b] * D[n * CB + b];
        assert.ok(Math.abs(gw[kk * N + n] - s) <= tol(nbPad), `dW ${K}x${N} [${kk},${n}]: ${gw[kk * N + n]} vs ${s}`);
      }
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let b = 0; b < nbPad; b++) s += D[n * CB + b];
      assert.ok(Math.abs(gb[n] - s) <= tol(nbPad), `db ${n}`);
    }
    for (let kk = 0; kk < K; kk++)
      for (let b = 0; b < nbPad; b++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += W[kk * N + n] * D[n * CB + b];
        assert.ok(Math.abs(dx[kk * CB + b] - s) <= tol(N), `dX ${K}x${N} [${kk},${b}]`);
        assert.ok(Math.abs(dxt[kk * CB + b] - s) <= tol(N), `dX (transposed kernel) ${K}x${N} [${kk},${b}]`);
      }
  }
});

test('the k-blocked forward of a wide layer equals the sequential float32 sum, with the fused quantizer and |x_q| maxima', async () => {
  // simd128 build: every multiply and add rounds to float32, so a plain sequential loop is the exact reference;
  // K × 256 samples × 4 bytes > 64 KB selects the blocked loop (blocks of 16 rows, partial sums kept in memory)
  const { k, alloc, view } = await kernels('simd128');
  const rng = makeRng(14);
  const K = 83,
    N = 5,
    CB = 256,
    nbPad = 256,
    nbValid = 250;
  const A = Float32Array.from({ length: K * CB }, () => Math.fround(rng.next() * 2 - 1));
  const W = Float32Array.from({ length: K * N }, () => Math.fround(rng.next() * 2 - 1));
  const bias = Float32Array.from({ length: N }, () => Math.fround(rng.next() - 0.5));
  const fs = [3, 0, -1, 5, 2];
  const prep = new Float32Array(4 * N);
  fs.forEach((f, n) => prep.set([2 ** f, 2 ** -f, -1e30, 1e30], 4 * n));
  const Z = alloc(N * CB),
    Q = alloc(N * CB),
    amx = alloc(N);
  k.dense_fwd(alloc(A), K, alloc(W), N, alloc(bias), Z, CB, nbPad, 3, alloc(prep), Q, amx, nbValid, alloc(48));
  const z = view(Z, N * CB),
    q = view(Q, N * CB),
    mx = view(amx, N);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let b = 0; b < nbPad; b++) {
      let s = 0;
      for (let kk = 0; kk < K; kk++) s = Math.fround(s + Math.fround(A[kk * CB + b] * W[kk * N + n]));
      const y = Math.max(0, Math.fround(s + bias[n]));
      assert.equal(z[n * CB + b], y, `z [${n},${b}]`);
      const want = Math.floor(y * 2 ** fs[n] + 0.5) * 2 ** -fs[n]; // exact in float64
      assert.equal(q[n * CB + b], want, `x_q [${n},${b}]`);
      if (b < nbValid) m = Math.max(m, want);
    }
    assert.equal(mx[n], m, `|x_q| max of row ${n}`);
  }
});

test('transpose_in (4×4 shuffle blocks) equals a plain transpose for odd feature counts, tails and zero padding', async () => {
  const { k, alloc, view, reset } = await kernels();
  const rng = makeRng(14);
  for (const [K, rows, row0, nb, CB, nbPad] of [
    [16, 300, 0, 256, 256, 256],
    [5, 300, 7, 250, 256, 256],
    [16, 50, 3, 37, 64, 48],
    [7, 40, 1, 33, 48, 48],
    [4, 3, 0, 3, 16, 16],
    [1, 20, 2, 17, 32, 32],
  ]) {
    reset();
    const src = Float32Array.from({ length: rows * K }, () => rng.next() * 8 - 4);
    const dst = alloc(Float32Array.from({ length: K * CB }, () => 99));
    k.transpose_in(alloc(src), K, row0, nb, dst, CB, nbPad);
    const got = view(dst, K * CB);
    for (let kk = 0; kk < K; kk++)
      for (let b = 0; b < nbPad; b++) {
        assert.equal(got[kk * CB + b], b < nb ? src[(row0 + b) * K + kk] : 0, `K=${K} nb=${nb}: [${kk}, ${b}]`);
      }
  }
});

test('Adam equals tf.train.adam (float32, bias correction, epsilon) over several steps, then clamps to bounds', async () => {
  await tf.setBackend('cpu');
  const { k, alloc, view } = await kernels();
  const rng = makeRng(14);
  const n = 1000;
  const p0 = Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const grads = Array.from({ length: 5 }, () =>
    Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 10 ** rng.int(-6, 1)),
  );
  const lr = 0.003,
    b1 = 0.85,
    b2 = 0.995,
    eps = 1e-7;
  const v = tf.variable(tf.tensor1d(p0));
  const opt = tf.train.adam(lr, b1, b2);
  const pp = alloc(p0),
    pg = alloc(n),
    pm = alloc(n),
    pv = alloc(n);
  const f = Math.fround;
  let acc1 = f(b1),
    acc2 = f(b2);
  for (const g of grads) {
    opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]);
    view(pg, n).set(g);
    k.adam(n, pp, pg, pm, pv, f(lr), f(b1), f(b2), f(eps), f(1 - acc1), f(1 - acc2), f(1 - b1), f(1 - b2), -Infinity, Infinity);
    acc1 = f(acc1 * f(b1));
    acc2 = f(acc2 * f(b2));
  }
  const want = v.dataSync();
  const got = view(pp, n);
  for (let j = 0; j < n; j++)
    assert.ok(Math.abs(got[j] - want[j]) <= 2e-7 * Math.max(1, Math.abs(want[j])), `param ${j}: ${got[j]} vs tfjs ${want[j]}`);
  // bounds (parameter constraints) are applied after the update
  k.adam(n, pp, pg, pm, pv, f(lr), f(b1), f(b2), f(eps), f(1 - acc1), f(1 - acc2), f(1 - b1), f(1 - b2), -0.5, 0.5);
  for (const x of view(pp, n)) assert.ok(x >= -0.5 && x <= 0.5);
  opt.dispose();
  v.dispose();
});

test('Adam keeps moments out of the subnormal range (zero-gradient decay, tiny gradients) and still equals tf.train.adam; NaN propagates', async () => {
  await tf.setBackend('cpu');
  const { k, alloc, view } = await kernels();
  const n = 64;
  const f = Math.fround;
  const p0 = Float32Array.from({ length: n }, (_, j) => (j % 7) * 0.01 - 0.03);
  // a few real gradient steps, then a long run where half the parameters get zero or tiny gradients (pruned
  // weights: their moments decay geometrically through 2^-126 into the subnormals)
  const gradAt = (t: number, j: number) =>
    t < 3 ? f(Math.sin(j + t) * 1e-3) : j % 2 ? 0 : j % 4 === 0 ? f(1e-38 * (j + 1)) : f(Math.cos(j * t) * 1e-4);
  const lr = 1e-3,
    b1 = 0.9,
    b2 = 0.999,
    eps = 1e-7;
  const v = tf.variable(tf.tensor1d(p0));
  const opt = tf.train.adam(lr, b1, b2);
  const pp = alloc(p0),
    pg = alloc(n),
    pm = alloc(n),
    pv = alloc(n);
  let acc1 = f(b1),
    acc2 = f(b2);
  const T = 1200;
  for (let t = 0; t < T; t++) {
    const g = Float32Array.from({ length: n }, (_, j) => gradAt(t, j));
    tf.tidy(() => opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]));
    view(pg, n).set(g);
    k.adam(n, pp, pg, pm, pv, f(lr), f(b1), f(b2), f(eps), f(1 - acc1), f(1 - acc2), f(1 - b1), f(1 - b2), -Infinity, Infinity);
    acc1 = f(acc1 * f(b1));
    acc2 = f(acc2 * f(b2));
  }
  const want = v.dataSync(),
    got = view(pp, n);
  for (let j = 0; j < n; j++)
    assert.ok(
      Math.abs(got[j] - want[j]) <= 1e-6 * Math.max(1e-3, Math.abs(want[j])),
      'param ' + j + ': ' + got[j] + ' vs tfjs ' + want[j],
    );
  const tiny = 2 ** -126;
  for (const arr of [view(pm, n), view(pv, n)])
    for (const x of arr) assert.ok(x === 0 || Math.abs(x) >= tiny, `a moment is subnormal: ${x}`);
  assert.ok(
    view(pm, n).some((x, j) => j % 2 === 1 && x === 0),
    'zero-gradient moments decayed to exactly 0',
  );
  // a tiny ε keeps its meaning: a steady gradient of 2^-61 still gives steps of ~lr (the flush thresholds follow ε)
  {
    const eps2 = 1e-20,
      g = 2 ** -61,
      steps = 5;
    const w = tf.variable(tf.tensor1d([0.5]));
    const opt2 = tf.train.adam(lr, b1, b2, eps2);
    const q = alloc([0.5]),
      qg = alloc([g]),
      qm = alloc(1),
      qv = alloc(1);
    let a1 = f(b1),
      a2 = f(b2);
    for (let t = 0; t < steps; t++) {
      tf.tidy(() => opt2.applyGradients([{ name: w.name, tensor: tf.tensor1d([g]) }]));
      k.adam(1, q, qg, qm, qv, f(lr), f(b1), f(b2), f(eps2), f(1 - a1), f(1 - a2), f(1 - b1), f(1 - b2), -Infinity, Infinity);
      a1 = f(a1 * f(b1));
      a2 = f(a2 * f(b2));
    }
    const wt = w.dataSync()[0]!,
      we = view(q, 1)[0]!;
    assert.ok(Math.abs(wt - (0.5 - steps * lr)) < 0.05 * steps * lr, `tfjs reference ${wt}`); // g/(g + ε) ≈ 0.98 of lr per step
    assert.ok(Math.abs(we - wt) <= 1e-7, `ε = 1e-20: engine ${we} vs tfjs ${wt}`);
    opt2.dispose();
    w.dispose();
  }
  // a NaN gradient is not masked: the parameter becomes NaN, as in tfjs
  view(pg, n).fill(0);
  view(pg, n)[5] = NaN;
  k.adam(n, pp, pg, pm, pv, f(lr), f(b1), f(b2), f(eps), f(1 - acc1), f(1 - acc2), f(1 - b1), f(1 - b2), -Infinity, Infinity);
  assert.ok(Number.isNaN(view(pp, n)[5]!) && Number.isNaN(view(pm, n)[5]!));
  opt.dispose();
  v.dispose();
});

test('EBOPs of a dense layer equal Σ bits_in·bits_kernel + Σ bits_bias, gradients straight-through', async () => {
  const { k, alloc, view } = await kernels();
  const K = 3,
    N = 2;
  // i+f per input: 2+3=5, -4+3 → relu 0, 1+1=2 (rounded half-to-even: 2.5 → 2)
  const iI = alloc([2, -4, 1]),
    iF = alloc([3, 3, 1]),
    iK = alloc([1, 1, 1]);
  const wB = alloc([1, 2, 3, 4, 2.5, 0]),
    wK = alloc(new Float32Array(6).fill(1));
  const bB = alloc([3, 5]),
    bK = alloc([1, 1]);
  const gI = alloc(K),
    gF = alloc(K),
    gW = alloc(K * N),
    gBB = alloc(N);
  const e = k.ebops_dense(K, N, iI, iF, iK, 0, wB, wK, 2, bB, bK, 2, 0.5, gI, gF, gW, gBB);
  // rows: 5·(1+2) + 0·(3+4) + 2·(2+0) = 19; bias 3+5 = 8
  assert.equal(e, 27);
  assert.deepEqual(Array.from(view(gF, K)), [0.5 * 3, 0, 0.5 * 2]);
  assert.deepEqual(Array.from(view(gI, K)), [0, 0, 0], 'WRAP input bits: i gets no gradient');
  assert.deepEqual(Array.from(view(gW, K * N)), [2.5, 2.5, 0, 0, 1, 1]);
  assert.deepEqual(Array.from(view(gBB, N)), [0.5, 0.5]);
});

test('the row-split kernels of the threaded per-parameter phase equal the whole-array ones bit for bit', async () => {
  const { k, alloc, view } = await kernels();
  const rng = makeRng(23);
  const bits = (v: Float32Array) => Array.from(new Uint32Array(v.slice().buffer));
  const K = 37,
    N = 11,
    n = K * N;
  const rnd = (m: number, f: () => number) => Float32Array.from({ length: m }, f);
  const iI = rnd(K, () => rng.int(-3, 4) + rng.next() - 0.5),
    iF = rnd(K, () => rng.int(-2, 6) + rng.next() - 0.5),
    iK = rnd(K, () => (rng.chance(0.6) ? 1 : 0));
  const wB = rnd(n, () => rng.int(0, 9) + rng.next() - 0.5),
    wK = rnd(n, () => (rng.chance(0.7) ? 1 : 0));
  const bB = rnd(N, () => rng.int(0, 9) + rng.next() - 0.5),
    bK = rnd(N, () => 1);
  for (const [inMode, wMode] of [
    [0, 1],
    [1, 2],
    [2, 1],
  ]) {
    const g0 = () => [
      alloc(rnd(K, () => rng.next())),
      alloc(rnd(K, () => rng.next())),
      alloc(rnd(n, () => rng.next())),
      alloc(rnd(N, () => rng.next())),
    ];
    const whole = g0(),
      split = g0();
    for (let j = 0; j < 4; j++) view(split[j]!, [K, K, n, N][j]!).set(view(whole[j]!, [K, K, n, N][j]!));
    const [pI, pF, pIK, pB, pWK, pBB, pBK] = [alloc(iI), alloc(iF), alloc(iK), alloc(wB), alloc(wK), alloc(bB), alloc(bK)];
    const e = k.ebops_dense(
      K,
      N,
      pI,
      pF,
      pIK,
      inMode,
      pB,
      pWK,
      wMode,
      pBB,
      pBK,
      wMode,
      0.25,
      whole[0]!,
      whole[1]!,
      whole[2]!,
      whole[3]!,
    );
    // rows in ranges as the threads take them (multiples of 4), then the bias; the row EBOPs summed in order
    const rows = alloc(2 * K),
      bias = alloc(2);
    for (const [r0, nr] of [
      [0, 12],
      [12, 20],
      [32, 5],
    ]) {
      k.ebops_dense_rows(
        nr,
        N,
        pI + 4 * r0,
        pF + 4 * r0,
        pIK + 4 * r0,
        inMode,
        pB + 4 * r0 * N,
        pWK + 4 * r0 * N,
        wMode,
        0.25,
        split[0]! + 4 * r0,
        split[1]! + 4 * r0,
        split[2]! + 4 * r0 * N,
        rows + 8 * r0,
      );
    }
    k.ebops_bias(N, pBB, pBK, wMode, 0.25, split[3]!, bias);
    const r = new Float64Array(view(rows, 2 * K).slice().buffer);
    let sum = 0;
    for (let j = 0; j < K; j++) sum += r[j]!;
    sum += new Float64Array(view(bias, 2).slice().buffer)[0]!;
    assert.ok(Object.is(sum, e), `EBOPs: rows + bias ${sum} vs ebops_dense ${e}`);
    for (let j = 0; j < 4; j++)
      assert.deepEqual(
        bits(view(split[j]!, [K, K, n, N][j]!)),
        bits(view(whole[j]!, [K, K, n, N][j]!)),
        `gradient array ${j} (modes ${inMode}/${wMode})`,
      );
  }
  // transpose by row ranges; l1 = add_scalar + sum_f64 (with a tail)
  const W = alloc(rnd(n, () => rng.next() - 0.5)),
    T1 = alloc(n),
    T2 = alloc(n);
  k.transpose_w(W, K, N, T1);
  for (const [r0, nr] of [
    [0, 8],
    [8, 24],
    [32, 5],
  ])
    k.transpose_w_rows(W, K, N, T2, r0, nr);
  assert.deepEqual(bits(view(T2, n)), bits(view(T1, n)));
  const p = alloc(rnd(n, () => rng.next() * 7)),
    ga = alloc(rnd(n, () => rng.next())),
    gb = alloc(n);
  view(gb, n).set(view(ga, n));
  const s = k.l1(n, p, 0.01, ga);
  k.add_scalar(n, gb, Math.fround(0.01));
  assert.ok(Object.is(k.sum_f64(n, p), s));
  assert.deepEqual(bits(view(gb, n)), bits(view(ga, n)));
});
