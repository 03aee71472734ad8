/**
 * Numbers on the command line, read the same way by every command: plain decimals (`12`, `-1`, `0.5`,
 * `2e-3`, `1E3`), nothing else. `Number()` alone would also take '' and '  ' (as 0), `0x10`, `0b1` and
 * `Infinity`, so a typo could silently become a value.
 */
import { UsageError } from './errors.ts';

/** A decimal number as written on the command line (sign, digits, optional fraction and exponent). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** `-1`, `-.5`, `-1.`, `-2E3`, `-inf`, `-Infinity`, `-nan`: an argument that is a negative number, not an option. */
const NEGATIVE_NUMBER = /^-((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)$/i;

/** The value of a number as written on the command line (a plain decimal, spaces around allowed), else NaN. */
export function decimal(v: string): number {
  const t = v.trim();
  return DECIMAL.test(t) ? Number(t) : NaN;
}

export function isNegativeNumber(arg: string): boolean {
  return NEGATIVE_NUMBER.test(arg);
}

function describeRange(lo: number, hi: number): string {
  if (hi === Infinity) return `>= ${lo}`;
  return `from ${lo} to ${hi}`;
}

/** An integer option `flag` in [lo, hi]; UsageError naming the flag, the value and the range otherwise. */
export function parseIntOption(v: string, flag: string, lo: number, hi = Infinity): number {
  const n = decimal(v);
  if (!Number.isSafeInteger(n) || n < lo || n > hi)
    throw new UsageError(`${flag} must be an integer ${describeRange(lo, hi)}, got ${JSON.stringify(v)}`);
  return n + 0; // never -0
}

/** A commander argument parser for a positive integer flag (`--epochs`, `--batch-size`, …), at most `max`. */
export function positiveInt(flag: string, max = Infinity): (v: string) => number {
  return (v: string): number => {
    const n = decimal(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
    if (n > max) throw new UsageError(`${flag} must be at most ${max}, got "${v}"`);
    return n;
  };
}

/** A comma-separated list of positive integers (`--hidden 64,32`), each read as positiveInt reads one. */
export function positiveIntList(v: string, flag: string): number[] {
  const one = positiveInt(flag);
  try {
    return v.split(',').map(one);
  } catch {
    throw new UsageError(`${flag} must be comma-separated positive integers, got "${v}"`);
  }
}

/** A commander argument parser for a positive finite number flag (`--lr`, `--beta-end`, …), at most `max`. */
export function positiveNumber(flag: string, max = Infinity): (v: string) => number {
  return (v: string): number => {
    const n = decimal(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got "${v}"`);
    if (n > max) throw new UsageError(`${flag} must be at most ${max}, got "${v}"`);
    return n;
  };
}
