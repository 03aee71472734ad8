/**
 * The optional first stage (docs/cmvm.md §1): write W = M1·D where each output row is its parent row in a
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
  /** Identifies the decomposition (two equal keys: the same diffs and paths). */
  key: string;
}

/**
 * The distances between all rows, shared by the trees of every path limit: d = CSD digits of the difference
 * or the sum, whichever has fewer (s = −1: the sum).
 */
/** Above this many rows the distances are recomputed rather than kept (n² entries). */
const MAX_CACHED_ROWS = 2048;

export class RowDistances {
  readonly n: number;
  /** Row i's CSD digit count (its distance from the zero row). */
  readonly weight: Float64Array;
  /** The sign of the last get(). */
  sign: 1 | -1 = 1;
  /** Computed distances and signs (n × n, −1: not yet), or none for very many rows. */
  private readonly d: Int32Array | null;
  private readonly s: Int8Array;
  private readonly rows: number[][];
  private readonly nz: Int32Array[];

  constructor(rows: number[][]) {
    const n = rows.length;
    this.n = n;
    this.rows = rows;
    this.weight = new Float64Array(n);
    this.nz = rows.map((row, i) => {
      const idx: number[] = [];
      let w = 0;
      for (let k = 0; k < row.length; k++) {
        if (row[k] === 0) continue;
        idx.push(k);
        w += csdWeight(row[k]!);
      }
      this.weight[i] = w;
      return Int32Array.from(idx);
    });
    const cache = n <= MAX_CACHED_ROWS;
    this.d = cache ? new Int32Array(n * n).fill(-1) : null;
    this.s = new Int8Array(cache ? n * n : 0);
  }

  /** Distance between rows i and j; `sign` is then the sign of j that gives it. */
  get(i: number, j: number): number {
    const x = i * this.n + j;
    if (this.d && this.d[x]! >= 0) {
      this.sign = this.s[x]! as 1 | -1;
      return this.d[x]!;
    }
    {
      // only entries where the sparser row is nonzero differ from row j's own digits:
      // Σ_k w(a_k ∓ b_k) = W(b) + Σ_{k: a_k ≠ 0} (w(a_k ∓ b_k) − w(b_k))
      const [a, b] = this.nz[i]!.length <= this.nz[j]!.length ? [i, j] : [j, i];
      const ra = this.rows[a]!;
      const rb = this.rows[b]!;
      const wb = this.weight[b]!;
      let dm = wb;
      let dp = wb;
      for (const k of this.nz[a]!) {
        const va = ra[k]!;
        const vb = rb[k]!;
        const w = csdWeight(vb);
        dm += csdWeight(va - vb) - w;
        dp += csdWeight(va + vb) - w;
      }
      const d = dp < dm ? dp : dm;
      this.sign = dp < dm ? -1 : 1;
      if (this.d) {
        this.d[x] = this.d[j * this.n + i] = d;
        this.s[x] = this.s[j * this.n + i] = this.sign;
      }
      return d;
    }
  }
}

/** `rows` must hold safe integers whose sums and differences are safe integers too. */
export function decomposeRows(
  rows: number[][],
  maxHops: number,
  distances: RowDistances = new RowDistances(rows),
): Decomposition {
  const n = rows.length;

  // Prim from the root (index n = the zero row)
  const best = new Float64Array(n);
  const bestSign = new Int8Array(n).fill(1);
  const parent = new Int32Array(n).fill(-1); // −1: root
  const depth = new Int32Array(n);
  const done = new Uint8Array(n);
  best.set(distances.weight);
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
      const d = distances.get(j, k);
      if (d < best[k]!) {
        best[k] = d;
        bestSign[k] = distances.sign;
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
  // the rows' order, parents and signs determine diffs and paths
  const key = order.map((j) => `${j}:${parent[j]}${bestSign[j]! < 0 ? '-' : '+'}`).join(',');
  return { diffs, paths, key };
}
