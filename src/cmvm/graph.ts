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
    // a binary heap over parallel arrays (wire, position, sign); plain functions, not closures, so that
    // they are optimized early (one call per output)
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
    let size = n;
    for (let i = (size >> 1) - 1; i >= 0; i--) heapDown(lat, ki, i, size);
    while (size > 1) {
      // pop the two earliest into the slots just past the heap
      size--;
      heapSwap(0, size);
      heapDown(lat, ki, 0, size);
      const x = size;
      size--;
      heapSwap(0, size);
      if (size > 0) heapDown(lat, ki, 0, size);
      const y = size;
      const xw = hw[x]!;
      const xp = hp[x]!;
      const xs = hs[x]!;
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
      HW[i] = w;
      HP[i] = pos;
      HS[i] = sign;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!heapLess(lat, ki, i, p)) break;
        heapSwap(i, p);
        i = p;
      }
    }
    return { wire: HW[0]!, pos: HP[0]!, sign: HS[0]! as 1 | -1 };
  }
}

/** Whether heap entry x comes before y: earlier, then positive, then smaller magnitude (top bit). */
function heapLess(lat: number[], ki: number[], x: number, y: number): boolean {
  const lx = lat[HW[x]!]!;
  const ly = lat[HW[y]!]!;
  if (lx !== ly) return lx < ly;
  if (HS[x] !== HS[y]) return HS[x]! > HS[y]!;
  return ki[HW[x]!]! + HP[x]! < ki[HW[y]!]! + HP[y]!;
}

function heapSwap(x: number, y: number): void {
  const w = HW[x]!;
  const p = HP[x]!;
  const s = HS[x]!;
  HW[x] = HW[y]!;
  HP[x] = HP[y]!;
  HS[x] = HS[y]!;
  HW[y] = w;
  HP[y] = p;
  HS[y] = s;
}

function heapDown(lat: number[], ki: number[], i: number, size: number): void {
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) return;
    const r = l + 1;
    const m = r < size && heapLess(lat, ki, r, l) ? r : l;
    if (!heapLess(lat, ki, m, i)) return;
    heapSwap(m, i);
    i = m;
  }
}

/** sumTerms' heap arrays (shared: one sum at a time). */
let HW = new Int32Array(64);
let HP = new Int32Array(64);
let HS = new Int32Array(64);
