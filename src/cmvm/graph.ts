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
    const n = terms.length;
    if (n === 0) return { wire: -1, pos: 0, sign: 1 };
    if (n === 1) return terms[0]!;
    // a binary heap over parallel arrays (wire, position, sign)
    if (HW.length < n) {
      HW = new Int32Array(2 * n);
      HP = new Int32Array(2 * n);
      HS = new Int32Array(2 * n);
    }
    const hw = HW;
    const hp = HP;
    const hs = HS;
    for (let i = 0; i < n; i++) {
      const t = terms[i]!;
      hw[i] = t.wire;
      hp[i] = t.pos;
      hs[i] = t.sign;
    }
    const lat = this.lat;
    const ki = this.ki;
    const less = (x: number, y: number): boolean => {
      const lx = lat[hw[x]!]!;
      const ly = lat[hw[y]!]!;
      if (lx !== ly) return lx < ly;
      if (hs[x] !== hs[y]) return hs[x]! > hs[y]!;
      return ki[hw[x]!]! + hp[x]! < ki[hw[y]!]! + hp[y]!;
    };
    const swap = (x: number, y: number): void => {
      const w = hw[x]!;
      const p = hp[x]!;
      const s = hs[x]!;
      hw[x] = hw[y]!;
      hp[x] = hp[y]!;
      hs[x] = hs[y]!;
      hw[y] = w;
      hp[y] = p;
      hs[y] = s;
    };
    let size = n;
    const siftDown = (i: number): void => {
      for (;;) {
        const l = 2 * i + 1;
        if (l >= size) return;
        const r = l + 1;
        const m = r < size && less(r, l) ? r : l;
        if (!less(m, i)) return;
        swap(m, i);
        i = m;
      }
    };
    /** Remove the top into slot `size` (just past the heap). */
    const pop = (): void => {
      size--;
      swap(0, size);
      if (size > 0) siftDown(0);
    };
    for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i);
    while (size > 1) {
      pop();
      const x = size; // (the first popped, now just past the heap)
      const xw = hw[x]!;
      const xp = hp[x]!;
      const xs = hs[x]!;
      pop();
      const y = size;
      const yw = hw[y]!;
      const yp = hp[y]!;
      const ys = hs[y]!;
      let w: number;
      let pos: number;
      let sign: number;
      if (xs === ys) {
        w = this.addAdder(xw, yw, yp - xp, false);
        pos = xp;
        sign = xs;
      } else if (xs > 0) {
        w = this.addAdder(xw, yw, yp - xp, true);
        pos = xp;
        sign = 1;
      } else {
        w = this.addAdder(yw, xw, xp - yp, true);
        pos = yp;
        sign = 1;
      }
      // push
      let i = size++;
      hw[i] = w;
      hp[i] = pos;
      hs[i] = sign;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!less(i, p)) break;
        swap(i, p);
        i = p;
      }
    }
    return { wire: hw[0]!, pos: hp[0]!, sign: hs[0]! as 1 | -1 };
  }
}

/** sumTerms' heap arrays (shared: one sum at a time). */
let HW = new Int32Array(64);
let HP = new Int32Array(64);
let HS = new Int32Array(64);
