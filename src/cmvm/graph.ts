/**
 * The adder graph being built: source wires (inputs) and two-operand shift-adders over them. Every wire
 * knows its exact interval (from src/fixed) and its arrival time in adder levels.
 */
import { minimalKif, qiAddShifted } from '../fixed/interval.ts';
import type { QInterval } from '../fixed/types.ts';
import { ADDER_DELAY } from './cost.ts';

/** A signed, shifted use of a wire: sign · wire · 2^pos. wire −1 is the constant 0. */
export interface Term {
  wire: number;
  pos: number;
  sign: 1 | -1;
}

/** wire = a ± b·2^shift (the IR's add op). */
export interface AdderOp {
  a: number;
  b: number;
  shift: number;
  sub: boolean;
}

export class AdderGraph {
  readonly qint: QInterval[] = [];
  readonly lat: number[] = [];
  /** minimalKif of each wire, flattened, for the pair weights. */
  readonly kk: number[] = [];
  readonly ki: number[] = [];
  readonly kf: number[] = [];
  /** ops[w] is null for a source wire. */
  readonly ops: (AdderOp | null)[] = [];
  /** Number of adders (non-source wires). */
  adders = 0;

  get size(): number {
    return this.ops.length;
  }

  private push(q: QInterval, lat: number, op: AdderOp | null): number {
    const t = minimalKif(q);
    this.qint.push(q);
    this.lat.push(lat);
    this.kk.push(t.k);
    this.ki.push(t.i);
    this.kf.push(t.f);
    this.ops.push(op);
    return this.ops.length - 1;
  }

  addSource(q: QInterval, lat: number): number {
    return this.push(q, lat, null);
  }

  addAdder(a: number, b: number, shift: number, sub: boolean): number {
    this.adders++;
    const q = qiAddShifted(this.qint[a]!, this.qint[b]!, shift, sub);
    return this.push(q, Math.max(this.lat[a]!, this.lat[b]!) + ADDER_DELAY, { a, b, shift, sub });
  }

  /**
   * Sum terms with the tree that always adds the two earliest-available terms (optimal for depth);
   * among equally early terms, positive ones first (so subtraction, never negation, is needed) and the
   * smallest magnitudes first (narrower adders). Returns the single resulting term (wire −1 if none).
   */
  sumTerms(terms: Term[]): Term {
    if (terms.length === 0) return { wire: -1, pos: 0, sign: 1 };
    const heap = terms.slice();
    const msb = (t: Term): number => this.ki[t.wire]! + t.pos;
    const less = (x: Term, y: Term): boolean => {
      const lx = this.lat[x.wire]!;
      const ly = this.lat[y.wire]!;
      if (lx !== ly) return lx < ly;
      if (x.sign !== y.sign) return x.sign > y.sign;
      return msb(x) < msb(y);
    };
    heapify(heap, less);
    while (heap.length > 1) {
      const x = heapPop(heap, less);
      const y = heapPop(heap, less);
      let t: Term;
      if (x.sign === y.sign) {
        t = { wire: this.addAdder(x.wire, y.wire, y.pos - x.pos, false), pos: x.pos, sign: x.sign };
      } else {
        const [p, n] = x.sign > 0 ? [x, y] : [y, x];
        t = { wire: this.addAdder(p.wire, n.wire, n.pos - p.pos, true), pos: p.pos, sign: 1 };
      }
      heapPush(heap, t, less);
    }
    return heap[0]!;
  }
}

function siftDown<T>(h: T[], i: number, less: (a: T, b: T) => boolean): void {
  const n = h.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) return;
    const r = l + 1;
    const m = r < n && less(h[r]!, h[l]!) ? r : l;
    if (!less(h[m]!, h[i]!)) return;
    [h[m], h[i]] = [h[i]!, h[m]!];
    i = m;
  }
}

function heapify<T>(h: T[], less: (a: T, b: T) => boolean): void {
  for (let i = (h.length >> 1) - 1; i >= 0; i--) siftDown(h, i, less);
}

function heapPop<T>(h: T[], less: (a: T, b: T) => boolean): T {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length > 0) {
    h[0] = last;
    siftDown(h, 0, less);
  }
  return top;
}

function heapPush<T>(h: T[], x: T, less: (a: T, b: T) => boolean): void {
  h.push(x);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(h[i]!, h[p]!)) return;
    [h[i], h[p]] = [h[p]!, h[i]!];
    i = p;
  }
}
