/**
 * Property: in inference the tfjs quantizer equals src/fixed's `quantize` bit for bit (same float32 value,
 * never -0), for every rounding × overflow mode and every granularity, on both the wasm and cpu backends, through
 * both implementations: the fused kernels (default on cpu/wasm) and the tf-op path (other backends, other axes).
 * Types are drawn with k+i+f <= 24 (the float32-exact range, see src/quantizer/ops.ts), including negative i or f,
 * zero and negative widths; inputs include exact ties, ties ± one ulp, grid points, range ends and far
 * out-of-range values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { Quantizer, setFusedKernels } from '../src/quantizer/index.ts';
import { quantize } from '../src/fixed/quantize.ts';
import { ROUND_MODES, OVERFLOW_MODES, type Kif, type OverflowMode, type RoundMode } from '../src/fixed/types.ts';
import { makeRng, type Rng } from './util/rng.ts';

const N_FULL = 100_000;
/** The cpu backend is ~10x slower; it gets a smaller sample per mode (wasm, the default, gets the full N). */
const N_CPU = 10_000;

/** A random type with k+i+f <= 24; about 1 in 12 has width <= 0. */
function randomKif(rng: Rng): Kif {
  const k = rng.int(0, 1) as 0 | 1;
  const f = rng.int(-8, 20);
  const iMax = Math.min(24, 24 - k - f);
  const i = rng.chance(0.08) ? rng.int(Math.max(-24, -f - k - 3), -f - k) : rng.int(Math.max(-24, -f - k + 1), iMax);
  return { k, i, f };
}

/** A float32 input that stresses the type t. */
function randomInput(rng: Rng, t: Kif): number {
  const step = 2 ** -t.f;
  const W = t.k + t.i + t.f;
  const codeSpan = 2 ** Math.max(0, Math.min(W, 24));
  const code = () => Math.floor((rng.next() * 2 - 1) * codeSpan * 1.25);
  const ulp = (v: number) => {
    const a = Math.abs(v);
    if (a === 0) return 2 ** -149;
    return 2 ** (Math.floor(Math.log2(a)) - 23);
  };
  let v: number;
  switch (rng.int(0, 7)) {
    case 0: // exact tie between two steps
      v = (code() + 0.5) * step;
      break;
    case 1: {
      // one ulp either side of a tie
      const tie = Math.fround((code() + 0.5) * step);
      v = tie + (rng.chance(0.5) ? 1 : -1) * ulp(tie);
      break;
    }
    case 2: // on the grid
      v = code() * step;
      break;
    case 3: // range ends and just beyond
      v = (rng.chance(0.5) ? 1 : -1) * (2 ** t.i + rng.int(-2, 2) * step * 0.5);
      break;
    case 4: // far out of range
      v = (rng.chance(0.5) ? 1 : -1) * 2 ** (t.i + rng.int(1, 20)) * (1 + rng.next());
      break;
    case 5: // tiny
      v = (rng.next() * 2 - 1) * step * 2 ** -rng.int(0, 10);
      break;
    default: // uniform over a little more than the range
      v = (rng.next() * 2 - 1) * 2 ** (t.i + 1);
  }
  return Math.fround(v);
}

function checkEqual(out: Float32Array, xs: Float32Array, kifs: Kif[], ref: Float64Array, label: string) {
  let bad = 0;
  let first = '';
  for (let j = 0; j < xs.length; j++) {
    if (!Object.is(out[j], ref[j])) {
      if (bad++ === 0)
        first = `x=${xs[j]} kif=${JSON.stringify(kifs[j])} got ${Object.is(out[j], -0) ? '-0' : out[j]} want ${ref[j]}`;
    }
  }
  assert.equal(bad, 0, `${label}: ${bad}/${xs.length} mismatches, first: ${first}`);
}

/** Set a built per-element quantizer's variables so that its types are `kifs` (KBI via b = i + f). */
function setKifs(q: Quantizer, kifs: Kif[], rng: Rng) {
  const shape = q.paramShape;
  // raw parameters off-integer by < 1/2 must round to the same integers (round-half-even of the parameter)
  const jitter = () => (rng.next() - 0.5) * 0.9;
  const set = (name: string, vals: number[]) => {
    const w = q.weights.find((w) => w.name === name)!;
    const t = tf.tensor(vals, shape);
    w.variable.write(t);
    t.dispose();
  };
  set(
    'k',
    kifs.map((t) => t.k),
  );
  set(
    'i',
    kifs.map((t) => t.i + jitter()),
  );
  if (q.config.qType === 'kbi')
    set(
      'b',
      kifs.map((t) => t.i + t.f + jitter()),
    );
  else
    set(
      'f',
      kifs.map((t) => t.f + jitter()),
    );
}

/** Reference values from src/fixed, computed once and compared with both implementations. */
function reference(xs: Float32Array, kifs: Kif[], round: RoundMode, overflow: OverflowMode): Float64Array {
  const ref = new Float64Array(xs.length);
  for (let j = 0; j < xs.length; j++) ref[j] = quantize(xs[j]!, kifs[j]!, round, overflow);
  return ref;
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`inference equals src/fixed bit for bit, every round × overflow mode, per element, fused and tf-op paths (${backend})`, async () => {
    await useBackend(backend);
    const rng = makeRng(backend === 'wasm' ? 1234 : 4321);
    const before = tf.memory().numTensors;
    const N = backend === 'wasm' ? N_FULL : N_CPU;
    for (const round of ROUND_MODES) {
      for (const overflow of OVERFLOW_MODES) {
        const kifs: Kif[] = new Array(N);
        const xs = new Float32Array(N);
        for (let j = 0; j < N; j++) {
          kifs[j] = randomKif(rng);
          xs[j] = randomInput(rng, kifs[j]!);
        }
        const ref = reference(xs, kifs, round, overflow);
        const q = new Quantizer({
          place: 'datalane',
          qType: 'kif',
          roundMode: round,
          overflowMode: overflow,
          granularity: 'element',
          iBounds: [-30, 30],
          fBounds: [-30, 30],
        });
        q.build([N]);
        setKifs(q, kifs, rng);
        const x = tf.tensor1d(xs);
        for (const path of ['fused', 'tf-ops'] as const) {
          setFusedKernels(path === 'fused');
          const y = q.call(x, false);
          checkEqual(y.dataSync() as Float32Array, xs, kifs, ref, `${backend} ${path} KIF ${round}/${overflow}`);
          y.dispose();
        }
        setFusedKernels(true);
        x.dispose();
        q.dispose();
      }
    }
    assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  });
}

for (const [backend, path] of [
  ['wasm', 'fused'],
  ['wasm', 'tf-ops'],
  ['cpu', 'fused'],
  ['cpu', 'tf-ops'],
] as const) {
  const setup = async () => {
    await useBackend(backend);
    setFusedKernels(path === 'fused');
  };
  test(`KBI inference equals src/fixed with f = round(b) − round(i) (${backend}, ${path})`, async () => {
    await setup();
    const rng = makeRng(77);
    const N = backend === 'wasm' ? 30_000 : N_CPU; // the 100k-per-mode sweep is the KIF test above
    for (const overflow of OVERFLOW_MODES) {
      const round = rng.pick(ROUND_MODES);
      const kifs: Kif[] = [];
      const xs = new Float32Array(N);
      for (let j = 0; j < N; j++) {
        let t = randomKif(rng);
        if (t.i + t.f < 0) t = { k: t.k, i: -t.f, f: t.f }; // b = i + f >= 0 for KBI
        if (t.i + t.f > 23) t = { k: t.k, i: 23 - t.f, f: t.f };
        if (t.i > 24) t = { k: t.k, i: 24, f: t.f }; // KBI's i bound
        kifs.push(t);
        xs[j] = randomInput(rng, t);
      }
      const q = new Quantizer({ place: 'weight', roundMode: round, overflowMode: overflow });
      q.build([N]);
      setKifs(q, kifs, rng);
      assert.deepEqual(q.kifs().slice(0, 50), kifs.slice(0, 50), 'kifs() reports the rounded types');
      const x = tf.tensor1d(xs);
      const y = q.call(x, false);
      checkEqual(
        y.dataSync() as Float32Array,
        xs,
        kifs,
        reference(xs, kifs, round, overflow),
        `${backend} ${path} KBI ${round}/${overflow}`,
      );
      tf.dispose([x, y]);
      q.dispose();
    }
  });

  test(`inference equals src/fixed for every granularity (per activation, per channel, per tensor) (${backend}, ${path})`, async () => {
    await setup();
    const rng = makeRng(99);
    const s = backend === 'wasm' ? 1 : 10; // fewer samples on the slow cpu backend
    type G = 'activation' | 'channel' | 'tensor' | 'element' | 'first and last axes shared';
    const cases: { granularity: G; shape: number[] }[] = [
      { granularity: 'activation', shape: [400 / s, 250] },
      { granularity: 'channel', shape: [50 / s, 20, 100] },
      { granularity: 'tensor', shape: [100 / s, 1000] },
      { granularity: 'element', shape: [40 / s, 50, 50] },
      // not a prefix of shared axes: always the tf-op path
      { granularity: 'first and last axes shared', shape: [40 / s, 100, 25] },
    ];
    for (const { granularity, shape } of cases) {
      const round = rng.pick(ROUND_MODES);
      const overflow = rng.pick(OVERFLOW_MODES);
      const axes = granularity === 'first and last axes shared' ? { homogeneousAxes: [0, 2] } : { granularity };
      const q = new Quantizer({ place: 'datalane', roundMode: round, overflowMode: overflow, ...axes });
      q.build(granularity === 'activation' ? [null, ...shape.slice(1)] : shape);
      const nParam = q.paramShape.reduce((a, b) => a * b, 1);
      const pk: Kif[] = [];
      for (let j = 0; j < nParam; j++) pk.push(randomKif(rng));
      setKifs(q, pk, rng);
      const kifs = q.kifsFor(shape);
      assert.equal(
        kifs.length,
        shape.reduce((a, b) => a * b, 1),
      );
      const xs = new Float32Array(kifs.length);
      for (let j = 0; j < xs.length; j++) xs[j] = randomInput(rng, kifs[j]!);
      const x = tf.tensor(xs, shape);
      const y = q.call(x, false);
      checkEqual(
        y.dataSync() as Float32Array,
        xs,
        kifs,
        reference(xs, kifs, round, overflow),
        `${backend} ${path} ${granularity} ${round}/${overflow}`,
      );
      tf.dispose([x, y]);
      q.dispose();
    }
  });
}

test('edge cases by hand: ties, zero width, negative i and f, wrap-around', async () => {
  await useBackend('wasm');
  setFusedKernels(true);
  const cases: [number, Kif, RoundMode, OverflowMode, number][] = [
    [0.5, { k: 1, i: 3, f: 0 }, 'RND', 'WRAP', 1],
    [-0.5, { k: 1, i: 3, f: 0 }, 'RND', 'WRAP', 0],
    [2.5, { k: 1, i: 3, f: 0 }, 'RND_CONV', 'WRAP', 2],
    [-2.5, { k: 1, i: 3, f: 0 }, 'RND_ZERO', 'SAT', -2],
    [-2.5, { k: 1, i: 3, f: 0 }, 'RND_INF', 'SAT', -3],
    [-2.5, { k: 1, i: 3, f: 0 }, 'RND_MIN_INF', 'SAT', -3],
    [-2.7, { k: 1, i: 3, f: 0 }, 'TRN_ZERO', 'SAT', -2],
    [Math.fround(0.5 - 2 ** -25), { k: 1, i: 3, f: 0 }, 'RND', 'SAT', 0],
    [8, { k: 1, i: 3, f: 0 }, 'TRN', 'WRAP', -8],
    [9, { k: 0, i: 3, f: 0 }, 'TRN', 'WRAP', 1],
    [100, { k: 1, i: 3, f: 0 }, 'TRN', 'SAT', 7],
    [-100, { k: 1, i: 3, f: 0 }, 'TRN', 'SAT', -8],
    [-100, { k: 1, i: 3, f: 0 }, 'TRN', 'SAT_SYM', -7],
    [-100, { k: 0, i: 3, f: 0 }, 'TRN', 'SAT', 0],
    [13, { k: 0, i: 4, f: -2 }, 'TRN', 'WRAP', 12],
    [0.1, { k: 0, i: -2, f: 5 }, 'RND', 'SAT', 0.09375],
    [3, { k: 1, i: -1, f: 0 }, 'TRN', 'SAT', 0],
    [-3, { k: 1, i: -1, f: 1 }, 'TRN', 'SAT', -0.5],
    [-3, { k: 1, i: -2, f: 1 }, 'TRN', 'SAT', 0],
    [-3, { k: 1, i: -1, f: 1 }, 'TRN', 'WRAP', 0],
    [-0.3, { k: 1, i: 0, f: 2 }, 'TRN_ZERO', 'WRAP', -0.25],
    [-0.2, { k: 1, i: 0, f: 2 }, 'TRN_ZERO', 'WRAP', 0],
  ];
  for (const [x, t, r, o, want] of cases) {
    const q = new Quantizer({ place: 'datalane', qType: 'kif', roundMode: r, overflowMode: o, granularity: 'element' });
    q.build([1]);
    setKifs(q, [t], makeRng(1));
    const xt = tf.tensor1d([x]);
    const y = q.call(xt, false);
    const got = y.dataSync()[0]!;
    assert.ok(
      Object.is(got, want),
      `${x} to ${JSON.stringify(t)} ${r}/${o}: got ${Object.is(got, -0) ? '-0' : got}, want ${want}`,
    );
    assert.ok(Object.is(got, quantize(Math.fround(x), t, r, o)), 'agrees with src/fixed');
    tf.dispose([xt, y]);
    q.dispose();
  }
});

test('RND inference kernels on wasm (simd128 in the tfjs heap) beyond the 24-bit range: wide WRAP, overflow and subnormal scaling, and the calls that fall back (SAT bounds past 2^24, |f| > 100) equal src/fixed rounded once to float32 and the cpu loops', async () => {
  const { fusedQuantize, fusedRound } = await import('../src/quantizer/kernels.ts');
  const { wasmKernels } = await import('../src/quantizer/wasm-module.ts');
  const rng = makeRng(99);
  const N = 20_000;
  /** kifs with f in [fLo, fHi] (or ±110 with probability pHuge) and i + f <= ifMax, widths up to 45 bits */
  const draw = (ifMax: number, pHuge: number) => {
    const kifs: Kif[] = [],
      xs = new Float32Array(N);
    for (let j = 0; j < N; j++) {
      const k = rng.int(0, 1) as 0 | 1;
      const f = rng.chance(pHuge) ? rng.pick([110, -110]) : rng.int(-12, 22);
      const i = rng.int(-f - k + 1, Math.min(40, ifMax - f));
      kifs.push({ k, i, f });
      const r = rng.next(),
        sign = rng.chance(0.5) ? -1 : 1;
      xs[j] =
        r < 0.05
          ? sign * 3e38 // x·2^f overflows float32
          : r < 0.1
            ? sign * 1e-39 * rng.next() // subnormal x
            : r < 0.2
              ? sign * (rng.int(0, 2 ** 20) + 0.5) * 2 ** -f // ties
              : sign * rng.next() * 2 ** (i + rng.int(-4, 12)); // around and far beyond the range
    }
    return { kifs, xs };
  };
  // each call is all-or-nothing: the first sets run in wasm, the last two take the JS loops (the kernel's
  // float32 bounds would not be exact)
  const sets: Array<{ name: string; modes: readonly OverflowMode[]; kifs: Kif[]; xs: Float32Array }> = [
    { name: 'wide WRAP', modes: ['WRAP'], ...draw(45, 0) },
    { name: 'SAT within 2^24', modes: ['SAT', 'SAT_SYM'], ...draw(24, 0) },
    { name: 'SAT past 2^24 (fallback)', modes: ['SAT', 'SAT_SYM'], ...draw(45, 0) },
    { name: '|f| = 110 (fallback)', modes: OVERFLOW_MODES, ...draw(45, 0.05) },
  ];
  const run = async (backend: 'wasm' | 'cpu') => {
    await useBackend(backend);
    setFusedKernels(true);
    if (backend === 'wasm')
      assert.ok(wasmKernels(tf.backend() as never), 'the quantizer wasm module links to the tfjs-wasm heap');
    return sets.map(({ modes, kifs, xs }) =>
      tf.tidy(() => {
        const x = tf.tensor1d(xs);
        const k = tf.tensor1d(kifs.map((t) => t.k)),
          i = tf.tensor1d(kifs.map((t) => t.i)),
          f = tf.tensor1d(kifs.map((t) => t.f));
        const outs: Record<string, Float32Array> = {};
        for (const ovf of modes) outs[ovf] = Float32Array.from(fusedQuantize(x, k, i, f, 'RND', ovf).dataSync());
        outs['round'] = Float32Array.from(fusedRound(x, f, 'RND').dataSync());
        return outs;
      }),
    );
  };
  const onWasm = await run('wasm');
  const onCpu = await run('cpu');
  await useBackend('wasm');
  sets.forEach(({ name, modes, kifs, xs }, si) => {
    for (const ovf of [...modes, 'round'] as const) {
      let bad = 0,
        first = '';
      for (let j = 0; j < N; j++) {
        const want =
          ovf === 'round'
            ? Math.fround(Math.floor(xs[j]! * 2 ** kifs[j]!.f + 0.5) * 2 ** -kifs[j]!.f) + 0
            : Math.fround(quantize(xs[j]!, kifs[j]!, 'RND', ovf)) + 0;
        for (const [where, got] of [
          ['wasm', onWasm[si]![ovf]![j]!],
          ['cpu', onCpu[si]![ovf]![j]!],
        ] as const) {
          if (!Object.is(got, want) && bad++ === 0)
            first = `${where} x=${xs[j]} kif=${JSON.stringify(kifs[j])} got ${got} want ${want}`;
        }
      }
      assert.equal(bad, 0, `${name}, RND/${ovf}: ${bad} mismatches, first: ${first}`);
    }
  });
});
