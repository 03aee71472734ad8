/**
 * Speed of the exact quantizer: float64 fast path (quantizeArray) against the BigInt reference (quantizeCode),
 * one million values, RND/SAT and RND/WRAP to fixed<12,4>. Prints one JSON line (ratio = float / BigInt).
 */
import { quantizeArray, quantizeCode } from '../src/fixed/quantize.ts';
import type { Kif, OverflowMode } from '../src/fixed/types.ts';

function rate(fn: () => number, n: number): number {
  fn(); // warm up
  const t0 = performance.now();
  const reps = fn();
  return (n * reps) / ((performance.now() - t0) / 1000);
}

export default function main(): void {
  const n = 1_000_000;
  let s = 1;
  const xs = Float64Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31 - 0.5) * 40;
  });
  const t: Kif = { k: 1, i: 3, f: 8 };
  const out = new Float64Array(n);
  const res: Record<string, number> = {};
  for (const o of ['SAT', 'WRAP'] as OverflowMode[]) {
    res[`float_${o}_per_s`] = Math.round(
      rate(() => {
        quantizeArray(xs, t, 'RND', o, out);
        return 1;
      }, n),
    );
    const m = 100_000;
    res[`bigint_${o}_per_s`] = Math.round(
      rate(() => {
        for (let j = 0; j < m; j++) quantizeCode(xs[j]!, t, 'RND', o);
        return 1;
      }, m),
    );
  }
  const ratio = (res.float_SAT_per_s! + res.float_WRAP_per_s!) / (res.bigint_SAT_per_s! + res.bigint_WRAP_per_s!);
  console.log(JSON.stringify({ ...res, ratio: +ratio.toFixed(1) }));
}
