/**
 * Exact fixed-point quantization (docs/fixed-point.md §2–5): the one place where rounding and overflow are defined.
 *
 * Two paths with identical results:
 *  - a BigInt reference on exact rationals (`quantizeCode`), any width, also decimal strings parsed exactly;
 *  - a float64 fast path (`quantize`) used when the result width k+i+f <= 53, where y = x·2^f is an
 *    exact power-of-two scaling and every intermediate is an exactly representable integer.
 *
 * Agreement with Xilinx ap_fixed (UG1399, "Quantization Modes" / "Overflow Modes"; its worked examples are
 * known-answer tests in test/fixed-quantize.test.ts):
 *  AP_TRN = TRN (floor), AP_TRN_ZERO = TRN_ZERO, AP_RND = RND (ties toward +inf), AP_RND_ZERO (ties toward 0),
 *  AP_RND_MIN_INF (ties toward -inf), AP_RND_INF (ties away from 0), AP_RND_CONV (ties to even),
 *  AP_WRAP = WRAP (N = 0 only), AP_SAT = SAT, AP_SAT_SYM = SAT_SYM. Differences:
 *  - ap_fixed quantizes first and then saturates; we clip first and then round. The values are identical
 *    (rounding is monotone and fixes the range ends, which lie on the grid), only training gradients differ.
 *  - ap_fixed needs W >= 1; here a width W <= 0 is the constant 0.
 *  - AP_SAT_ZERO, AP_WRAP_SM and AP_WRAP with N > 0 are not supported.
 *  - UG1399 words AP_RND_INF via "the least significant bit"; its examples (±1.25 → ±1.5) are ties away
 *    from zero, which is what we implement.
 */
import { OVERFLOW_MODES, ROUND_MODES, type Kif, type OverflowMode, type RoundMode } from './types.ts';

// ---------------------------------------------------------------------------------------------------------
// Exact rationals and doubles

/** x = n / d exactly, d > 0. */
export interface Rational {
  n: bigint;
  d: bigint;
}

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);

/** A finite double as m·2^e exactly (m an integer, odd unless 0). */
export function doubleToDyadic(x: number): { m: bigint; e: number } {
  if (!Number.isFinite(x)) throw new RangeError(`doubleToDyadic: ${x} is not finite`);
  if (x === 0) return { m: 0n, e: 0 };
  F64[0] = x;
  const bits = U64[0]!;
  const neg = bits >> 63n === 1n;
  const bexp = Number((bits >> 52n) & 0x7ffn);
  let m = bits & 0xfffffffffffffn;
  let e: number;
  if (bexp === 0)
    e = -1074; // subnormal
  else {
    m |= 1n << 52n;
    e = bexp - 1075;
  }
  while ((m & 1n) === 0n) {
    m >>= 1n;
    e++;
  }
  return { m: neg ? -m : m, e };
}

function rationalFromDouble(x: number): Rational {
  const { m, e } = doubleToDyadic(x);
  return e >= 0 ? { n: m << BigInt(e), d: 1n } : { n: m, d: 1n << BigInt(-e) };
}

const DECIMAL = /^([+-]?)(\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?$/;
const INFINITY = /^([+-]?)(inf|infinity)$/i;

/** Decimal exponents beyond this are not expanded into a BigInt power of ten (10^100000 has 332k bits). */
export const MAX_DECIMAL_EXPONENT = 100000;

/** A decimal ±digits·10^scale as written; `scale` may be ±Infinity for exponents too long for a double. */
export interface DecimalParts {
  negative: boolean;
  digits: bigint;
  /** number of decimal digits in `digits` (an upper bound on log10 of it) */
  length: number;
  scale: number;
}

/** The parts of a decimal string, ±Infinity for "inf"/"-Infinity", null for anything else. */
export function parseDecimalParts(s: string): DecimalParts | number | null {
  const t = s.trim();
  const inf = INFINITY.exec(t);
  if (inf) return inf[1] === '-' ? -Infinity : Infinity;
  const m = DECIMAL.exec(t);
  if (!m) return null;
  const [int, frac = ''] = m[2]!.split('.') as [string, string?];
  const exp = m[3] === undefined ? 0 : Number(m[3]); // a huge exponent becomes ±Infinity: still its sign
  const text = ((int || '0') + frac).replace(/^0+(?=\d)/, '');
  return { negative: m[1] === '-', digits: BigInt(text), length: text.length, scale: exp - frac.length };
}

/** The exact rational of parts whose exponent is at most `maxExponent` in size, else null. */
export function decimalToRational(p: DecimalParts, maxExponent = MAX_DECIMAL_EXPONENT): Rational | null {
  const n = p.negative ? -p.digits : p.digits;
  if (n === 0n) return { n: 0n, d: 1n };
  if (!(Math.abs(p.scale) <= maxExponent)) return null;
  return p.scale >= 0 ? { n: n * 10n ** BigInt(p.scale), d: 1n } : { n, d: 10n ** BigInt(-p.scale) };
}

/**
 * Parse a decimal number exactly: "0.1" is 1/10, not the double nearest to it. Also "inf"/"-Infinity".
 * Returns null for anything else, and for exponents beyond ±MAX_DECIMAL_EXPONENT (see parseDecimalParts;
 * the caller words the error).
 */
export function parseDecimal(s: string): Rational | number | null {
  const p = parseDecimalParts(s);
  return p === null || typeof p === 'number' ? p : decimalToRational(p);
}

// ---------------------------------------------------------------------------------------------------------
// Shared definitions

export function kifWidth(t: Kif): number {
  return Math.max(0, t.k + t.i + t.f);
}

const ROUND_SET: ReadonlySet<string> = new Set(ROUND_MODES);
const OVERFLOW_SET: ReadonlySet<string> = new Set(OVERFLOW_MODES);

/** Validate a type and modes (cheap; guards callers outside the type checker). */
function check(t: Kif, round: RoundMode, overflow: OverflowMode): void {
  if ((t.k !== 0 && t.k !== 1) || !Number.isInteger(t.i) || !Number.isInteger(t.f))
    throw new RangeError(`invalid fixed-point type (k=${t.k}, i=${t.i}, f=${t.f}): k must be 0 or 1, i and f integers`);
  if (!ROUND_SET.has(round)) throw new RangeError(`unknown rounding mode "${round}"; use one of ${ROUND_MODES.join(', ')}`);
  if (!OVERFLOW_SET.has(overflow))
    throw new RangeError(`unknown overflow mode "${overflow}"; use one of ${OVERFLOW_MODES.join(', ')}`);
}

function floorDiv(n: bigint, d: bigint): bigint {
  const q = n / d; // truncates toward zero
  return n % d !== 0n && n < 0n ? q - 1n : q;
}

/**
 * Round the exact rational n/d (d > 0) to an integer with `round`. The BigInt definition of every mode.
 */
export function roundRational(n: bigint, d: bigint, round: RoundMode): bigint {
  const fl = floorDiv(n, d);
  const r2 = 2n * (n - fl * d); // compare the fractional part with 1/2 as 2r vs d
  if (r2 === 0n) return fl; // already an integer
  const positive = n > 0n;
  switch (round) {
    case 'TRN':
      return fl;
    case 'TRN_ZERO':
      return positive ? fl : fl + 1n;
    default: {
      if (r2 > d) return fl + 1n;
      if (r2 < d) return fl;
      // exact tie
      switch (round) {
        case 'RND':
          return fl + 1n;
        case 'RND_CONV':
          return (fl & 1n) === 0n ? fl : fl + 1n;
        case 'RND_ZERO':
          return positive ? fl : fl + 1n;
        case 'RND_MIN_INF':
          return fl;
        case 'RND_INF':
          return positive ? fl + 1n : fl;
      }
    }
  }
  throw new RangeError(`unknown rounding mode ${String(round)}`);
}

/** Code range [lo, hi] (in units of 2^-f) of a type of width >= 1 under SAT / SAT_SYM. */
function codeRangeBig(t: Kif, overflow: OverflowMode): [bigint, bigint] {
  const top = 1n << BigInt(t.i + t.f); // i+f >= 0 when W >= 1 and k = 1; for k = 0, i+f = W >= 1
  const hi = top - 1n;
  const lo = t.k === 0 ? 0n : overflow === 'SAT_SYM' ? -hi : -top;
  return [lo, hi];
}

/** Low-W-bit wrap of an integer code (two's complement when k = 1). */
function wrapBig(c: bigint, t: Kif): bigint {
  const w = BigInt(t.k + t.i + t.f);
  return t.k === 1 ? BigInt.asIntN(Number(w), c) : BigInt.asUintN(Number(w), c);
}

// ---------------------------------------------------------------------------------------------------------
// BigInt reference path

/**
 * The integer code value·2^f of `x` quantized to `t`: the BigInt reference, exact for any width.
 * `x` may be a number or a decimal string (parsed exactly, "0.1" = 1/10).
 * NaN (or a string that is not a number) throws RangeError; ±Infinity clips under SAT/SAT_SYM and throws under WRAP.
 */
export function quantizeCode(x: number | string, t: Kif, round: RoundMode = 'TRN', overflow: OverflowMode = 'WRAP'): bigint {
  check(t, round, overflow);
  let v: Rational | number;
  if (typeof x === 'string') {
    const p = parseDecimalParts(x);
    if (p === null) throw new RangeError(`"${x}" is not a decimal number (expected e.g. 1.25, -3, 2e-3)`);
    if (typeof p !== 'number' && t.k + t.i + t.f > 0) {
      const extreme = extremeDecimalCode(p, t, round, overflow);
      if (extreme !== null) return extreme;
    }
    // not extreme: the exponent is bounded by the string's length and the type, so expanding it is affordable
    v = typeof p === 'number' ? p : decimalToRational(p, Infinity)!;
  } else {
    if (Number.isNaN(x)) throw new RangeError('cannot quantize NaN');
    v = Number.isFinite(x) ? rationalFromDouble(x) : x;
  }
  if (t.k + t.i + t.f <= 0) return 0n;
  if (typeof v === 'number') {
    // ±Infinity
    if (overflow === 'WRAP') throw new RangeError(`cannot quantize ${v} with WRAP overflow (undefined); use SAT`);
    const [lo, hi] = codeRangeBig(t, overflow);
    return v > 0 ? hi : lo;
  }
  // y = x·2^f as N/D
  let N = v.n;
  let D = v.d;
  if (t.f >= 0) N <<= BigInt(t.f);
  else D <<= BigInt(-t.f);
  if (overflow === 'WRAP') return wrapBig(roundRational(N, D, round), t);
  const [lo, hi] = codeRangeBig(t, overflow);
  if (N >= hi * D) return hi; // clip first; the range ends are integers, so rounding leaves them
  if (N <= lo * D) return lo;
  return roundRational(N, D, round);
}

/**
 * The code of a decimal so far outside type t's range or grid that its power of ten is not worth expanding,
 * decided from its size alone; null otherwise. Assumes width >= 1.
 *  - |x| >= 10^scale with scale >= k + i: at or above every code's magnitude, and x·2^f =
 *    ±digits·5^scale·2^(scale+f) is a multiple of 2^W (scale + f >= W), so SAT clips and WRAP gives 0, exactly.
 *  - 0 < |x·2^f| < 1/4 (10^-scale > digits·2^(f+2)): rounds like ±1/4 (the float path's rule).
 * Decimals that are neither have |scale| <= max(k + i, length + f + 2): bounded by the input and the type.
 */
function extremeDecimalCode(p: DecimalParts, t: Kif, round: RoundMode, overflow: OverflowMode): bigint | null {
  if (p.digits === 0n || Math.abs(p.scale) <= MAX_DECIMAL_EXPONENT) return null;
  if (p.scale > 0 && p.scale >= t.k + t.i) {
    if (overflow === 'WRAP') return 0n;
    const [lo, hi] = codeRangeBig(t, overflow);
    return p.negative ? lo : hi;
  }
  // 10^(-scale) >= 10^(length + f + 2) > digits·2^(f+2) when -scale >= length + max(0, f + 2)
  if (p.scale < 0 && -p.scale >= p.length + Math.max(0, t.f + 2)) {
    const q = roundRational(p.negative ? -1n : 1n, 4n, round);
    if (overflow === 'WRAP') return wrapBig(q, t);
    const [lo, hi] = codeRangeBig(t, overflow);
    return q > hi ? hi : q < lo ? lo : q;
  }
  return null;
}

/** code·2^-f as a number if that is exact, else null. */
export function codeToNumber(code: bigint, f: number): number | null {
  if (code === 0n) return 0;
  let m = code;
  let e = -f;
  while ((m & 1n) === 0n) {
    m >>= 1n;
    e++;
  }
  const a = m < 0n ? -m : m;
  if (a >> 53n !== 0n) return null;
  // m·2^e in up to two exact power-of-two steps (2^e alone may not be a finite double)
  let v = Number(m);
  const e1 = Math.max(-1022, Math.min(1023, e));
  v *= 2 ** e1;
  v *= 2 ** (e - e1);
  if (!Number.isFinite(v) || v === 0) return null;
  const back = doubleToDyadic(v);
  return back.m === m && back.e === e ? v : null;
}

// ---------------------------------------------------------------------------------------------------------
// Float64 fast path

const MIN_NORMAL = 2 ** -1022;

/** 2^e for integer e in [-1074, 1023] by table: V8's `2 ** e` with a variable e is a slow pow() call. */
const POW2 = Float64Array.from({ length: 2098 }, (_, j) => 2 ** (j - 1074));
function pow2(e: number): number {
  return POW2[e + 1074]!;
}

/** Round a float y (exact) to an integer; all comparisons exact because |y| < 2^52 when y is not an integer. */
function roundFloat(y: number, round: RoundMode): number {
  const fl = Math.floor(y);
  if (fl === y) return y;
  switch (round) {
    case 'TRN':
      return fl;
    case 'TRN_ZERO':
      return y > 0 ? fl : fl + 1;
  }
  const h = fl + 0.5; // exact: |fl| < 2^52
  if (y > h) return fl + 1;
  if (y < h) return fl;
  switch (round) {
    case 'RND':
      return fl + 1;
    case 'RND_CONV':
      return fl % 2 === 0 ? fl : fl + 1;
    case 'RND_ZERO':
      return y > 0 ? fl : fl + 1;
    case 'RND_MIN_INF':
      return fl;
    case 'RND_INF':
      return y > 0 ? fl + 1 : fl;
  }
  throw new RangeError(`unknown rounding mode ${String(round)}`);
}

/** Whether `quantize` can take the float path for this type (result width <= 53, exponents in double range). */
function floatPathOk(t: Kif): boolean {
  return t.k + t.i + t.f <= 53 && t.f >= -1000 && t.f <= 1000 && t.i <= 1000;
}

/**
 * `x` quantized to `t` (docs/fixed-point.md §2–3), exact. Float path when k+i+f <= 53; wider types go through the BigInt
 * reference and the result must then be exactly representable as a double, else RangeError — for widths
 * above 53 bits use `quantizeCode`. Never returns -0. NaN throws; ±Infinity clips under SAT, throws under WRAP.
 */
export function quantize(x: number, t: Kif, round: RoundMode = 'TRN', overflow: OverflowMode = 'WRAP'): number {
  if (Number.isNaN(x)) throw new RangeError('cannot quantize NaN');
  check(t, round, overflow);
  const W = t.k + t.i + t.f;
  if (W <= 0) return 0;
  if (floatPathOk(t)) {
    const q = quantizeFloat(x, t, W, round, overflow);
    if (q !== null) return q;
  }
  const code = quantizeCode(x, t, round, overflow);
  const v = codeToNumber(code, t.f);
  if (v === null)
    throw new RangeError(
      `quantize: result ${code}·2^${-t.f} of type (${t.k},${t.i},${t.f}) is not exactly representable as a number; use quantizeCode`,
    );
  return v;
}

/** Float path; null when the BigInt path must decide (x·2^f overflowed under WRAP). Assumes W >= 1. */
function quantizeFloat(x: number, t: Kif, W: number, round: RoundMode, overflow: OverflowMode): number | null {
  let y = x * pow2(t.f);
  // |y| below the normal range may have lost bits; any y in (0, 1/2) rounds like 1/4 (and clips like it).
  if (y !== 0 ? Math.abs(y) < MIN_NORMAL : x !== 0) y = x < 0 ? -0.25 : 0.25;
  let c: number;
  if (overflow === 'WRAP') {
    if (!Number.isFinite(y)) {
      if (!Number.isFinite(x)) throw new RangeError(`cannot quantize ${x} with WRAP overflow (undefined); use SAT`);
      return null;
    }
    c = roundFloat(y, round);
    // keep the low W bits: c − floor(c/M)·M is exact (the result is a multiple of c's ulp below 2^53);
    // not `%`, which V8 runs as a slow fmod call
    const M = pow2(W);
    c -= Math.floor(c / M) * M;
    if (t.k === 1 && c >= M / 2) c -= M;
  } else {
    const hi = pow2(t.i + t.f) - 1; // exact: i+f <= 53
    const lo = t.k === 0 ? 0 : overflow === 'SAT_SYM' ? -hi : -hi - 1;
    c = y >= hi ? hi : y <= lo ? lo : roundFloat(y, round);
  }
  return c * pow2(-t.f) + 0; // exact (|c| <= 2^53, value <= 2^1000); + 0 turns -0 into +0
}

// ---------------------------------------------------------------------------------------------------------
// Arrays

/**
 * Quantize every element; `t` is one type for all or one type per element. Writes into `out` when given
 * (which may be `xs` itself). A NaN element throws a RangeError naming its index.
 */
export function quantizeArray(
  xs: ArrayLike<number>,
  t: Kif | readonly Kif[],
  round: RoundMode = 'TRN',
  overflow: OverflowMode = 'WRAP',
  out?: Float64Array,
): Float64Array {
  const n = xs.length;
  const res = out ?? new Float64Array(n);
  if (res.length < n) throw new RangeError(`quantizeArray: out has length ${res.length} < ${n}`);
  const perElement = Array.isArray(t);
  if (perElement && (t as readonly Kif[]).length !== n)
    throw new RangeError(`quantizeArray: ${(t as readonly Kif[]).length} types for ${n} values`);
  for (let j = 0; j < n; j++) {
    const x = xs[j]!;
    if (Number.isNaN(x)) throw new RangeError(`cannot quantize NaN (element ${j})`);
    res[j] = quantize(x, perElement ? (t as readonly Kif[])[j]! : (t as Kif), round, overflow);
  }
  return res;
}

/**
 * `x` rounded to a multiple of 2^-f with `round`, no overflow handling (what WRAP does before wrapping,
 * and what interval rules need for the ends). Exact; RangeError if the result is not a double.
 */
export function roundToStep(x: number, f: number, round: RoundMode): number {
  if (!Number.isFinite(x)) throw new RangeError(`cannot round ${x}`);
  if (!Number.isInteger(f)) throw new RangeError(`roundToStep: f=${f} is not an integer`);
  if (f >= -1000 && f <= 1000) {
    let y = x * pow2(f);
    if (y !== 0 ? Math.abs(y) < MIN_NORMAL : x !== 0) y = x < 0 ? -0.25 : 0.25;
    if (Number.isFinite(y)) {
      const c = roundFloat(y, round);
      const v = c * pow2(-f) + 0;
      if (Number.isFinite(v)) return v;
    }
  }
  const r = rationalFromDouble(x);
  let N = r.n;
  let D = r.d;
  if (f >= 0) N <<= BigInt(f);
  else D <<= BigInt(-f);
  const v = codeToNumber(roundRational(N, D, round), f);
  if (v === null) throw new RangeError(`roundToStep: ${x} rounded to 2^${-f} is not a finite double`);
  return v;
}
