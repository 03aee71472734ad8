/**
 * Exact decimal printing of dyadic numbers (docs/fixed-point.md §7: numbers that leave the tool carry no float noise).
 * A dyadic m·2^-n has a finite decimal expansion m·5^n / 10^n; we print all of it, never exponent notation.
 */
import { doubleToDyadic } from './quantize.ts';

/** The exact decimal of code·2^-f, e.g. formatCode(-3n, 3) = "-0.375"; integers print without ".0". */
export function formatCode(code: bigint, f: number): string {
  if (!Number.isInteger(f)) throw new RangeError(`formatCode: f=${f} is not an integer`);
  if (f <= 0) return (code << BigInt(-f)).toString();
  // strip factors of two so the expansion has no trailing zeros
  let m = code;
  let n = f;
  while (n > 0 && m !== 0n && (m & 1n) === 0n) {
    m >>= 1n;
    n--;
  }
  if (m === 0n || n === 0) return m.toString();
  const neg = m < 0n;
  const digits = ((neg ? -m : m) * 5n ** BigInt(n)).toString().padStart(n + 1, '0');
  const int = digits.slice(0, digits.length - n);
  const frac = digits.slice(digits.length - n);
  return `${neg ? '-' : ''}${int}.${frac}`;
}

/** The exact decimal expansion of a finite double: 0.1 prints all 55 of its digits, -0 prints "0". */
export function formatDyadic(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`formatDyadic: ${value} is not a finite number`);
  const { m, e } = doubleToDyadic(value);
  return formatCode(m, -e);
}
