/**
 * What the backends need from the IR's cost/latency model (src/ir/cost.ts, the one place it is defined):
 * per-wire latency for pipelining, and the cost of the ops that reach the hardware (live, non-constant:
 * the same set the netlist lowering keeps) as the LUT estimate.
 */
import { operandsOf } from '../ir/interval.ts';
import { analyzeProgram } from '../ir/cost.ts';
import type { Program } from '../ir/types.ts';

export interface BackendAnalysis {
  latency: Float64Array;
  /** summed cost of live, non-constant ops (adder bits ≈ LUTs) */
  totalCost: number;
  /** largest latency of any output wire */
  depth: number;
}

/** Wires some output depends on; constant wires are leaves (they become literals). */
export function liveWires(p: Program): Uint8Array {
  const live = new Uint8Array(p.ops.length);
  for (const o of p.out) if (o.wire >= 0) live[o.wire] = 1;
  for (let n = p.ops.length - 1; n >= 0; n--) {
    if (!live[n] || p.ops[n]!.qint.min === p.ops[n]!.qint.max) continue;
    for (const a of operandsOf(p.ops[n]!)) live[a] = 1;
  }
  return live;
}

export function analyze(p: Program): BackendAnalysis {
  const a = analyzeProgram(p);
  const live = liveWires(p);
  let cost = 0;
  for (let n = 0; n < p.ops.length; n++) if (live[n]) cost += a.cost[n]!;
  return { latency: a.latency, totalCost: cost, depth: a.depth };
}
