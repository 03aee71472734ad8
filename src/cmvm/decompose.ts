/**
 * The optional first stage (DESIGN.md §6): write W = M1·D where each output row is its parent row in a
 * spanning tree of rows (± sign) plus a difference row. The tree is a minimum spanning tree (Prim) over the
 * rows and a virtual zero row (the root); distance = CSD digits of the difference (or sum) of two rows.
 * Difference rows are usually sparser than the rows themselves; each output is then the signed sum of the
 * difference rows along its path to the root. `maxHops` bounds that path length (1 = no decomposition).
 */
import { csdWeight } from './csd.ts';

export interface Decomposition {
  /** Difference rows, in the same (integer-scaled) units as the input rows. */
  diffs: number[][];
  /** For each output row: the difference rows whose signed sum gives it. */
  paths: Array<Array<{ diff: number; sign: 1 | -1 }>>;
}

/** `rows` must hold safe integers whose sums and differences are safe integers too. */
export function decomposeRows(rows: number[][], maxHops: number): Decomposition {
  const n = rows.length;
  const nIn = n > 0 ? rows[0]!.length : 0;
  // distance between rows i and j (and which sign of j makes it): computed lazily, rows are few
  const dist = (i: number, j: number): { d: number; s: 1 | -1 } => {
    const ri = rows[i]!;
    const rj = rows[j]!;
    let dm = 0;
    let dp = 0;
    for (let k = 0; k < nIn; k++) {
      dm += csdWeight(ri[k]! - rj[k]!);
      dp += csdWeight(ri[k]! + rj[k]!);
    }
    return dp < dm ? { d: dp, s: -1 } : { d: dm, s: 1 };
  };

  // Prim from the root (index n = the zero row)
  const best = new Float64Array(n);
  const bestSign = new Int8Array(n).fill(1);
  const parent = new Int32Array(n).fill(-1); // −1: root
  const depth = new Int32Array(n);
  const done = new Uint8Array(n);
  for (let j = 0; j < n; j++) {
    let w = 0;
    for (const v of rows[j]!) w += csdWeight(v);
    best[j] = w;
  }
  const order: number[] = [];
  for (let step = 0; step < n; step++) {
    let j = -1;
    for (let k = 0; k < n; k++) if (!done[k] && (j < 0 || best[k]! < best[j]!)) j = k;
    done[j] = 1;
    order.push(j);
    depth[j] = parent[j]! < 0 ? 1 : depth[parent[j]!]! + 1;
    if (depth[j]! >= maxHops) continue;
    for (let k = 0; k < n; k++) {
      if (done[k]) continue;
      const { d, s } = dist(j, k);
      if (d < best[k]!) {
        best[k] = d;
        bestSign[k] = s;
        parent[k] = j;
      }
    }
  }

  const diffs: number[][] = [];
  const paths: Decomposition['paths'] = new Array(n);
  for (const j of order) {
    const p = parent[j]!;
    const s = bestSign[j]! as 1 | -1;
    const diff = p < 0 ? rows[j]!.slice() : rows[j]!.map((v, k) => v - s * rows[p]![k]!);
    const path = p < 0 ? [] : paths[p]!.map((e) => ({ diff: e.diff, sign: (e.sign * s) as 1 | -1 }));
    if (diff.some((v) => v !== 0)) {
      path.push({ diff: diffs.length, sign: 1 });
      diffs.push(diff);
    }
    paths[j] = path;
  }
  return { diffs, paths };
}
