/**
 * Property: the surrogate gradients of the quantizers equal docs/quantizers.md §3's formulas exactly (float32
 * arithmetic emulated with Math.fround), per element, on both the wasm and cpu backends:
 *   ∂x_q/∂x = 1 in range, 0 where SAT clipped;  ∂x_q/∂f = −ln2·(x_q − x) in range;
 *   top clip: ∂/∂i = ln2·2^i, ∂/∂f = ln2·2^-f;  bottom clip: ∂/∂i = −k·ln2·2^i (and ∂/∂f = −k·ln2·2^-f under SAT_SYM);
 *   i raised to max(i, −f) with a straight-through gradient; KBI: ∂b = ∂f, ∂i_raw = ∂i − ∂f; WRAP: nothing into i.
 * Gradients summed over homogeneous axes equal the sums of the per-element formulas (float summation tolerance).
 * Also: bits() and l1Loss() gradients, and the training forward value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { Quantizer } from '../src/quantizer/index.ts';
import { quantize, roundToStep } from '../src/fixed/quantize.ts';
import type { Kif, OverflowMode, RoundMode } from '../src/fixed/types.ts';
import { makeRng, type Rng } from './util/rng.ts';

const fr = Math.fround;
const LN2 = fr(Math.LN2);
const NLN2 = fr(-Math.LN2);

interface Expected {
  xq: number;
  dx: number;
  df: number;
  di: number;
}

/** The formulas, element by element, in the same float32 operation order as a float32 machine would do them. */
function expected(x: number, t: Kif, dy: number, round: RoundMode, overflow: OverflowMode): Expected {
  if (overflow === 'WRAP') {
    const xq = roundToStep(x, t.f, round);
    return { xq, dx: dy, df: fr(fr(dy * fr(xq - x)) * NLN2), di: 0 };
  }
  const iEff = Math.max(t.i, -t.f);
  const step = 2 ** -t.f;
  const top = 2 ** iEff;
  const hi = top - step;
  const lo = overflow === 'SAT' ? -t.k * top : -t.k * hi;
  const xq = quantize(x, { k: t.k, i: iEff, f: t.f }, round, overflow);
  if (x > hi) return { xq, dx: 0, df: fr(dy * fr(step * LN2)), di: fr(dy * fr(top * LN2)) };
  if (x < lo) {
    const sym = overflow === 'SAT_SYM' ? 1 : 0;
    return { xq, dx: 0, df: fr(dy * (-t.k * sym * fr(step * LN2))), di: fr(dy * (-t.k * fr(top * LN2))) };
  }
  return { xq, dx: dy, df: fr(dy * fr(fr(xq - x) * NLN2)), di: 0 };
}

function randomCase(rng: Rng): { t: Kif; x: number } {
  const k = rng.int(0, 1) as 0 | 1;
  const f = rng.int(-4, 12);
  // i sometimes below −f, where it is raised to −f
  const i = rng.chance(0.15) ? rng.int(-f - 3, -f) : rng.int(-f, Math.min(20, 22 - f));
  const iEff = Math.max(i, -f);
  let x: number;
  switch (rng.int(0, 3)) {
    case 0:
      x = (rng.chance(0.5) ? 1 : -1) * 2 ** (iEff + rng.int(0, 4)) * (1 + rng.next()); // likely clipped
      break;
    case 1:
      x = (rng.int(-(2 ** Math.min(k + iEff + f, 20)), 2 ** Math.min(k + iEff + f, 20)) + 0.5) * 2 ** -f; // ties
      break;
    default:
      x = (rng.next() * 2 - 1) * 2 ** iEff; // mostly in range
  }
  return { t: { k, i, f }, x: fr(x) };
}

function setParams(q: Quantizer, kifs: Kif[]) {
  const shape = q.paramShape;
  const write = (name: string, vals: number[]) => {
    const w = q.weights.find((w) => w.name === name);
    if (!w) return;
    const t = tf.tensor(vals, shape);
    w.variable.write(t);
    t.dispose();
  };
  write(
    'k',
    kifs.map((t) => t.k),
  );
  write(
    'i',
    kifs.map((t) => t.i),
  );
  write(
    'f',
    kifs.map((t) => t.f),
  );
  write(
    'b',
    kifs.map((t) => t.i + t.f),
  );
}

/** Gradients of Σ(x_q·dy) w.r.t. x and the trainable quantizer variables. */
function gradsOf(q: Quantizer, xs: Float32Array, dys: Float32Array, shape: number[]) {
  const x0 = tf.tensor(xs, shape);
  const x = tf.variable(x0, true);
  x0.dispose();
  const dy = tf.tensor(dys, shape);
  const trainable = q.weights.filter((w) => w.trainable);
  const vars = [x, ...trainable.map((w) => w.variable.read() as tf.Variable)];
  let xq: Float32Array | null = null;
  const { value, grads } = tf.variableGrads(() => {
    const y = q.call(x, true);
    xq = y.dataSync() as Float32Array;
    return tf.sum(tf.mul(y, dy)) as tf.Scalar;
  }, vars);
  const out: Record<string, Float32Array> = { x: grads[x.name]!.dataSync() as Float32Array };
  for (const w of trainable) out[w.name] = grads[(w.variable.read() as tf.Variable).name]!.dataSync() as Float32Array;
  tf.dispose([value, ...Object.values(grads), x, dy]);
  return { grads: out, xq: xq!, trainable: trainable.map((w) => w.name) };
}

const N = 20_000;

for (const backend of ['wasm', 'cpu'] as const) {
  for (const [qType, overflow] of [
    ['kif', 'SAT'],
    ['kif', 'SAT_SYM'],
    ['kif', 'WRAP'],
    ['kbi', 'SAT'],
    ['kbi', 'SAT_SYM'],
    ['kbi', 'WRAP'],
  ] as const) {
    test(`${qType.toUpperCase()} ${overflow}: per-element gradients equal the formulas exactly (${backend})`, async () => {
      await useBackend(backend);
      const rng = makeRng(qType.length * 100 + overflow.length + (backend === 'cpu' ? 7 : 0));
      const before = tf.memory().numTensors;
      const round: RoundMode = rng.pick(['RND', 'TRN', 'RND_CONV'] as const);
      const kifs: Kif[] = [];
      const xs = new Float32Array(N);
      const dys = new Float32Array(N);
      for (let j = 0; j < N; j++) {
        const c = randomCase(rng);
        if (qType === 'kbi' && c.t.i + c.t.f < 0) c.t.i = -c.t.f; // b >= 0
        kifs.push(c.t);
        xs[j] = c.x;
        dys[j] = fr((rng.next() * 2 - 1) * 2 ** rng.int(-3, 3));
      }
      const q = new Quantizer({ place: 'datalane', qType, overflowMode: overflow, roundMode: round, granularity: 'element' });
      q.build([N]);
      setParams(q, kifs);
      const { grads, xq, trainable } = gradsOf(q, xs, dys, [N]);
      const used = q.kifs(); // after the step: WRAP KBI moved i before its forward pass
      if (overflow === 'WRAP') assert.ok(!trainable.includes('i'), 'WRAP: i is not trainable (no gradient into i)');
      let bad = 0;
      let first = '';
      for (let j = 0; j < N; j++) {
        const t = overflow === 'WRAP' ? used[j]! : kifs[j]!;
        const e = expected(xs[j]!, t, dys[j]!, round, overflow);
        const got = {
          xq: xq[j]!,
          dx: grads.x![j]!,
          df: qType === 'kif' ? grads.f![j]! : grads.b![j]!,
          di: overflow === 'WRAP' ? 0 : qType === 'kif' ? grads.i![j]! : fr(grads.i![j]! + grads.b![j]!),
        };
        // KBI: ∂i_raw = ∂i − ∂f exactly
        const kbiI = qType === 'kbi' && overflow !== 'WRAP' ? grads.i![j] === fr(e.di - e.df) : true;
        if (got.xq !== e.xq || got.dx !== e.dx || got.df !== e.df || (qType === 'kif' && got.di !== e.di) || !kbiI) {
          if (bad++ === 0)
            first = `x=${xs[j]} kif=${JSON.stringify(t)} dy=${dys[j]} got ${JSON.stringify(got)} want ${JSON.stringify(e)}`;
        }
      }
      assert.equal(bad, 0, `${bad}/${N} elements differ; first: ${first}`);
      q.dispose();
      assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
    });
  }

  test(`shared parameters: gradients are the sums of the per-element formulas (${backend})`, async () => {
    await useBackend(backend);
    const rng = makeRng(5);
    for (const [granularity, overflow, qType] of [
      ['activation', 'WRAP', 'kif'],
      ['channel', 'WRAP', 'kbi'],
      ['channel', 'SAT', 'kif'],
      ['tensor', 'SAT_SYM', 'kbi'],
      ['activation', 'SAT_SYM', 'kbi'],
    ] as const) {
      const shape = [64, 8, 6];
      const q = new Quantizer({ place: 'datalane', qType, overflowMode: overflow, roundMode: 'RND', granularity });
      q.build(granularity === 'activation' ? [null, 8, 6] : shape);
      const nP = q.paramShape.reduce((a, b) => a * b, 1);
      const pk: Kif[] = [];
      for (let j = 0; j < nP; j++) pk.push({ k: rng.int(0, 1) as 0 | 1, i: rng.int(0, 3), f: rng.int(2, 6) });
      setParams(q, pk);
      const kifs = q.kifsFor(shape);
      const n = kifs.length;
      const xs = new Float32Array(n);
      const dys = new Float32Array(n);
      for (let j = 0; j < n; j++) {
        xs[j] = fr((rng.next() * 2 - 1) * 2 ** (kifs[j]!.i + 1));
        dys[j] = fr(rng.next() * 2 - 1);
      }
      const { grads } = gradsOf(q, xs, dys, shape);
      const used = overflow === 'WRAP' ? q.kifsFor(shape) : kifs;
      // map each element to its parameter index
      const ps = q.paramShape;
      const sumF = new Float64Array(nP),
        sumI = new Float64Array(nP),
        absF = new Float64Array(nP),
        absI = new Float64Array(nP);
      const idx = [0, 0, 0];
      for (let j = 0; j < n; j++) {
        let p = 0;
        for (let a = 0; a < 3; a++) p = p * ps[a]! + (ps[a] === 1 ? 0 : idx[a]!);
        const e = expected(xs[j]!, used[j]!, dys[j]!, 'RND', overflow);
        sumF[p] += e.df;
        absF[p] += Math.abs(e.df);
        sumI[p] += e.di;
        absI[p] += Math.abs(e.di);
        assert.ok(
          grads.x![j] === e.dx,
          `${granularity} ${overflow} ${qType}: x gradient of element ${j} (x=${xs[j]}, ${JSON.stringify(used[j])})`,
        );
        for (let a = 2; a >= 0; a--) {
          if (++idx[a]! < shape[a]!) break;
          idx[a] = 0;
        }
      }
      for (let p = 0; p < nP; p++) {
        const gf = qType === 'kif' ? grads.f![p]! : grads.b![p]!;
        assert.ok(Math.abs(gf - sumF[p]!) <= 1e-5 * absF[p]! + 1e-30, `${granularity} ${overflow}: ∂f[${p}] ${gf} vs ${sumF[p]}`);
        if (overflow !== 'WRAP') {
          const gi = qType === 'kif' ? grads.i![p]! : grads.i![p]! + grads.b![p]!;
          assert.ok(
            Math.abs(gi - sumI[p]!) <= 1e-5 * (absI[p]! + absF[p]!) + 1e-30,
            `${granularity}: ∂i[${p}] ${gi} vs ${sumI[p]}`,
          );
        }
      }
      q.dispose();
    }
  });

  test(`bits() and l1Loss() gradients flow into the raw bit parameters (${backend})`, async () => {
    await useBackend(backend);
    const before = tf.memory().numTensors;
    // KIF: bits = relu(round(i) + round(f)) (+k under SAT); gradient 1 into i and f where i + f > 0
    const q = new Quantizer({ place: 'datalane', qType: 'kif', overflowMode: 'SAT', granularity: 'element', l1: 0.5 });
    q.build([4]);
    setParams(q, [
      { k: 1, i: 2, f: 3 },
      { k: 0, i: -3, f: 1 },
      { k: 1, i: 0, f: 0 },
      { k: 0, i: 4, f: -1 },
    ]);
    const iv = q.weights.find((w) => w.name === 'i')!.variable.read() as tf.Variable;
    const fv = q.weights.find((w) => w.name === 'f')!.variable.read() as tf.Variable;
    const bits = q.bits();
    assert.deepEqual(Array.from(bits.dataSync()), [6, 0, 1, 3]);
    bits.dispose();
    const g = tf.variableGrads(() => tf.sum(q.bits()) as tf.Scalar, [iv, fv]);
    assert.deepEqual(Array.from(g.grads[iv.name]!.dataSync()), [1, 0, 0, 1]);
    assert.deepEqual(Array.from(g.grads[fv.name]!.dataSync()), [1, 0, 0, 1]);
    tf.dispose([g.value, ...Object.values(g.grads)]);
    const l = tf.variableGrads(() => q.l1Loss(), [iv, fv]);
    assert.equal(l.value.dataSync()[0], fr(0.5 * (2 - 3 + 0 + 4 + 3 + 1 + 0 - 1)));
    assert.deepEqual(Array.from(l.grads[iv.name]!.dataSync()), [0.5, 0.5, 0.5, 0.5]);
    tf.dispose([l.value, ...Object.values(l.grads)]);
    q.dispose();
    // KBI: bits = round(b), straight-through; SAT_SYM: no sign bit
    const w = new Quantizer({ place: 'weight', l1: 0.25 });
    w.build([3]);
    setParams(w, [
      { k: 1, i: 1, f: 2 },
      { k: 1, i: 0, f: 0 },
      { k: 1, i: 2, f: 5 },
    ]);
    const bv = w.weights.find((x) => x.name === 'b')!.variable.read() as tf.Variable;
    const gb = tf.variableGrads(() => tf.sum(tf.mul(w.bits(), tf.tensor1d([1, 2, 3]))) as tf.Scalar, [bv]);
    assert.equal(gb.value.dataSync()[0], 3 * 1 + 0 * 2 + 7 * 3);
    assert.deepEqual(Array.from(gb.grads[bv.name]!.dataSync()), [1, 2, 3]);
    tf.dispose([gb.value, ...Object.values(gb.grads)]);
    const lb = w.l1Loss();
    assert.equal(lb.dataSync()[0], 0.25 * 10);
    lb.dispose();
    w.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  });
}
