// The wasm engine's fused training step equals a plain float64 reference (test/util/engine-ref.ts): same loss,
// same EBOPs, same gradients for weights and every bit parameter, same WRAP integer-bit tracking; results do not
// depend on the thread count or the chunking; bad descriptions get clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine, type DenseDesc, type ModelDesc } from '../src/engine/engine.ts';
import { makeRng, type Rng } from './util/rng.ts';
import { referenceStep } from './util/engine-ref.ts';
import type { WorkerPoolFactory } from '../src/engine/types.ts';
import { close as closeTo } from './util/engine-compare.ts';

type ActMode = 'WRAP' | 'SAT' | 'SAT_SYM';

function randDesc(
  rng: Rng,
  sizes: number[],
  o: { act: ActMode; w: 'SAT' | 'SAT_SYM'; loss: ModelDesc['loss']; lastRelu?: boolean },
): ModelDesc {
  const layers: DenseDesc[] = [];
  const arr = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
  const int = (lo: number, hi: number) => () => rng.int(lo, hi) + (rng.chance(0.5) ? 0.3 : -0.3) * rng.next();
  for (let l = 0; l + 1 < sizes.length; l++) {
    const K = sizes[l],
      N = sizes[l + 1];
    const last = l + 2 === sizes.length;
    layers.push({
      type: 'dense',
      inputs: K,
      units: N,
      activation: last && !o.lastRelu ? 'linear' : 'relu',
      kernel: arr(K * N, () => (rng.next() * 2 - 1) * 1.2),
      bias: arr(N, () => (rng.next() * 2 - 1) * 0.5),
      iq: {
        overflow: o.act,
        k: arr(K, () => (rng.chance(0.7) ? 1 : 0)),
        i: arr(K, int(-1, 2)),
        f: arr(K, int(2, 6)),
        iBounds: [-24, 24],
        fBounds: [-24, 24],
        l1: 1e-3,
        decay: 0.25,
      },
      kq: {
        overflow: o.w,
        k: arr(K * N, () => (rng.chance(0.8) ? 1 : 0)),
        b: arr(K * N, int(0, 7)),
        i: arr(K * N, int(-1, 1)),
        bBounds: [0, 23],
        iBounds: [-24, 24],
        l1: 1e-3,
      },
      bq: {
        overflow: o.w,
        k: arr(N, () => 1),
        b: arr(N, int(1, 7)),
        i: arr(N, int(-1, 1)),
        bBounds: [0, 23],
        iBounds: [-24, 24],
      },
      beta: 1e-3 * (l + 1),
    });
  }
  return { layers, loss: o.loss, optimizer: { learningRate: 1e-3 } };
}

function randData(rng: Rng, B: number, K: number, C: number, loss: ModelDesc['loss']) {
  const x = Float32Array.from({ length: B * K }, () => (rng.next() * 2 - 1) * 3);
  const y = new Float32Array(B * C);
  for (let b = 0; b < B; b++) {
    if (loss === 'mse') for (let c = 0; c < C; c++) y[b * C + c] = rng.next() * 2 - 1;
    else y[b * C + rng.int(0, C - 1)] = 1;
  }
  return { x, y };
}

/** Against the float64 reference step: float32 accumulation differs from it by ~1e-4 relative. */
const close = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, rel = 2e-4) => closeTo(name, got, want, rel, 1e-7);

const CASES: Array<{ act: ActMode; w: 'SAT' | 'SAT_SYM'; loss: ModelDesc['loss']; lastRelu?: boolean; sizes?: number[] }> = [
  { act: 'WRAP', w: 'SAT_SYM', loss: 'softmax_cross_entropy' },
  { act: 'SAT', w: 'SAT', loss: 'softmax_cross_entropy' },
  { act: 'SAT_SYM', w: 'SAT_SYM', loss: 'mse' },
  { act: 'WRAP', w: 'SAT', loss: 'mse', lastRelu: true },
  // enough parameters (≥ 2^15 floats) for the per-parameter rounds to split the weight rows over both threads
  { act: 'WRAP', w: 'SAT', loss: 'softmax_cross_entropy', sizes: [62, 190, 5] },
];

for (const [ci, cfg] of CASES.entries()) {
  const sizes = cfg.sizes ?? [7, 13, 9, 6, 3];
  test(`one step equals the float64 reference: ${sizes.join('-')}, act ${cfg.act}, weights ${cfg.w}, ${cfg.loss}${cfg.lastRelu ? ', relu output' : ''}`, async () => {
    const rng = makeRng(100 + ci);
    const desc = randDesc(rng, sizes, cfg);
    const B = 157; // not a multiple of the chunk or of 16: exercises padding
    const { x, y } = randData(rng, B, sizes[0], sizes.at(-1)!, cfg.loss);
    const ref = referenceStep(desc, x, y);
    for (const threads of [1, 2]) {
      const eng = await createEngine(desc, { threads, chunk: 48 });
      try {
        const r = eng.step(x, y);
        assert.ok(
          Math.abs(r.taskLoss - ref.taskLoss) <= 1e-5 * Math.max(1, ref.taskLoss),
          `task loss ${r.taskLoss} vs ${ref.taskLoss}`,
        );
        assert.equal(r.ebops, ref.ebops, 'EBOPs');
        if (cfg.loss === 'softmax_cross_entropy') assert.equal(r.accuracy, ref.accuracy, 'accuracy');
        assert.ok(Math.abs(r.l1Loss - ref.l1) <= 1e-6 * Math.max(1, ref.l1), `L1 ${r.l1Loss} vs ${ref.l1}`);
        const g = eng.debugGradients();
        for (const [name, want] of Object.entries(ref.grads)) {
          assert.ok(g[name], `engine has gradient ${name}`);
          close(`${name} (threads ${threads})`, g[name], want);
        }
        // WRAP integer bits tracked from this batch (i is not trained under WRAP)
        if (cfg.act === 'WRAP') {
          const st = eng.readState();
          desc.layers.forEach((d, l) => {
            const q = d.iq!;
            const want = Array.from(q.i, (iv, k) => {
              const f = Math.round(q.f[k]);
              return Math.min(
                24,
                Math.max(Math.fround(iv - 0.25), Math.ceil(Math.log2(Math.fround(ref.absmax[l][k] + 2 ** -f)))),
              );
            });
            assert.deepEqual(
              Array.from(st.values[`layers[${l}].iq.i`]),
              want.map(Math.fround),
              `layers[${l}].iq.i after tracking`,
            );
          });
        }
      } finally {
        eng.dispose();
      }
    }
  });
}

test('results do not depend on the thread count, chunk size or schedule (several steps); static is reproducible', async () => {
  const rng = makeRng(7);
  const sizes = [16, 24, 12, 5];
  const desc = randDesc(rng, sizes, { act: 'WRAP', w: 'SAT_SYM', loss: 'softmax_cross_entropy' });
  const batches = Array.from({ length: 4 }, () => randData(rng, 300, 16, 5, 'softmax_cross_entropy'));
  const runs: Array<Record<string, Float32Array>> = [];
  const losses: number[][] = [];
  for (const [threads, chunk, schedule] of [
    [1, 256, 'static'],
    [2, 32, 'dynamic'],
    [2, 112, 'dynamic'],
    [2, 64, 'static'],
    [2, 64, 'static'],
  ] as const) {
    const eng = await createEngine(desc, { threads, chunk, simd: 'simd128', schedule });
    try {
      losses.push(batches.map((b) => eng.step(b.x, b.y).loss));
      runs.push(eng.readState().values);
    } finally {
      eng.dispose();
    }
  }
  // a static schedule is bit-reproducible
  for (const [name, v] of Object.entries(runs[3])) assert.deepEqual(runs[4][name], v, `${name}: two static 2-thread runs differ`);
  for (let r = 1; r < runs.length; r++) {
    losses[r].forEach((l, s) =>
      assert.ok(Math.abs(l - losses[0][s]) <= 1e-5 * Math.abs(losses[0][s]), `loss at step ${s}: ${l} vs ${losses[0][s]}`),
    );
    for (const [name, v] of Object.entries(runs[0])) {
      // Adam normalizes gradients, so a gradient that is ~0 up to rounding may move by up to lr per step
      const got = runs[r][name];
      for (let j = 0; j < v.length; j++) {
        assert.ok(Math.abs(got[j] - v[j]) <= 4 * 1e-3 * 1.01, `${name}[${j}] run ${r}: ${got[j]} vs ${v[j]}`);
      }
      let same = 0;
      for (let j = 0; j < v.length; j++) if (Math.abs(got[j] - v[j]) <= 1e-5 * Math.max(1, Math.abs(v[j]))) same++;
      assert.ok(same >= 0.97 * v.length, `${name} run ${r}: only ${same}/${v.length} parameters agree closely`);
    }
  }
});

test('call lists the calling thread takes over from a late worker train exactly as the worker would (a pool whose workers never run)', async () => {
  const rng = makeRng(31);
  const desc = randDesc(rng, [62, 190, 5], { act: 'SAT', w: 'SAT', loss: 'softmax_cross_entropy' });
  const { x, y } = randData(rng, 300, 62, 5, 'softmax_cross_entropy');
  let takenOver = 0;
  const late: WorkerPoolFactory = async ({ workers }) => ({
    workers,
    run(own, takeOver) {
      own();
      for (let t = 1; t <= workers; t++) {
        takeOver(t);
        takenOver++;
      }
    },
    dispose() {},
  });
  const a = await createEngine(desc, { threads: 2, schedule: 'static', simd: 'simd128' });
  const b = await createEngine(desc, { threads: 2, schedule: 'static', simd: 'simd128', poolFactory: late });
  try {
    for (let s = 0; s < 3; s++) assert.deepEqual(b.step(x, y), a.step(x, y), `step ${s}`);
    assert.ok(takenOver >= 9, 'every round (quantization, forward+backward, update) was taken over');
    const sa = a.readState(),
      sb = b.readState();
    for (const name of Object.keys(sa.values)) {
      assert.deepEqual(sb.values[name], sa.values[name], name);
      if (sa.adam.m[name]) assert.deepEqual(sb.adam.m[name], sa.adam.m[name], `${name} m`);
    }
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('batches written into batchBuffers() views train exactly like copied batches, also after the memory grows', async () => {
  const rng = makeRng(21);
  const desc = randDesc(rng, [16, 20, 5], { act: 'WRAP', w: 'SAT_SYM', loss: 'softmax_cross_entropy' });
  const batches = [
    randData(rng, 200, 16, 5, 'softmax_cross_entropy'),
    randData(rng, 5000, 16, 5, 'softmax_cross_entropy'),
    randData(rng, 200, 16, 5, 'softmax_cross_entropy'),
  ];
  const a = await createEngine(desc, { threads: 1, simd: 'simd128' });
  const b = await createEngine(desc, { threads: 1, simd: 'simd128' });
  try {
    const stale = b.batchBuffers(200); // becomes stale when the 5000-sample batch grows the memory
    for (const [s, d] of batches.entries()) {
      const la = a.step(d.x, d.y).loss;
      const B = d.x.length / 16;
      const v = s === 2 ? stale : b.batchBuffers(B);
      v.x.set(d.x);
      v.y.set(d.y);
      assert.equal(b.step(v.x, v.y).loss, la, `step ${s}: loss`);
    }
    const sa = a.readState().values,
      sb = b.readState().values;
    for (const [name, v] of Object.entries(sa)) assert.deepEqual(sb[name], v, name);
    assert.throws(() => b.batchBuffers(0), /batch size must be a positive integer/);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('training with the engine lowers the loss', async () => {
  const rng = makeRng(9);
  const desc = randDesc(rng, [16, 32, 5], { act: 'WRAP', w: 'SAT_SYM', loss: 'softmax_cross_entropy' });
  desc.optimizer.learningRate = 1e-2;
  for (const l of desc.layers) l.beta = 0;
  const B = 512;
  const x = Float32Array.from({ length: B * 16 }, () => rng.next() * 2 - 1);
  const y = new Float32Array(B * 5);
  for (let b = 0; b < B; b++) y[b * 5 + (x[b * 16] > 0 ? 1 : 0) + (x[b * 16 + 1] > 0 ? 2 : 0)] = 1;
  const eng = await createEngine(desc, { threads: 1 });
  try {
    const first = eng.step(x, y).taskLoss;
    let last = first;
    for (let s = 0; s < 60; s++) last = eng.step(x, y).taskLoss;
    assert.ok(last < 0.6 * first, `task loss ${first} → ${last}`);
  } finally {
    eng.dispose();
  }
});

test('bad descriptions and batches get clear errors', async () => {
  const rng = makeRng(3);
  const desc = randDesc(rng, [4, 3, 2], { act: 'WRAP', w: 'SAT_SYM', loss: 'mse' });
  await assert.rejects(
    createEngine({ ...desc, layers: [{ ...desc.layers[0], kernel: new Float32Array(5) }, desc.layers[1]] }, { threads: 1 }),
    /layers\[0\]\.kernel has length 5, expected 12/,
  );
  await assert.rejects(
    createEngine(
      { ...desc, layers: [desc.layers[0], { ...desc.layers[1], inputs: 4, kernel: new Float32Array(8) }] },
      { threads: 1 },
    ),
    /layer 1 expects 4 inputs but layer 0 has 3 units/,
  );
  await assert.rejects(createEngine(desc, { threads: 1, chunk: 20 }), /chunk must be a positive multiple of 16/);
  await assert.rejects(createEngine({ ...desc, loss: 'hinge' as never }, { threads: 1 }), /loss hinge is not supported/);
  const eng = await createEngine(desc, { threads: 1 });
  try {
    assert.throws(() => eng.step(new Float32Array(10), new Float32Array(5)), /x must be a non-empty Float32Array of B×4 values/);
    assert.throws(() => eng.step(new Float32Array(8), new Float32Array(3)), /y must be a Float32Array of 2×2 values/);
    assert.throws(() => eng.writeState({ values: { nope: new Float32Array(1) } }), /unknown parameter nope/);
  } finally {
    eng.dispose();
  }
});

test('the default chunk is 256 samples, 128 when a layer has more than 512 inputs; an explicit chunk wins', async () => {
  const rng = makeRng(4);
  const narrow = randDesc(rng, [16, 8, 3], { act: 'WRAP', w: 'SAT', loss: 'softmax_cross_entropy' });
  const wide = randDesc(rng, [600, 4, 3], { act: 'WRAP', w: 'SAT', loss: 'softmax_cross_entropy' });
  for (const [desc, opts, want] of [
    [narrow, {}, 256],
    [wide, {}, 128],
    [wide, { chunk: 64 }, 64],
  ] as const) {
    const eng = await createEngine(desc, { threads: 1, ...opts });
    try {
      assert.equal(eng.chunk, want);
    } finally {
      eng.dispose();
    }
  }
});
