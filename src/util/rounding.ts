/**
 * Round half to even (numpy's and TensorFlow's `round`, HGQ2's `round_conv`): how trainable bit-width
 * parameters become integers. `Math.round` rounds halves toward +∞, so an odd result at a tie steps back
 * by one. The result is never −0.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0;
}
