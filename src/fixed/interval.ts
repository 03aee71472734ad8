/**
 * Exact interval arithmetic on QInterval {min, max, step} (docs/fixed-point.md §6): how the IR knows every wire's type.
 *
 * A QInterval stands for every multiple of `step` in [min, max]; the results here are always sound (they hold
 * every value the operation can produce) and tight at the ends (min and max are attained, given operands that
 * attain theirs). Values are plain doubles, exact as long as |min|, |max| < 2^53·step — i.e. widths up to
 * 53 bits; callers keep wider wires out of these rules.
 *
 * The zero interval {0, 0, step} is a pruned (constant-zero) wire; its step carries no information, so it
 * never makes another operand's step finer. Constant intervals {c, c, s} are normalised to s = the largest
 * power of two dividing c, so `minimalKif` of a constant is its tightest type.
 */
import { doubleToDyadic, kifWidth, quantize, roundToStep } from './quantize.ts';
import type { Kif, OverflowMode, QInterval, RoundMode } from './types.ts';

export { kifWidth };

export function qiIsZero(q: QInterval): boolean {
  return q.min === 0 && q.max === 0;
}

/** The largest power of two dividing a nonzero finite v. */
function powerOfTwoFactor(v: number): number {
  const { e } = doubleToDyadic(v); // v = odd·2^e
  return 2 ** e;
}

/** Build an interval, normalising -0 and constants. */
function mk(min: number, max: number, step: number): QInterval {
  if (min === max) return qiConst(min);
  return { min: min + 0, max: max + 0, step };
}

/** Step of the combination of operands: the finest of them, ignoring zero intervals (0 is on every grid). */
function joinStep(a: QInterval, b: QInterval): number {
  if (qiIsZero(a)) return b.step;
  if (qiIsZero(b)) return a.step;
  return Math.min(a.step, b.step);
}

/** The constant `value` (an exact dyadic); 0 gives {0, 0, 1}. */
export function qiConst(value: number): QInterval {
  if (!Number.isFinite(value)) throw new RangeError(`qiConst: ${value} is not a finite number`);
  if (value === 0) return { min: 0, max: 0, step: 1 };
  return { min: value, max: value, step: powerOfTwoFactor(value) };
}

/** Every value of type `t`; SAT_SYM drops the most negative code. Width <= 0 gives the zero interval. */
export function qiFromKif(t: Kif, overflow: OverflowMode = 'WRAP'): QInterval {
  const step = 2 ** -t.f;
  if (kifWidth(t) === 0) return { min: 0, max: 0, step };
  const max = 2 ** t.i - step;
  const min = t.k === 0 ? 0 : overflow === 'SAT_SYM' ? -max : -(2 ** t.i);
  if (min === max) return { min: 0, max: 0, step }; // e.g. signed 1-bit SAT_SYM: only 0
  return { min: min + 0, max, step };
}

/** Smallest integer e with 2^e >= v (v > 0), exact. */
export function ceilLog2(v: number): number {
  // integers up to 2^32 (most interval bounds): the bit length of v − 1, no floating-point log
  if (v <= 4294967296 && Number.isInteger(v)) return v <= 1 ? 0 : 32 - Math.clz32(v - 1);
  let e = Math.ceil(Math.log2(v));
  while (2 ** e < v) e++;
  while (2 ** (e - 1) >= v) e--;
  return e + 0; // (never −0: Math.ceil of a small negative log is −0)
}

/** The smallest (k, i, f) holding every value of q: f from the step, k = 1 iff min < 0. Zero interval → width 0. */
export function minimalKif(q: QInterval): Kif {
  const f = -Math.log2(q.step) + 0; // + 0: never -0
  if (!Number.isInteger(f)) throw new RangeError(`minimalKif: step ${q.step} is not a power of two`);
  if (qiIsZero(q)) return { k: 0, i: -f, f };
  const k = q.min < 0 ? 1 : 0;
  // need 2^i >= max + step (so max <= 2^i − step) and, if signed, 2^i >= −min
  const need = Math.max(q.max + q.step, -q.min);
  return { k, i: ceilLog2(need), f };
}

/** Width in bits of the smallest type holding q. */
export function qiWidth(q: QInterval): number {
  return kifWidth(minimalKif(q));
}

export function qiNeg(a: QInterval): QInterval {
  return mk(-a.max, -a.min, a.step);
}

/** a · 2^s */
export function qiShift(a: QInterval, s: number): QInterval {
  const p = 2 ** s;
  return mk(a.min * p, a.max * p, a.step * p);
}

export function qiAdd(a: QInterval, b: QInterval): QInterval {
  return mk(a.min + b.min, a.max + b.max, joinStep(a, b));
}

export function qiSub(a: QInterval, b: QInterval): QInterval {
  return qiAdd(a, qiNeg(b));
}

/** a ± b·2^shift: the IR's add op. */
export function qiAddShifted(a: QInterval, b: QInterval, shift: number, sub: boolean): QInterval {
  const bs = qiShift(b, shift);
  return sub ? qiSub(a, bs) : qiAdd(a, bs);
}

export function qiMul(a: QInterval, b: QInterval): QInterval {
  if (qiIsZero(a) || qiIsZero(b)) return { min: 0, max: 0, step: a.step * b.step };
  const p = [a.min * b.min, a.min * b.max, a.max * b.min, a.max * b.max];
  return mk(Math.min(...p), Math.max(...p), a.step * b.step);
}

export function qiRelu(a: QInterval): QInterval {
  return mk(Math.max(a.min, 0), Math.max(a.max, 0), a.step);
}

export function qiMin(a: QInterval, b: QInterval): QInterval {
  return mk(Math.min(a.min, b.min), Math.min(a.max, b.max), joinStep(a, b));
}

export function qiMax(a: QInterval, b: QInterval): QInterval {
  return mk(Math.max(a.min, b.min), Math.max(a.max, b.max), joinStep(a, b));
}

/** The smallest interval holding both (e.g. a multiplexer's output). */
export function qiUnion(a: QInterval, b: QInterval): QInterval {
  return mk(Math.min(a.min, b.min), Math.max(a.max, b.max), joinStep(a, b));
}

/**
 * The exact interval of quantize(x, t, round, overflow) for x in a. Rounding is monotone, so when no overflow
 * can happen the ends are the rounded ends of a; a grid at least as coarse as the type's is left unchanged.
 * SAT clips monotonically too. WRAP that may overflow gives the type's whole range.
 */
export function qiQuantize(a: QInterval, t: Kif, round: RoundMode = 'TRN', overflow: OverflowMode = 'WRAP'): QInterval {
  const range = qiFromKif(t, overflow);
  if (qiIsZero(range) || qiIsZero(a)) return { min: 0, max: 0, step: range.step };
  const fits = a.min >= range.min && a.max <= range.max;
  if (fits && a.step >= range.step) return { ...a };
  if (overflow === 'WRAP') {
    const lo = roundToStep(a.min, t.f, round);
    const hi = roundToStep(a.max, t.f, round);
    if (lo < range.min || hi > range.max) return range;
    return mk(lo, hi, range.step);
  }
  return mk(quantize(a.min, t, round, overflow), quantize(a.max, t, round, overflow), range.step);
}

/** Whether x is one of q's values (a multiple of step within [min, max]). */
export function qiContains(q: QInterval, x: number): boolean {
  if (qiIsZero(q)) return x === 0;
  return x >= q.min && x <= q.max && x % q.step === 0;
}

/** Same set of values (constant intervals, e.g. two zero intervals, are equal whatever their steps). */
export function qiEquals(a: QInterval, b: QInterval): boolean {
  if (a.min === a.max || b.min === b.max) return a.min === b.min && a.max === b.max; // constants (incl. zero)
  return a.min === b.min && a.max === b.max && a.step === b.step;
}
