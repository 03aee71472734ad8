/**
 * Emulator speed on an MLP-shaped program built directly with ProgramBuilder (no tracer needed):
 * 16-64-32-32-5, random 8-bit weights (30% pruned) as signed-digit shift-and-add sums with balanced trees,
 * ReLU + an 8-bit quantizer per activation. Compiled emulator vs the reference interpreter (ratio).
 */
import { ProgramBuilder } from '../src/ir/builder.ts';
import { compileProgram, interpretProgram } from '../src/ir/emulate.ts';
import type { OutputRef, Program } from '../src/ir/types.ts';
import { mulberry32 } from '../src/util/random.ts';

/** canonical signed digits of an integer: [digit ±1, power] */
function csd(n: number): [number, number][] {
  const out: [number, number][] = [];
  let p = 0;
  while (n !== 0) {
    if (n % 2 !== 0) {
      const d = 2 - (((n % 4) + 4) % 4); // ±1
      out.push([d, p]);
      n -= d;
    }
    n /= 2;
    p++;
  }
  return out;
}

/** Σ ±x·2^s with a balanced tree of shifted adds/subs (the first term positive when possible). */
function sumTree(b: ProgramBuilder, terms: [number, number, boolean][]): number {
  if (terms.length === 0) return b.const(0);
  const pos = terms.findIndex((t) => !t[2]);
  if (pos > 0) [terms[0], terms[pos]] = [terms[pos]!, terms[0]!];
  // level items: [wire, shift, negative]
  let level = terms.slice();
  while (level.length > 1) {
    const next: [number, number, boolean][] = [];
    for (let j = 0; j + 1 < level.length; j += 2) {
      const [a, sa, na] = level[j]!;
      const [c, sc, nc] = level[j + 1]!;
      // (−1)^na·a·2^sa ± c·2^sc = (−1)^na·2^sa·(a ± c·2^(sc−sa))
      next.push([b.add(a, c, sc - sa, na !== nc), sa, na]);
    }
    if (level.length % 2) next.push(level[level.length - 1]!);
    level = next;
  }
  const [w, s, n] = level[0]!;
  const c = s === 0 ? w : b.copy(w, s);
  return n ? b.neg(c) : c;
}

export function mlpProgram(sizes = [16, 64, 32, 32, 5], seed = 1, prune = 0.3): Program {
  const rnd = mulberry32(seed);
  const b = new ProgramBuilder();
  b.layer = 'input';
  let x = Array.from({ length: sizes[0]! }, (_, j) => b.input(j, { k: 1, i: 3, f: 4 }, 'TRN', 'SAT'));
  for (let l = 1; l < sizes.length; l++) {
    b.layer = `dense_${l}`;
    const y: number[] = [];
    for (let o = 0; o < sizes[l]!; o++) {
      const terms: [number, number, boolean][] = [];
      x.forEach((w) => {
        if (rnd() < prune) return;
        const q = Math.floor(rnd() * 255) - 127; // 8-bit weight, step 2^-6
        for (const [d, p] of csd(q)) terms.push([w, p - 6, d < 0]);
      });
      let s = sumTree(b, terms);
      s = b.addc(s, (Math.floor(rnd() * 64) - 32) / 16);
      if (l < sizes.length - 1) {
        s = b.relu(s);
        s = b.quant(s, { k: 0, i: 3, f: 5 }, 'RND', 'SAT');
      } else s = b.quant(s, { k: 1, i: 6, f: 6 }, 'TRN', 'WRAP');
      y.push(s);
    }
    x = y;
  }
  const out: OutputRef[] = x.map((w) => ({ wire: w, shift: 0, neg: false }));
  return b.build('mlp', [{ name: 'x', shape: [sizes[0]!] }], [{ name: 'y', shape: [x.length] }], out);
}

function samplesPerS(run: (x: Float64Array, n: number) => Float64Array, x: Float64Array, batch: number, reps = 3): number {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    run(x, batch);
    best = Math.min(best, performance.now() - t);
  }
  return (batch / best) * 1000;
}

export default function main(): void {
  const p = mlpProgram();
  const nIn = p.inputs[0]!.shape[0]!;
  const batch = 1 << 15;
  const rnd = mulberry32(2);
  const x = Float64Array.from({ length: batch * nIn }, () => (rnd() - 0.5) * 20);
  const t0 = performance.now();
  const em = compileProgram(p);
  const compileMs = performance.now() - t0;
  const js = compileProgram(p, { noWasm: true });
  em.run(x, batch); // warm up (lets the engine tier up)
  js.run(x.subarray(0, 2048 * nIn), 2048);
  const emPerS = samplesPerS((a, n) => em.run(a, n), x, batch);
  const jsPerS = samplesPerS((a, n) => js.run(a, n), x.subarray(0, 4096 * nIn), 4096);
  const nRef = 100;
  const refPerS = samplesPerS((a, n) => interpretProgram(p, a, n), x.subarray(0, nRef * nIn), nRef, 1);
  console.log(
    JSON.stringify({
      program: '16-64-32-32-5 MLP, 8-bit weights, 30% pruned, shift-add trees',
      ops: p.ops.length,
      mode: em.mode,
      compile_ms: +compileMs.toFixed(1),
      emulator_samples_per_s: Math.round(emPerS),
      js_float64_samples_per_s: Math.round(jsPerS),
      interpreter_samples_per_s: Math.round(refPerS),
      ratio: +(emPerS / refPerS).toFixed(1),
    }),
  );
}
