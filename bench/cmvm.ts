/**
 * `npm run bench -- cmvm`: CMVM optimizer speed and quality.
 *
 * Speed: mean milliseconds per random N×N 8-bit matrix (entries 129..255, 8-bit signed inputs) at N = 16,
 * 32, 64 (the growth from 16 to 64), after a warm-up of 3 matrices, then as many more 16×16 matrices once
 * the code is warm (steady state). A calibration loop (ns per iteration of a fixed
 * integer loop) is printed too, so runs on a busy machine can be told apart, and the process's CPU time per
 * matrix (less sensitive to other jobs than wall time; includes V8's compiler and GC threads).
 * Quality: mean adders and depth over DRAWS random matrices at N = 4, 8, 16, unconstrained and with dc = 2,
 * against da4ml's published numbers (docs/cmvm.md §4).
 * Old vs new: adders, depth and ms of the baseline search (effort 1, one thread: the search before the
 * extra search and helper threads) and the default, in one run on the same matrices: random 8-bit N×N at
 * N = 16, 32, 64 with dc −1 and 2, and a 128×784 kernel with the statistics of the MNIST demo's first
 * layer (its largest checkpoint: a quarter zeros, mostly ±2^-5..2^-3, 3/4 of the inputs ufixed<4,1>,
 * the border pixels constant zero).
 * Env: CMVM_DRAWS (default 100), CMVM_SPEED_COUNT (16×16 matrices timed, default 40), CMVM_COMPARE_DRAWS
 * (16×16 draws in the old/new comparison, default 8; 32: a quarter, 64: an eighth, at least 1).
 * Last line: one JSON object.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prng, randomMatrix } from '../src/cmvm/random.ts';
import type { Program } from '../src/ir/types.ts';
import { programDepth, solveCmvm, type CmvmInput } from '../src/cmvm/solve.ts';

const REFERENCE: Record<string, { adders: number; depth?: number }> = {
  'dc-1 N4': { adders: 29.2, depth: 6.0 },
  'dc-1 N8': { adders: 98.1, depth: 9.3 },
  'dc-1 N16': { adders: 343.2, depth: 12.9 },
  'dc2 N4': { adders: 29.6 },
  'dc2 N8': { adders: 101.8 },
  'dc2 N16': { adders: 357.3 },
};

function s8(n: number): { qint: { min: number; max: number; step: number } }[] {
  return Array.from({ length: n }, () => ({ qint: { min: -128, max: 127, step: 1 } }));
}

function calibrate(): number {
  const a = new Int32Array(1 << 16);
  for (let i = 0; i < a.length; i++) a[i] = Math.imul(i, 2654435761) >>> 16;
  let s = 0;
  const t0 = performance.now();
  for (let r = 0; r < 400; r++) for (let i = 0; i < a.length; i++) s += a[(i * 31 + r) & 65535]!;
  const ns = ((performance.now() - t0) * 1e6) / (400 * 65536);
  return s > 0 ? ns : ns; // keep s alive
}

/** Mean wall milliseconds per matrix (solveCmvm's own figure) and this process's CPU milliseconds. */
function timeSize(n: number, count: number, seed: number): { ms: number; cpuMs: number; adders: number } {
  const next = prng(seed);
  for (let k = 0; k < 3; k++) solveCmvm(randomMatrix(n, 8, next), s8(n)); // warm-up (JIT)
  let ms = 0;
  let cpu = 0;
  let adders = 0;
  for (let k = 0; k < count; k++) {
    const W = randomMatrix(n, 8, next);
    const c0 = process.cpuUsage();
    const r = solveCmvm(W, s8(n));
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1000;
    ms += r.ms;
    adders += r.adders;
  }
  return { ms: ms / count, cpuMs: cpu / count, adders: adders / count };
}

interface Figures {
  adders: number;
  depth: number;
  ms: number;
}

/** Totals of the baseline (effort 1, one thread) and the default search over the same matrices. */
function compare(cases: Array<{ W: number[][]; inputs: CmvmInput[] }>, dc: number): { old: Figures; new: Figures } {
  const old = { adders: 0, depth: 0, ms: 0 };
  const now = { adders: 0, depth: 0, ms: 0 };
  for (const { W, inputs } of cases) {
    const a = solveCmvm(W, inputs, { dc, effort: 1, threads: 1 });
    const b = solveCmvm(W, inputs, { dc });
    for (const [f, r] of [
      [old, a],
      [now, b],
    ] as const) {
      f.adders += r.adders;
      f.depth = Math.max(f.depth, r.depth);
      f.ms += r.ms;
    }
  }
  return { old, new: now };
}

/** A 128×784 kernel with the statistics of the MNIST demo's first layer (see the module comment). */
function mnistLikeKernel(seed: number): { W: number[][]; inputs: CmvmInput[] } {
  const next = prng(seed);
  const pick = (table: Array<[number, number]>): number => {
    let u = next();
    for (const [v, p] of table) if ((u -= p) < 0) return v;
    return table[table.length - 1]![0];
  };
  const odd: Array<[number, number]> = [
    [1, 0.83],
    [3, 0.13],
    [5, 0.027],
    [7, 0.006],
    [9, 0.007],
  ];
  const exp: Array<[number, number]> = [
    [-5, 0.29],
    [-4, 0.4],
    [-3, 0.27],
    [-2, 0.04],
  ];
  const W = Array.from({ length: 128 }, () =>
    Array.from({ length: 784 }, () => (next() < 0.26 ? 0 : (next() < 0.5 ? -1 : 1) * pick(odd) * 2 ** pick(exp))),
  );
  const inputs = Array.from({ length: 784 }, (_, c) => {
    const border = c % 28 < 2 || c % 28 > 25 || c < 56 || c >= 728;
    return { qint: border ? { min: 0, max: 0, step: 1 } : { min: 0, max: next() < 0.9 ? 1.875 : 0.875, step: 0.125 } };
  });
  return { W, inputs };
}

function printCompare(label: string, r: { old: Figures; new: Figures }): Record<string, unknown> {
  console.log(
    `${label}: adders ${r.old.adders} → ${r.new.adders} (×${(r.new.adders / r.old.adders).toFixed(4)}), ` +
      `max depth ${r.old.depth} → ${r.new.depth}, ms ${r.old.ms.toFixed(0)} → ${r.new.ms.toFixed(0)} (×${(r.new.ms / r.old.ms).toFixed(2)})`,
  );
  return {
    old: roundAll(r.old),
    new: roundAll(r.new),
    adders_ratio: round(r.new.adders / r.old.adders),
    ms_ratio: round(r.new.ms / r.old.ms),
  };
}

function roundAll(f: Figures): Figures {
  return { adders: f.adders, depth: f.depth, ms: round(f.ms) };
}

/** Old vs new on random matrices and the MNIST-like kernel; returns the per-case figures and the totals. */
function oldVsNew(): Record<string, unknown> {
  const draws16 = Number(process.env.CMVM_COMPARE_DRAWS ?? 8);
  const out: Record<string, unknown> = {};
  const total = { old: { adders: 0, depth: 0, ms: 0 }, new: { adders: 0, depth: 0, ms: 0 } };
  for (const n of [16, 32, 64]) {
    const draws = Math.max(1, Math.round(draws16 / (n / 16) ** 1.5));
    for (const dc of [-1, 2]) {
      const next = prng(500 + n); // the same draws for both dc settings
      const cases = Array.from({ length: draws }, () => ({ W: randomMatrix(n, 8, next), inputs: s8(n) }));
      const r = compare(cases, dc);
      out[`N${n} dc${dc}`] = { draws, ...printCompare(`old vs new N=${n} dc=${dc} (${draws} matrices)`, r) };
      for (const k of ['old', 'new'] as const) {
        total[k].adders += r[k].adders;
        total[k].ms += r[k].ms;
        total[k].depth = Math.max(total[k].depth, r[k].depth);
      }
    }
  }
  out.random_total = printCompare('old vs new, random total', total);
  out['MNIST 128x784'] = printCompare('old vs new, MNIST-like 128×784 kernel (dc −1)', compare([mnistLikeKernel(784)], -1));
  return out;
}

/**
 * The trained kernels: every HGQ2 fixture (../shared/fixtures/hgq2) traced with the baseline search and the
 * default, each dense/conv kernel with its real input types; adders = the traced programs' add ops (the
 * non-CMVM adds are the same in both).
 */
async function trainedKernels(): Promise<Record<string, unknown> | null> {
  const dir = fileURLToPath(new URL('../../shared/fixtures/hgq2/', import.meta.url));
  if (!existsSync(dir)) return null;
  const { loadModelAny } = await import('../src/app/load-model.ts');
  const { trace } = await import('../src/trace/trace.ts');
  const adds = (p: Program): number => p.ops.reduce((n, op) => n + (op.kind === 'add' ? 1 : 0), 0);
  const total = { old: { adders: 0, depth: 0, ms: 0 }, new: { adders: 0, depth: 0, ms: 0 } };
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.keras'))
    .sort()) {
    const model = await loadModelAny(join(dir, f));
    for (const dc of [-1, 2]) {
      let t0 = performance.now();
      const a = trace(model, { dc, effort: 1, cmvmThreads: 1 });
      const msOld = performance.now() - t0;
      t0 = performance.now();
      const b = trace(model, { dc });
      const msNew = performance.now() - t0;
      total.old.adders += adds(a);
      total.old.ms += msOld;
      total.old.depth = Math.max(total.old.depth, programDepth(a));
      total.new.adders += adds(b);
      total.new.ms += msNew;
      total.new.depth = Math.max(total.new.depth, programDepth(b));
    }
    model.dispose();
  }
  return printCompare('old vs new, HGQ2 fixture models traced (dc −1 and 2, trace ms)', total);
}

export default async function main(): Promise<void> {
  const compared = oldVsNew();
  const trained = await trainedKernels();
  if (trained) compared.trained_fixtures = trained;
  const draws = Number(process.env.CMVM_DRAWS ?? 100);
  const speedCount = Number(process.env.CMVM_SPEED_COUNT ?? 40);
  const calibNs = calibrate();

  const speed: Record<string, { ms: number; cpu_ms: number; adders: number; count: number }> = {};
  for (const [n, count] of [
    [16, speedCount],
    [32, Math.max(3, speedCount >> 3)],
    [64, Math.max(2, speedCount >> 5)],
  ] as const) {
    const r = timeSize(n, count, 1000 + n);
    speed[`N${n}`] = { ms: round(r.ms), cpu_ms: round(r.cpuMs), adders: round(r.adders), count };
    console.log(
      `speed N=${n}: ${r.ms.toFixed(2)} ms per matrix, ${r.cpuMs.toFixed(2)} ms CPU (${count} matrices, mean adders ${r.adders.toFixed(1)})`,
    );
  }
  // The figure above includes V8's warm-up (the first dozen or so matrices run partly unoptimized code, the
  // more so on a busy machine where the optimizing compiler's thread waits); the same count of further
  // 16×16 matrices, now warm, gives the steady-state throughput.
  const steady = timeSize(16, speedCount, 3016);
  console.log(
    `speed N=16, warm: ${steady.ms.toFixed(2)} ms per matrix, ${steady.cpuMs.toFixed(2)} ms CPU (${speedCount} more matrices)`,
  );

  const quality: Record<
    string,
    { adders: number; depth: number; ms: number; draws: number; reference: { adders: number; depth?: number }; ok: boolean }
  > = {};
  for (const dc of [-1, 2]) {
    for (const n of [4, 8, 16]) {
      const next = prng(42 + n); // the same draws for both dc settings
      let adders = 0;
      let depth = 0;
      let ms = 0;
      for (let k = 0; k < draws; k++) {
        const r = solveCmvm(randomMatrix(n, 8, next), s8(n), { dc });
        adders += r.adders;
        depth += r.depth;
        ms += r.ms;
      }
      const key = `dc${dc} N${n}`;
      const ref = REFERENCE[key]!;
      const a = adders / draws;
      const d = depth / draws;
      const ok = a <= ref.adders && (ref.depth === undefined || d <= ref.depth);
      quality[key] = { adders: round(a), depth: round(d), ms: round(ms / draws), draws, reference: ref, ok };
      console.log(
        `quality dc=${dc} N=${n}: adders ${a.toFixed(2)} (reference ${ref.adders}), depth ${d.toFixed(2)}` +
          `${ref.depth !== undefined ? ` (reference ${ref.depth})` : ''}, ${(ms / draws).toFixed(2)} ms, ${draws} draws ${ok ? 'ok' : 'WORSE'}`,
      );
    }
  }
  const ms16 = speed.N16!.ms;
  console.log(
    JSON.stringify({
      bench: 'cmvm',
      ms_per_16x16: ms16,
      cpu_ms_per_16x16: speed.N16!.cpu_ms,
      warm_ms_per_16x16: round(steady.ms),
      warm_cpu_ms_per_16x16: round(steady.cpuMs),
      target_ms_16x16: 15,
      growth_64_over_16: round(speed.N64!.ms / ms16),
      ratio: round(speed.N64!.ms / ms16),
      calib_ns_per_iter: round(calibNs),
      old_vs_new: compared,
      speed,
      quality,
      quality_ok: Object.values(quality).every((q) => q.ok),
    }),
  );
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
