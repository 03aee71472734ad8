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
 * Env: CMVM_DRAWS (default 100), CMVM_SPEED_COUNT (16×16 matrices timed, default 40).
 * Last line: one JSON object.
 */
import { prng, randomMatrix } from '../src/cmvm/random.ts';
import { solveCmvm } from '../src/cmvm/solve.ts';

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

export default function main(): void {
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
    console.log(`speed N=${n}: ${r.ms.toFixed(2)} ms per matrix, ${r.cpuMs.toFixed(2)} ms CPU (${count} matrices, mean adders ${r.adders.toFixed(1)})`);
  }
  // The figure above includes V8's warm-up (the first dozen or so matrices run partly unoptimized code, the
  // more so on a busy machine where the optimizing compiler's thread waits); the same count of further
  // 16×16 matrices, now warm, gives the steady-state throughput.
  const steady = timeSize(16, speedCount, 3016);
  console.log(`speed N=16, warm: ${steady.ms.toFixed(2)} ms per matrix, ${steady.cpuMs.toFixed(2)} ms CPU (${speedCount} more matrices)`);

  const quality: Record<string, { adders: number; depth: number; ms: number; draws: number; reference: { adders: number; depth?: number }; ok: boolean }> = {};
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
      speed,
      quality,
      quality_ok: Object.values(quality).every((q) => q.ok),
    }),
  );
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
