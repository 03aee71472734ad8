/**
 * Canonical signed digits (the non-adjacent form, NAF) of exact dyadic numbers: the representation with the
 * fewest nonzero digits, so each output starts from the fewest adder terms (docs/cmvm.md §1).
 */

/** A dyadic number as odd·2^exp (0 → {odd: 0, exp: 0}). Throws on non-finite input. */
export function toOddExp(v: number): { odd: number; exp: number } {
  if (!Number.isFinite(v)) throw new RangeError(`not a finite number: ${v}`);
  if (v === 0) return { odd: 0, exp: 0 };
  let m = v;
  let e = 0;
  // scale into the integers (every finite double is m·2^e with |m| < 2^53)
  while (!Number.isInteger(m)) {
    m *= 2;
    e--;
  }
  while (m % 2 === 0) {
    m /= 2;
    e++;
  }
  return { odd: m, exp: e };
}

/**
 * NAF digits of v: calls `emit(position, sign)` for every nonzero digit, lowest position first, where
 * v = Σ sign·2^position. Works for every finite double (all are dyadic).
 */
export function forEachCsdDigit(v: number, emit: (pos: number, sign: 1 | -1) => void): void {
  if (v === 0) return;
  const a = Math.abs(v);
  if (a < 0x40000000 && Number.isInteger(a)) {
    // small integers: the NAF's +1 digits are the set bits of (a + h) & c, its −1 digits those of h & c,
    // with h = a >> 1 and c = h XOR (a + h) (see csdWeight)
    const h = a >>> 1;
    const c = h ^ (a + h);
    const neg = v < 0;
    for (let bits = c, p = 0; bits !== 0; bits >>>= 1, p++) {
      if ((bits & 1) === 0) continue;
      const plus = ((a + h) >>> p) & 1;
      emit(p, (plus === 1) !== neg ? 1 : -1);
    }
    return;
  }
  const { odd, exp } = toOddExp(v);
  let x = odd;
  let p = exp;
  while (x !== 0) {
    if (x % 2 !== 0) {
      // x ≡ 1 (mod 4) → digit +1, x ≡ 3 (mod 4) → digit −1: leaves x − d divisible by 4 (non-adjacency)
      const r = ((x % 4) + 4) % 4;
      const d = r === 1 ? 1 : -1;
      emit(p, d);
      x -= d;
    }
    x /= 2;
    p++;
  }
}

/** The CSD digits of v as [position, sign] pairs, lowest first. */
export function csdDigits(v: number): Array<[number, 1 | -1]> {
  const out: Array<[number, 1 | -1]> = [];
  forEachCsdDigit(v, (p, s) => out.push([p, s]));
  return out;
}

function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Number of nonzero CSD digits of an integer (exact for safe integers). */
export function csdWeight(v: number): number {
  let x = Math.abs(v);
  if (x < 0x40000000) {
    // NAF nonzeros are the set bits of (x>>1) XOR (x + (x>>1)); x + x/2 < 2^31 here
    const h = x >>> 1;
    return popcount32((h ^ (x + h)) >>> 0);
  }
  let n = 0;
  while (x !== 0) {
    if (x % 2 !== 0) {
      n++;
      x -= x % 4 === 1 ? 1 : -1;
    }
    x /= 2;
  }
  return n;
}
