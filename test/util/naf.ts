/** Nonzero digits of the non-adjacent form of an integer: a reference written independently of src/cmvm/csd.ts. */
export function nafWeight(v: number): number {
  let x = Math.abs(v);
  let n = 0;
  while (x > 0) {
    if (x % 2 === 1) {
      n++;
      x = x % 4 === 1 ? x - 1 : x + 1;
    }
    x /= 2;
  }
  return n;
}
