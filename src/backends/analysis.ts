/**
 * The per-wire latency and cost the backends need, taken from the IR's cost/latency model.
 * Adapter: until src/ir exports `analyzeProgram`, a stand-in (adder depth: 1 per add/sub/neg/addc/rounding
 * quant/min/max/relu/mux, 2 per multiply, 1 per table; cost = adder widths) keeps pipelining usable.
 */
import { qiWidth } from '../fixed/index.ts';
import { operandsOf } from '../ir/interval.ts';
import type { Program } from '../ir/types.ts';

export interface ProgramAnalysis {
  latency: Float64Array;
  totalCost: number;
  /** largest latency of any output wire */
  depth: number;
}

export function analyze(p: Program): ProgramAnalysis {
  const n = p.ops.length;
  const latency = new Float64Array(n);
  let cost = 0;
  for (let w = 0; w < n; w++) {
    const op = p.ops[w]!;
    let l = 0;
    for (const a of operandsOf(op)) l = Math.max(l, latency[a]!);
    const q = op.qint;
    const width = q.min === q.max ? 0 : qiWidth(q);
    let step = 0;
    switch (op.kind) {
      case 'add':
      case 'neg':
      case 'addc':
      case 'min':
      case 'max':
        step = 1;
        cost += width;
        break;
      case 'quant':
      case 'relu':
      case 'mux':
      case 'lut':
        step = 1;
        cost += width;
        break;
      case 'mul':
        step = 2;
        cost += width * 2;
        break;
      default:
        step = 0;
    }
    latency[w] = width === 0 ? 0 : l + step;
  }
  let depth = 0;
  for (const o of p.out) if (o.wire >= 0) depth = Math.max(depth, latency[o.wire]!);
  return { latency, totalCost: cost, depth };
}
