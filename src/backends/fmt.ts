/**
 * Bit-level formats of wires and bus fields. A wire of format {w, lsb, signed} holds value / 2^lsb as a
 * w-bit two's-complement (signed) or unsigned integer. The format of a wire is always minimalKif of its
 * QInterval (docs/rtl.md §1: every wire at its exact width); w = 0 means the constant 0.
 */
import { doubleToDyadic, kifWidth, minimalKif } from '../fixed/index.ts';
import type { Kif, QInterval } from '../fixed/types.ts';

export interface Fmt {
  /** width in bits (0 = constant zero) */
  w: number;
  /** exponent of the least significant bit: step = 2^lsb */
  lsb: number;
  signed: boolean;
}

export function fmtFromKif(t: Kif): Fmt {
  return { w: kifWidth(t), lsb: -t.f + 0, signed: t.k === 1 };
}

export function fmtOf(q: QInterval): Fmt {
  return fmtFromKif(minimalKif(q));
}

/** An exact dyadic constant m·2^e (m odd, or 0). */
export interface Dyadic {
  m: bigint;
  e: number;
}

export function dyadic(x: number): Dyadic {
  return doubleToDyadic(x);
}

/** Integer code of the dyadic at lsb exponent L: m·2^(e−L); throws when it is not an integer. */
export function dyadicCode(d: Dyadic, L: number): bigint {
  if (d.m === 0n) return 0n;
  const s = d.e - L;
  if (s >= 0) return d.m << BigInt(s);
  const c = d.m >> BigInt(-s);
  if (c << BigInt(-s) !== d.m) throw new Error(`internal: constant ${d.m}·2^${d.e} is not a multiple of 2^${L}`);
  return c;
}

/** The w-bit pattern (0 ≤ p < 2^w) of an integer code. */
export function pattern(code: bigint, w: number): bigint {
  return w <= 0 ? 0n : BigInt.asUintN(w, code);
}

/** The integer code of a w-bit pattern in a format. */
export function codeOfPattern(p: bigint, f: Fmt): bigint {
  return f.w <= 0 ? 0n : f.signed ? BigInt.asIntN(f.w, p) : BigInt.asUintN(f.w, p);
}

/** Smallest and largest code of a format. */
export function fmtRange(f: Fmt): [bigint, bigint] {
  if (f.w <= 0) return [0n, 0n];
  return f.signed ? [-(1n << BigInt(f.w - 1)), (1n << BigInt(f.w - 1)) - 1n] : [0n, (1n << BigInt(f.w)) - 1n];
}
