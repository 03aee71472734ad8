/**
 * Properties of the fused KIF WRAP training kernels (src/quantizer/train-kernels.ts, wasm simd128 and cpu loops):
 *   * the training forward equals the tf-op path bit for bit, and src/fixed's roundToStep, for every rounding
 *     mode, on random inputs plus ties, zeros, large and tiny values, negative f, half-integer raw f;
 *   * the tracked integer bits after a step equal the tf-op path's exactly;
 *   * gradients: x straight through (exact), f per element exactly the tf-op path's (as numbers: a zero's sign may differ), f summed over shared axes
 *     equal to the float64 sum of the per-element formula (and to the tf-op path within float32 summation error);
 *   * every parameter pattern length (P multiple of 4 or not, per tensor, per element) and rank;
 *   * a pattern that is not prefix-homogeneous falls back to the tf-op path;
 *   * SAT / SAT_SYM (KIF and KBI) training: values and ∂x bit for bit the tf-op path's, parameter gradients equal
 *     per element and within float32 summation error when shared;
 *   * l1LossOf (one kernel for a layer's L1 pressure): value and gradient as Σ l1Loss;
 *   * a QDense loss term β·factor·EBOPs + L1 (fused tail and EBOPs kernels): EBOPs exactly, value and gradients
 *     as the tf-op path's (variants: rank 3 with a parallelization factor, no bias, no input quantizer, SAT);
 *   * bits() for EBOPs: values and straight-through gradients equal the tf-op path's;
 *   * the embedded wasm bytes were built from the current assembly/quantizer.ts (source hash; the byte-for-byte
 *     rebuild check is `node scripts/build-quantizer-wasm.mjs --check`, ~20 s).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { l1LossOf, Quantizer, setFusedKernels, type QuantizerOptions } from '../src/quantizer/index.ts';
import { fusedTrainApplies } from '../src/quantizer/train-kernels.ts';
import { QDense } from '../src/layers/dense.ts';
import { roundToStep } from '../src/fixed/quantize.ts';
import { ROUND_MODES, type RoundMode } from '../src/fixed/types.ts';
import { makeRng, type Rng } from './util/rng.ts';

const fr = Math.fround;

function setParam(q: Quantizer, name: string, vals: number[]): void {
  const t = tf.tensor(vals, q.paramShape);
  q.weights.find((w) => w.name === name)!.variable.write(t);
  t.dispose();
}
function param(q: Quantizer, name: string): Float32Array {
  return q.weights
    .find((w) => w.name === name)!
    .variable.read()
    .dataSync() as Float32Array;
}

/** One training step of q on x: x_q, gradients of Σ x_q·dy w.r.t. x and f, and i afterwards. */
function step(q: Quantizer, xs: Float32Array, dys: Float32Array, shape: number[], fused: boolean) {
  setFusedKernels(fused);
  try {
    const x0 = tf.tensor(xs, shape);
    const x = tf.variable(x0, true);
    x0.dispose();
    const dy = tf.tensor(dys, shape);
    const fVar = q.weights.find((w) => w.name === 'f')!.variable.read() as tf.Variable;
    let xq: Float32Array | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const y = q.call(x, true);
      xq = y.dataSync() as Float32Array;
      return tf.sum(tf.mul(y, dy)) as tf.Scalar;
    }, [x, fVar]);
    const out = {
      xq: xq!,
      dx: grads[x.name]!.dataSync() as Float32Array,
      df: grads[fVar.name]!.dataSync() as Float32Array,
      i: param(q, 'i'),
    };
    tf.dispose([value, ...Object.values(grads), x, dy]);
    return out;
  } finally {
    setFusedKernels(true);
  }
}

/** Random x for a parameter with fractional bits f: in-range values, exact ties, zeros, large and tiny magnitudes. */
function randomX(rng: Rng, f: number): number {
  switch (rng.int(0, 5)) {
    case 0:
      return fr((rng.int(-5000, 5000) + 0.5) * 2 ** -f); // a tie
    case 1:
      return rng.pick([0, -0, 2 ** -f, -(2 ** -f)]);
    case 2:
      return fr((rng.next() * 2 - 1) * 2 ** rng.int(10, 20)); // large
    case 3:
      return fr((rng.next() * 2 - 1) * 2 ** (-f - rng.int(1, 12))); // below the step
    default:
      return fr((rng.next() * 2 - 1) * 2 ** rng.int(-3, 6));
  }
}

interface Case {
  label: string;
  build: (number | null)[];
  shape: number[];
  opts: QuantizerOptions;
}
const CASES: Case[] = [
  { label: 'per activation, P = 64', build: [null, 64], shape: [300, 64], opts: {} },
  { label: 'per activation, P = 5 (replicated to 20)', build: [null, 5], shape: [64, 5], opts: {} },
  { label: 'per activation, P = 7 (scalar tail)', build: [null, 7], shape: [33, 7], opts: {} },
  { label: 'per channel, rank 3', build: [null, 6, 12], shape: [40, 6, 12], opts: { granularity: 'channel' } },
  { label: 'per tensor', build: [null, 9], shape: [50, 9], opts: { granularity: 'tensor' } },
  { label: 'per element', build: [2000], shape: [2000], opts: { granularity: 'element' } },
];

for (const backend of ['wasm', 'cpu'] as const) {
  for (const c of CASES) {
    test(`fused KIF WRAP training = tf-op path bit for bit, every rounding mode: ${c.label} (${backend})`, async () => {
      await useBackend(backend);
      const before = tf.memory().numTensors;
      const rng = makeRng(c.label.length * 31 + (backend === 'cpu' ? 1 : 0));
      for (const round of ROUND_MODES as readonly RoundMode[]) {
        const qa = new Quantizer({ place: 'datalane', roundMode: round, ...c.opts });
        const qb = new Quantizer({ place: 'datalane', roundMode: round, ...c.opts });
        qa.build(c.build);
        qb.build(c.build);
        assert.ok(fusedTrainApplies(c.shape, qa.paramShape), 'the fused kernels apply to this pattern');
        const P = qa.paramShape.reduce((a, b) => a * b, 1);
        // raw parameters: integers, half-integers (rounded half to even), out of bounds (clamped), negative f
        const fRaw = Array.from({ length: P }, () =>
          rng.pick([rng.int(-6, 14), rng.int(-6, 14) + 0.5, rng.int(-6, 14) + 0.3, 30, -30]),
        );
        const iRaw = Array.from({ length: P }, () => rng.int(-8, 12) + rng.pick([0, 0.004, 0.5]));
        for (const q of [qa, qb]) {
          setParam(q, 'f', fRaw);
          setParam(q, 'i', iRaw);
        }
        const fInt = fRaw.map((v) =>
          Math.min(24, Math.max(-24, Math.round(v) - (Math.abs(v % 1) === 0.5 && Math.round(v) % 2 !== 0 ? 1 : 0))),
        );
        const n = c.shape.reduce((a, b) => a * b, 1);
        const xs = new Float32Array(n),
          dys = new Float32Array(n);
        for (let j = 0; j < n; j++) {
          xs[j] = randomX(rng, fInt[j % P]!);
          dys[j] = fr((rng.next() * 2 - 1) * 2 ** rng.int(-3, 3));
        }
        const a = step(qa, xs, dys, c.shape, true);
        const b = step(qb, xs, dys, c.shape, false);
        for (let j = 0; j < n; j++) {
          const want = roundToStep(xs[j]!, fInt[j % P]!, round);
          if (!Object.is(a.xq[j], b.xq[j]) || a.xq[j] !== want)
            assert.fail(
              `${round}: x_q[${j}] of x=${xs[j]} f=${fInt[j % P]}: fused ${a.xq[j]}, tf ops ${b.xq[j]}, src/fixed ${want}`,
            );
          assert.ok(a.dx[j] === dys[j], `${round}: ∂x[${j}] passes straight through`);
        }
        for (let p = 0; p < P; p++)
          if (!Object.is(a.i[p], b.i[p]))
            assert.fail(
              `${round}: tracked i[${p}]: fused ${a.i[p]}, tf ops ${b.i[p]} (raw i ${iRaw[p]}, f ${fInt[p]}, x ${xs[p]}, x_q ${a.xq[p]})`,
            );
        const rows = n / P;
        for (let p = 0; p < P; p++) {
          let sum = 0,
            abs = 0;
          for (let j = p; j < n; j += P) {
            const t = fr(fr(dys[j]! * fr(a.xq[j]! - xs[j]!)) * fr(-Math.LN2));
            sum += t;
            abs += Math.abs(t);
          }
          if (rows === 1)
            assert.ok(
              a.df[p] === b.df[p] && a.df[p] === fr(sum),
              `${round}: ∂f[${p}] per element: fused ${a.df[p]}, tf ops ${b.df[p]}, formula ${sum}`,
            );
          else {
            assert.ok(Math.abs(a.df[p]! - sum) <= 1e-6 * abs + 1e-30, `${round}: ∂f[${p}] fused ${a.df[p]} vs Σ formula ${sum}`);
            assert.ok(
              Math.abs(a.df[p]! - b.df[p]!) <= 2e-5 * abs + 1e-30,
              `${round}: ∂f[${p}] fused ${a.df[p]} vs tf ops ${b.df[p]}`,
            );
          }
        }
        qa.dispose();
        qb.dispose();
      }
      assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
    });
  }

  test(`a parameter pattern that is not prefix-homogeneous uses the tf-op path (${backend})`, async () => {
    await useBackend(backend);
    const q = new Quantizer({ place: 'datalane', homogeneousAxes: [0, 2] });
    q.build([null, 4, 3]);
    assert.deepEqual(q.paramShape, [1, 4, 1]);
    assert.equal(fusedTrainApplies([8, 4, 3], q.paramShape), false);
    const xs = Float32Array.from({ length: 96 }, (_, j) => fr(Math.sin(j) * 3));
    const r = step(q, xs, new Float32Array(96).fill(1), [8, 4, 3], true);
    for (let j = 0; j < 96; j++) assert.equal(r.xq[j], roundToStep(xs[j]!, 6, 'RND'));
    q.dispose();
  });
}

/** Gradients of Σ x_q·dy w.r.t. x and every trainable parameter, and x_q, on one path. */
function satStep(q: Quantizer, xs: Float32Array, dys: Float32Array, shape: number[], fused: boolean) {
  setFusedKernels(fused);
  try {
    const x0 = tf.tensor(xs, shape);
    const x = tf.variable(x0, true);
    x0.dispose();
    const dy = tf.tensor(dys, shape);
    const train = q.weights.filter((w) => w.trainable);
    const vars = [x, ...train.map((w) => w.variable.read() as tf.Variable)];
    let xq: Float32Array | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const y = q.call(x, true);
      xq = y.dataSync() as Float32Array;
      return tf.sum(tf.mul(y, dy)) as tf.Scalar;
    }, vars);
    const g: Record<string, Float32Array> = { x: grads[x.name]!.dataSync() as Float32Array };
    for (const w of train) g[w.name] = grads[(w.variable.read() as tf.Variable).name]!.dataSync() as Float32Array;
    tf.dispose([value, ...Object.values(grads), x, dy]);
    return { xq: xq!, g };
  } finally {
    setFusedKernels(true);
  }
}

const SAT_CASES: Case[] = [
  { label: 'weights per element', build: [48, 20], shape: [48, 20], opts: { place: 'weight' } },
  { label: 'per activation', build: [null, 12], shape: [40, 12], opts: { place: 'datalane', granularity: 'activation' } },
  { label: 'per tensor', build: [null, 9], shape: [30, 9], opts: { place: 'datalane', granularity: 'tensor' } },
];

for (const backend of ['wasm', 'cpu'] as const) {
  for (const c of SAT_CASES) {
    test(`fused SAT/SAT_SYM training (KIF and KBI) = tf-op path: values bit for bit, gradients: ${c.label} (${backend})`, async () => {
      await useBackend(backend);
      const before = tf.memory().numTensors;
      const rng = makeRng(c.label.length * 17 + (backend === 'cpu' ? 3 : 0));
      for (const qType of ['kif', 'kbi'] as const) {
        for (const overflow of ['SAT', 'SAT_SYM'] as const) {
          for (const round of ROUND_MODES as readonly RoundMode[]) {
            const make = () => {
              const q = new Quantizer({ ...c.opts, qType, overflowMode: overflow, roundMode: round } as QuantizerOptions);
              q.build(c.build);
              return q;
            };
            const qa = make(),
              qb = make();
            assert.ok(fusedTrainApplies(c.shape, qa.paramShape));
            const P = qa.paramShape.reduce((a, b) => a * b, 1);
            const k = Array.from({ length: P }, () => rng.int(0, 1));
            // raw parameters with ties (.5), fractions, values past the bounds; i below −f sometimes
            const raw = (lo: number, hi: number) =>
              Array.from({ length: P }, () => rng.int(lo, hi) + rng.pick([0, 0, 0.5, 0.3, -0.3]));
            const p = qType === 'kif' ? { i: raw(-6, 8), f: raw(-3, 12) } : { b: raw(-1, 14), i: raw(-6, 8) };
            for (const q of [qa, qb]) {
              setParam(q, 'k', k);
              for (const [n, v] of Object.entries(p)) setParam(q, n, v);
            }
            const n = c.shape.reduce((a, b) => a * b, 1);
            const xs = new Float32Array(n),
              dys = new Float32Array(n);
            for (let j = 0; j < n; j++) {
              xs[j] = fr(rng.pick([1, -1]) * 2 ** rng.int(-8, 10) * (rng.chance(0.2) ? 1 : rng.next() + 0.5));
              dys[j] = fr((rng.next() * 2 - 1) * 2 ** rng.int(-3, 3));
            }
            const a = satStep(qa, xs, dys, c.shape, true);
            const b = satStep(qb, xs, dys, c.shape, false);
            const tag = `${qType} ${overflow} ${round}`;
            for (let j = 0; j < n; j++) {
              if (!Object.is(a.xq[j], b.xq[j]))
                assert.fail(`${tag}: x_q[${j}] of x=${xs[j]}: fused ${a.xq[j]}, tf ops ${b.xq[j]}`);
              if (a.g['x']![j] !== b.g['x']![j]) assert.fail(`${tag}: ∂x[${j}]: fused ${a.g['x']![j]}, tf ops ${b.g['x']![j]}`);
            }
            const rows = n / P;
            for (const name of Object.keys(p)) {
              const ga = a.g[name]!,
                gb = b.g[name]!;
              for (let j = 0; j < P; j++) {
                if (rows === 1) {
                  if (ga[j] !== gb[j]) assert.fail(`${tag}: ∂${name}[${j}] per element: fused ${ga[j]}, tf ops ${gb[j]}`);
                } else {
                  const tol = 2e-5 * (Math.abs(ga[j]!) + Math.abs(gb[j]!)) + 1e-3 * rows * 2 ** -20;
                  if (!(Math.abs(ga[j]! - gb[j]!) <= tol)) assert.fail(`${tag}: ∂${name}[${j}]: fused ${ga[j]}, tf ops ${gb[j]}`);
                }
              }
            }
            qa.dispose();
            qb.dispose();
          }
        }
      }
      assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
    });
  }
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`fused bits() = tf-op path: values and gradients (KIF/KBI, SAT/SAT_SYM/WRAP, out-of-bound and tie raw values) (${backend})`, async () => {
    await useBackend(backend);
    const before = tf.memory().numTensors;
    const rng = makeRng(backend === 'cpu' ? 11 : 12);
    for (const qType of ['kif', 'kbi'] as const) {
      for (const overflow of ['SAT', 'SAT_SYM', 'WRAP'] as const) {
        const make = () => {
          const q = new Quantizer({ place: 'weight', qType, overflowMode: overflow });
          q.build([30, 7]);
          return q;
        };
        const qa = make(),
          qb = make();
        const P = 210;
        const raw = (lo: number, hi: number) =>
          Array.from({ length: P }, () => rng.int(lo, hi) + rng.pick([0, 0.5, -0.5, 0.3, 0.7]));
        const vals: Record<string, number[]> = {
          k: Array.from({ length: P }, () => rng.int(0, 1)),
          i: raw(-30, 30),
          f: raw(-30, 30),
          b: raw(-3, 26),
        };
        for (const q of [qa, qb]) for (const w of q.weights) if (vals[w.name]) setParam(q, w.name, vals[w.name]!);
        const w = Array.from({ length: P }, () => fr(rng.next() * 3));
        const grad = (q: Quantizer, fused: boolean) => {
          setFusedKernels(fused);
          try {
            const names = (qType === 'kif' ? ['i', 'f'] : ['b']).filter((n) => q.weights.find((x) => x.name === n)!.trainable);
            const vars = names.map((n) => q.weights.find((x) => x.name === n)!.variable.read() as tf.Variable);
            const wt = tf.tensor(w, [30, 7]);
            let bits: Float32Array | null = null;
            const { value, grads } = tf.variableGrads(() => {
              const bt = q.bits();
              bits = bt.dataSync() as Float32Array;
              return tf.sum(tf.mul(bt, wt)) as tf.Scalar;
            }, vars);
            const g = vars.map((v) => Array.from(grads[v.name]!.dataSync()));
            tf.dispose([value, wt, ...Object.values(grads)]);
            return { bits: Array.from(bits!), g };
          } finally {
            setFusedKernels(true);
          }
        };
        const a = grad(qa, true),
          b = grad(qb, false);
        const tag = `${qType} ${overflow}`;
        for (let p = 0; p < P; p++)
          if (a.bits[p] !== b.bits[p]) assert.fail(`${tag}: bits[${p}] fused ${a.bits[p]}, tf ops ${b.bits[p]}`);
        a.g.forEach((ga, j) => {
          for (let p = 0; p < P; p++)
            if (ga[p] !== b.g[j]![p]) assert.fail(`${tag}: gradient ${j} [${p}] fused ${ga[p]}, tf ops ${b.g[j]![p]}`);
        });
        qa.dispose();
        qb.dispose();
      }
    }
    assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  });
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`l1LossOf (one kernel): value = Σ l1·Σ raw, gradient l1 per raw element, both paths (${backend})`, async () => {
    await useBackend(backend);
    const before = tf.memory().numTensors;
    const rng = makeRng(backend === 'cpu' ? 21 : 22);
    const qs = [
      new Quantizer({ place: 'weight', l1: 1e-3 }),
      new Quantizer({ place: 'datalane', l1: 2e-2 }),
      new Quantizer({ place: 'bias', l1: 0 }),
    ];
    qs[0]!.build([6, 5]);
    qs[1]!.build([null, 7]);
    qs[2]!.build([5]);
    for (const q of qs)
      for (const w of q.weights)
        if (w.trainable)
          setParam(
            q,
            w.name,
            q.paramShape.length
              ? Array.from({ length: q.paramShape.reduce((a, b) => a * b, 1) }, () => rng.int(-9, 9) + rng.next())
              : [],
          );
    const raws = qs.flatMap((q) => (q.config.l1 > 0 ? q.l1Params().map((t) => ({ t, l1: q.config.l1 })) : []));
    const want = raws.reduce((s, { t, l1 }) => s + fr(l1) * Array.from(t.dataSync()).reduce((a, b) => a + b, 0), 0);
    for (const fused of [true, false]) {
      setFusedKernels(fused);
      try {
        const vars = raws.map(({ t }) => t as tf.Variable).filter((v) => v.trainable); // WRAP's i is not trained
        const { value, grads } = tf.variableGrads(() => l1LossOf(qs)!, vars);
        const v = value.dataSync()[0]!;
        assert.ok(Math.abs(v - want) <= 1e-6 * Math.abs(want) + 1e-9, `${fused ? 'fused' : 'tf ops'}: L1 ${v} vs ${want}`);
        raws.forEach(({ t, l1 }) => {
          if (!(t as tf.Variable).trainable) return;
          for (const g of grads[(t as tf.Variable).name]!.dataSync())
            assert.equal(g, fr(l1), `${fused ? 'fused' : 'tf ops'}: ∂L1/∂raw = l1`);
        });
        tf.dispose([value, ...Object.values(grads)]);
      } finally {
        setFusedKernels(true);
      }
    }
    assert.equal(l1LossOf([qs[2]!]), null, 'no L1 term when every l1 is 0');
    for (const q of qs) q.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  });
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`QDense loss term β·factor·EBOPs + L1 (fused kernels) = tf-op path: value, EBOPs and gradients (${backend})`, async () => {
    await useBackend(backend);
    const rng = makeRng(backend === 'cpu' ? 31 : 32);
    const variants = [
      { units: 3, inputShape: [5] },
      { units: 4, inputShape: [4, 6], parallelizationFactor: 2, ebopsFactor: 0.5 },
      { units: 2, inputShape: [7], useBias: false },
      { units: 3, inputShape: [5], enableIq: false, enableEbops: true },
      { units: 3, inputShape: [6], kqConf: { overflowMode: 'SAT', l1: 1e-3 }, iqConf: { l1: 2e-3 } },
    ];
    for (const [vi, args] of variants.entries()) {
      const l = new QDense(args as ConstructorParameters<typeof QDense>[0]);
      l.build([null, ...args.inputShape]);
      for (const w of l.weights) {
        const n = w.originalName.split('/').pop()!;
        const size = w.shape.reduce((a, b) => a! * b!, 1)!;
        const gen = n.endsWith('_k')
          ? () => rng.int(0, 1)
          : n.endsWith('_b')
            ? () => rng.int(-1, 9) + rng.pick([0, 0.5, 0.3])
            : n.endsWith('_i') || n.endsWith('_f')
              ? () => rng.int(-6, 6) + rng.pick([0, 0.5, 0.3])
              : null;
        if (gen) {
          const t = tf.tensor(Array.from({ length: size }, gen), w.shape as number[]);
          w.write(t);
          t.dispose();
        }
      }
      l.setBeta(0.37);
      const vars = l.trainableWeights.map((w) => w.read() as tf.Variable).filter((v) => v.trainable);
      const run = (fused: boolean) => {
        setFusedKernels(fused);
        try {
          const ebops = l.hgqEbops();
          const { value, grads } = tf.variableGrads(() => l.regularization(), vars);
          const out = { ebops, value: value.dataSync()[0]!, g: vars.map((v) => Array.from(grads[v.name]?.dataSync() ?? [])) };
          tf.dispose([value, ...Object.values(grads)]);
          return out;
        } finally {
          setFusedKernels(true);
        }
      };
      const a = run(true),
        b = run(false);
      assert.equal(a.ebops, b.ebops, `variant ${vi}: EBOPs`);
      assert.ok(Math.abs(a.value - b.value) <= 1e-6 * Math.abs(b.value), `variant ${vi}: loss term ${a.value} vs ${b.value}`);
      a.g.forEach((ga, j) => {
        assert.equal(ga.length, b.g[j]!.length, `variant ${vi}: gradient of ${vars[j]!.name} present on both paths`);
        ga.forEach((x, p) =>
          assert.ok(
            Math.abs(x - b.g[j]![p]!) <= 1e-6 * Math.abs(b.g[j]![p]!) + 1e-12,
            `variant ${vi}: ∂${vars[j]!.name}[${p}] ${x} vs ${b.g[j]![p]}`,
          ),
        );
      });
      for (const w of l.weights) w.dispose();
    }
  });
}

test('the embedded wasm module was built from the current assembly/quantizer.ts and build flags', async () => {
  const { sourceHash } = (await import(new URL('../scripts/build-quantizer-wasm.mjs', import.meta.url).href)) as unknown as {
    sourceHash(): string;
  };
  const { QUANTIZER_WASM_SOURCE_SHA256 } = await import('../src/quantizer/wasm-bytes.ts');
  assert.equal(QUANTIZER_WASM_SOURCE_SHA256, sourceHash(), 'rebuild: node scripts/build-quantizer-wasm.mjs');
});
