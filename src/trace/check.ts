/**
 * Emulator vs model on random inputs (for `hgq trace --validate N` and `hgq convert <model> --validate N`).
 * Each input element is drawn from the range of its input port type, widened 4× on every third sample so
 * saturation and wrap-around are exercised; elements the program never reads get any value.
 */
import * as tf from '@tensorflow/tfjs';
import { qiFromKif, qiWidth } from '../fixed/interval.ts';
import { compileProgram } from '../ir/emulate.ts';
import type { Program } from '../ir/types.ts';
import { mulberry32 } from '../util/random.ts';

export interface ModelCheck {
  samples: number;
  mismatches: number;
  /** widest wire of the program in bits; above 24 the model's own float32 inference may round (see below) */
  widestBits: number;
  /** first mismatching sample, output element and the two values */
  first?: { sample: number; element: number; model: number; emulator: number };
}

/** Float32 has a 24-bit significand: tfjs inference is exact only while every value and partial sum fits it. */
export const FLOAT32_EXACT_BITS = 24;

/** Widest wire of a program in bits. */
export function widestWire(p: Program): number {
  return p.ops.reduce((m, o) => Math.max(m, qiWidth(o.qint)), 0);
}

/** Samples where any output element of the model differs from the program's. */
export function checkAgainstModel(model: tf.LayersModel, p: Program, n: number, seed = 1): ModelCheck {
  const nIn = p.inputs.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const lo = new Float64Array(nIn).fill(-4);
  const hi = new Float64Array(nIn).fill(4);
  for (const op of p.ops) {
    if (op.kind !== 'input') continue;
    const q = qiFromKif(op.type, op.overflow);
    lo[op.index] = q.min - q.step;
    hi[op.index] = q.max + q.step;
  }
  const rnd = mulberry32(seed);
  const flat = new Float64Array(n * nIn);
  for (let s = 0; s < n; s++) {
    const wide = s % 3 === 2 ? 4 : 1;
    for (let e = 0; e < nIn; e++) {
      const mid = (lo[e]! + hi[e]!) / 2;
      const half = ((hi[e]! - lo[e]!) / 2) * wide;
      flat[s * nIn + e] = Math.fround(mid + (rnd() * 2 - 1) * half);
    }
  }
  const z = compileProgram(p).run(flat, n);
  // the model takes one tensor per input: split each sample's flat row
  const ts: tf.Tensor[] = [];
  let off = 0;
  for (const spec of p.inputs) {
    const per = spec.shape.reduce((x, y) => x * y, 1);
    const a = new Float32Array(n * per);
    for (let s = 0; s < n; s++) for (let e = 0; e < per; e++) a[s * per + e] = flat[s * nIn + off + e]!;
    ts.push(tf.tensor(a, [n, ...spec.shape]));
    off += per;
  }
  const pred = model.predict(ts.length === 1 ? ts[0]! : ts, { batchSize: Math.min(n, 8192) });
  const outs = Array.isArray(pred) ? pred : [pred];
  const ys = outs.map((t) => t.dataSync());
  tf.dispose([...ts, ...outs]);
  const per = ys.map((y) => y.length / n);
  const nOut = per.reduce((a, b) => a + b, 0);
  let mismatches = 0;
  let first: ModelCheck['first'];
  for (let s = 0; s < n; s++) {
    let bad = false;
    let o = 0;
    ys.forEach((y, j) => {
      for (let e = 0; e < per[j]!; e++, o++) {
        const a = y[s * per[j]! + e]!;
        const b = z[s * nOut + o]!;
        if (a !== b) {
          if (!first) first = { sample: s, element: o, model: a, emulator: b };
          bad = true;
        }
      }
    });
    if (bad) mismatches++;
  }
  return { samples: n, mismatches, widestBits: widestWire(p), ...(first ? { first } : {}) };
}
