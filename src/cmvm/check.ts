/**
 * An independent exactness check for CMVM programs: evaluates the adder graph on concrete inputs in float64
 * (exact while every wire fits 53 bits, which the caller's intervals guarantee) and compares with W·x.
 * Used by tests and by `hgq cmvm --verify`; the IR emulator is the general-purpose runner.
 */
import type { Program } from '../ir/types.ts';

/** Values of every wire for input vector x; throws if a wire leaves its declared interval. */
export function evalCmvmProgram(p: Program, x: number[]): number[] {
  const v = new Float64Array(p.ops.length);
  p.ops.forEach((op, i) => {
    let r: number;
    if (op.kind === 'input') r = x[op.index]!;
    else if (op.kind === 'add') r = op.sub ? v[op.a]! - v[op.b]! * 2 ** op.shift : v[op.a]! + v[op.b]! * 2 ** op.shift;
    else if (op.kind === 'neg') r = -v[op.a]!;
    else if (op.kind === 'copy') r = v[op.a]! * 2 ** op.shift;
    else throw new Error(`evalCmvmProgram: unexpected op kind ${op.kind}`);
    const q = op.qint;
    if (!(r >= q.min && r <= q.max) || (q.min !== q.max && r % q.step !== 0))
      throw new Error(`wire ${i} = ${r} outside its interval [${q.min}, ${q.max}] step ${q.step}`);
    v[i] = r;
  });
  return p.out.map((o) => (o.wire < 0 ? 0 : (o.neg ? -1 : 1) * v[o.wire]! * 2 ** o.shift) + 0);
}

/** W·x in float64 (exact for the small dyadic values the tests use). */
export function matVec(W: number[][], x: number[]): number[] {
  return W.map((row) => row.reduce((s, w, c) => s + w * x[c]!, 0) + 0);
}
