/**
 * Cost and latency of one shift-adder as the CMVM optimizer counts them: the IR cost model's (src/ir/cost.ts),
 * so `solveCmvm`'s reported cost equals what `analyzeProgram` says of the emitted program.
 */
import type { QInterval } from '../fixed/types.ts';
import { opCost } from '../ir/cost.ts';

/** Latency of one adder in adder levels (the IR model's delay of an add with two live operands). */
export const ADDER_DELAY = 1;

/** Cost in adder bits of r = a ± b·2^shift. */
export function adderCost(a: QInterval, b: QInterval, shift: number, sub: boolean, r: QInterval): number {
  return opCost({ kind: 'add', a: 0, b: 1, shift, sub, qint: r }, [a, b]);
}
