/**
 * An independent exactness check for CMVM programs: evaluates the adder graph on concrete inputs in float64
 * (exact while every wire fits 53 bits, which the caller's intervals guarantee) and compares with W·x.
 * Used by tests and by `hgq cmvm --verify`; the IR emulator is the general-purpose runner.
 */
import { doubleToDyadic, kifWidth } from '../fixed/quantize.ts';
import type { Kif } from '../fixed/types.ts';
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

/** Bits of the smallest type holding every integer in [lo, hi] (0 for the constant 0). */
function intervalBits(lo: bigint, hi: bigint): number {
  if (lo === 0n && hi === 0n) return 0;
  const bitLength = (v: bigint): number => (v <= 0n ? 0 : v.toString(2).length);
  if (lo >= 0n) return bitLength(hi);
  return 1 + Math.max(bitLength(hi), bitLength(-lo - 1n));
}

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer); // little-endian: U32[0] holds the low mantissa bits

/** e with w = odd·2^e (w finite and nonzero), without BigInt (doubleToDyadic's e). */
export function lowestBitExponent(w: number): number {
  F64[0] = w;
  const lo = U32[0]!;
  const hi = U32[1]!;
  const bexp = (hi >>> 20) & 0x7ff;
  const base = (bexp === 0 ? 1 : bexp) - 1075; // exponent of the mantissa's last bit
  if (lo !== 0) return base + 31 - Math.clz32(lo & -lo);
  const mhi = (hi & 0xfffff) | (bexp === 0 ? 0 : 0x100000);
  return base + 63 - Math.clz32(mhi & -mhi);
}

/** Bits of the smallest type holding every value of row·x for x of type t (each element); exact (BigInt). */
export function rowOutputBits(row: number[], t: Kif): number {
  if (kifWidth(t) === 0) return 0;
  const top = 1n << BigInt(t.i + t.f); // codes of t: [xlo, xhi] at step 2^-f
  const [xlo, xhi] = t.k === 1 ? [-top, top - 1n] : [0n, top - 1n];
  const terms = row.filter((w) => w !== 0).map((w) => doubleToDyadic(w)); // odd m: w·x has step 2^(e−f)
  if (terms.length === 0) return 0;
  const E = Math.min(...terms.map((d) => d.e));
  let lo = 0n;
  let hi = 0n;
  for (const { m, e } of terms) {
    const c = m << BigInt(e - E);
    lo += c > 0n ? c * xlo : c * xhi;
    hi += c > 0n ? c * xhi : c * xlo;
  }
  return intervalBits(lo, hi);
}

/**
 * The first row of W whose outputs W·x (x of type t) need more than `limit` bits, with their width, or null.
 * The adder graph's output wires are at least that wide, whatever the optimizer does. A float estimate
 * (an upper bound up to rounding, with a bit of margin) clears most rows; the rest are measured exactly.
 */
export function rowWiderThan(W: number[][], t: Kif, limit: number): { row: number; bits: number } | null {
  if (kifWidth(t) === 0) return null;
  for (let r = 0; r < W.length; r++) {
    const row = W[r]!;
    let E = Infinity;
    for (const w of row) if (w !== 0) E = Math.min(E, lowestBitExponent(w));
    if (E === Infinity) continue;
    let sum = 0; // Σ|w|/2^E: output codes are below sum·2^(i+f) in magnitude
    for (const w of row) sum += Math.abs(w) * 2 ** -E;
    const estimate = 2 + Math.ceil(Math.log2(sum)) + t.i + t.f + 1;
    if (estimate <= limit) continue;
    const bits = rowOutputBits(row, t);
    if (bits > limit) return { row: r, bits };
  }
  return null;
}
