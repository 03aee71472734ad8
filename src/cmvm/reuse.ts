/**
 * Reuse pass on the final sums (docs/cmvm.md §1, step 5). Once no pair of terms repeats, each output adds
 * its remaining terms with its own tree. Some of those sums already exist as wires, built from other
 * operands: a few terms of an output may add up (with signs and shifts) to a wire the extraction made for
 * other outputs, or to a partial sum of an earlier output's tree. Such a subset is replaced by that wire,
 * saving one adder per term dropped beyond the first.
 *
 * Wires are found by their value over the inputs, through two linear hashes modulo primes below 2^26 (so
 * products stay exact in doubles): h(a ± b·2^s) = h(a) ± 2^s·h(b). Every wire is indexed under ±2^s·h for
 * the shifts of a window; a subset's hash is the signed, shifted sum of its terms' hashes, looked up
 * directly. A hit is confirmed on the exact values before it is used.
 */
import type { AdderGraph, Term } from './graph.ts';
import { mulberry32 } from '../util/random.ts';

const P1 = 67108859;
const P2 = 67108837;
/** Shifts ±SHIFTS between a subset's sum and the wire it matches (8-bit weights need about ±10). */
const SHIFTS = 16;
/** Largest |shift| of a term or an adder operand the hashes handle; beyond it a wire is left out. */
const MAX_POS = 96;

/** 2^s mod p for s in [−MAX_POS − SHIFTS, MAX_POS + SHIFTS], at index s + OFF. */
const OFF = MAX_POS + SHIFTS;
function powTable(p: number): Float64Array {
  const t = new Float64Array(2 * OFF + 1);
  const half = (p + 1) / 2; // 2^-1 mod p
  t[OFF] = 1;
  for (let s = 1; s <= OFF; s++) {
    t[OFF + s] = (t[OFF + s - 1]! * 2) % p;
    t[OFF - s] = (t[OFF - s + 1]! * half) % p;
  }
  return t;
}
const POW1 = powTable(P1);
const POW2 = powTable(P2);

/** sign·2^pos·h mod p, or NaN when pos is outside the table. */
function scaled(h: number, pos: number, sign: number, pow: Float64Array, p: number): number {
  const k = pow[pos + OFF];
  if (k === undefined) return Number.NaN;
  const v = (h * k) % p;
  return sign < 0 && v !== 0 ? p - v : v;
}

/** The wires of a graph, indexed by their values' hashes (up to sign and a shift). */
export class WireIndex {
  private readonly h1: number[] = [];
  private readonly h2: number[] = [];
  /** hash key → wire·2(2·SHIFTS+1) + (shift + SHIFTS)·2 + (negative ? 1 : 0). */
  private readonly byKey = new Map<number, number>();
  /** Exact values (input → coefficient) of the wires a hit was checked against. */
  private readonly values = new Map<number, Map<number, number>>();
  /** Wires below this one have been considered for the index. */
  private indexed = 0;

  constructor(
    private readonly g: AdderGraph,
    seed = 1,
  ) {
    const next = mulberry32(seed);
    for (let w = 0; w < g.size; w++) {
      if (g.ops[w]) break;
      this.h1.push(1 + Math.floor(next() * (P1 - 1)));
      this.h2.push(1 + Math.floor(next() * (P2 - 1)));
    }
  }

  /** Hash the wires made since the last call; index those for which `usable` holds. */
  extend(usable: (w: number) => boolean): void {
    const g = this.g;
    for (let w = this.h1.length; w < g.size; w++) {
      const op = g.ops[w]!;
      const sub = op.sub ? -1 : 1;
      this.h1.push((this.h1[op.a]! + scaled(this.h1[op.b]!, op.shift, sub, POW1, P1)) % P1);
      this.h2.push((this.h2[op.a]! + scaled(this.h2[op.b]!, op.shift, sub, POW2, P2)) % P2);
    }
    for (let w = this.indexed; w < g.size; w++) if (usable(w)) this.index(w);
    this.indexed = g.size;
  }

  private index(w: number): void {
    const a = this.h1[w]!;
    const b = this.h2[w]!;
    if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0) return;
    const lat = this.g.lat;
    for (let s = -SHIFTS; s <= SHIFTS; s++)
      for (const sign of [1, -1]) {
        const key = scaled(a, s, sign, POW1, P1) * P2 + scaled(b, s, sign, POW2, P2);
        const old = this.byKey.get(key);
        // (the earliest-available wire of equal value wins)
        if (old !== undefined && lat[Math.floor(old / (4 * SHIFTS + 2))]! <= lat[w]!) continue;
        this.byKey.set(key, w * (4 * SHIFTS + 2) + (s + SHIFTS) * 2 + (sign < 0 ? 1 : 0));
      }
  }

  /** The term's hashes [h1, h2] (NaN when out of range). */
  termHash(t: Term): [number, number] {
    return [scaled(this.h1[t.wire]!, t.pos, t.sign, POW1, P1), scaled(this.h2[t.wire]!, t.pos, t.sign, POW2, P2)];
  }

  /** A wire term equal to the sum with hashes (a, b), or null. */
  find(a: number, b: number): Term | null {
    const v = this.byKey.get(a * P2 + b);
    if (v === undefined) return null;
    const n = 4 * SHIFTS + 2;
    const r = v % n;
    return { wire: Math.floor(v / n), pos: (r >> 1) - SHIFTS, sign: r & 1 ? -1 : 1 };
  }

  /** Whether Σ terms equals the term t exactly (values over the inputs). */
  equal(terms: Term[], t: Term): boolean {
    const sum = new Map<number, number>();
    const add = (x: Term, sign: number): void => {
      for (const [c, v] of this.valueOf(x.wire)) {
        const s = (sum.get(c) ?? 0) + sign * x.sign * v * 2 ** x.pos;
        if (s === 0) sum.delete(c);
        else sum.set(c, s);
      }
    };
    for (const x of terms) add(x, 1);
    add(t, -1);
    return sum.size === 0;
  }

  private valueOf(w: number): Map<number, number> {
    let v = this.values.get(w);
    if (v) return v;
    const op = this.g.ops[w];
    v = new Map<number, number>();
    if (!op) v.set(w, 1);
    else {
      for (const [c, x] of this.valueOf(op.a)) v.set(c, x);
      const k = (op.sub ? -1 : 1) * 2 ** op.shift;
      for (const [c, x] of this.valueOf(op.b)) {
        const s = (v.get(c) ?? 0) + k * x;
        if (s === 0) v.delete(c);
        else v.set(c, s);
      }
    }
    this.values.set(w, v);
    return v;
  }
}

/**
 * Each output's terms summed by its tree (AdderGraph.sumTerms), after replacing subsets of up to
 * `maxSubset` terms that add up to an existing wire. Outputs go in order, so an output may use the partial
 * sums of the trees before it. A replacement must keep the output within `bound` (its latest finish) or,
 * unconstrained, not make it later than its own terms' tree would.
 */
export function sumWithReuse(g: AdderGraph, rows: Term[][], bound: number[] | null, maxSubset: number): Term[] {
  const live = liveWires(g, rows);
  const index = new WireIndex(g);
  index.extend((w) => live[w] === 1);
  return rows.map((terms, o) => {
    const limit = bound ? bound[o]! : kraftFinish(g, terms);
    const sum = g.sumTerms(replaceSubsets(g, index, terms, limit, maxSubset));
    index.extend(() => true);
    return sum;
  });
}

/** Wires the terms depend on. */
function liveWires(g: AdderGraph, rows: Term[][]): Uint8Array {
  const live = new Uint8Array(g.size);
  for (const ts of rows) for (const t of ts) if (t.wire >= 0) live[t.wire] = 1;
  for (let w = g.size - 1; w >= 0; w--) {
    const op = g.ops[w];
    if (live[w] && op) live[op.a] = live[op.b] = 1;
  }
  return live;
}

/** Finish time of the earliest-two-first tree over the terms: ceil(log2 Σ 2^lat) (see cse.ts). */
function kraftFinish(g: AdderGraph, terms: Term[]): number {
  if (terms.length === 0) return -Infinity;
  let s = 0;
  for (const t of terms) s += 2 ** g.lat[t.wire]!;
  return Math.ceil(Math.log2(s) - 1e-9);
}

/** The terms with subsets equal to an indexed wire replaced by it, greedily (pairs first), until none is left. */
function replaceSubsets(g: AdderGraph, index: WireIndex, terms: Term[], limit: number, maxSubset: number): Term[] {
  let ts = terms;
  for (;;) {
    const hit = findSubset(index, ts, maxSubset, (subset, wire) => {
      const rest = ts.filter((_, i) => !subset.includes(i));
      rest.push(wire);
      return kraftFinish(g, rest) <= limit;
    });
    if (!hit) return ts;
    ts = ts.filter((_, i) => !hit.subset.includes(i));
    ts.push(hit.wire);
  }
}

/** The first subset (by size, then index order) whose sum is an indexed wire that `accept` takes. */
function findSubset(
  index: WireIndex,
  ts: Term[],
  maxSubset: number,
  accept: (subset: number[], wire: Term) => boolean,
): { subset: number[]; wire: Term } | null {
  const n = ts.length;
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  ts.forEach((t, i) => {
    [a[i], b[i]] = index.termHash(t);
  });
  const tryHit = (subset: number[], x: number, y: number): { subset: number[]; wire: Term } | null => {
    const wire = index.find(x, y);
    if (!wire || !index.equal(subset.map((i) => ts[i]!), wire) || !accept(subset, wire)) return null;
    return { subset, wire };
  };
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const x = (a[i]! + a[j]!) % P1;
      const y = (b[i]! + b[j]!) % P2;
      const h = tryHit([i, j], x, y);
      if (h) return h;
    }
  if (maxSubset < 3) return null;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const x0 = (a[i]! + a[j]!) % P1;
      const y0 = (b[i]! + b[j]!) % P2;
      for (let k = j + 1; k < n; k++) {
        const h = tryHit([i, j, k], (x0 + a[k]!) % P1, (y0 + b[k]!) % P2);
        if (h) return h;
      }
    }
  return null;
}
