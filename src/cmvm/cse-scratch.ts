/**
 * Scratch memory of the common-pair extraction (cse.ts): typed arrays reused across the extractions of one
 * solve (solveCmvm runs several per matrix, one at a time), so that small problems do not spend their time
 * allocating and collecting megabytes of arrays, plus the hash tables the extraction falls back to for
 * layers too big for its direct structures. One CseScratch per solve (or per worker thread); an extraction's
 * arrays are dead once it returns.
 */

export type I32 = Int32Array<ArrayBuffer>;
export type F64 = Float64Array<ArrayBuffer>;

export class CseScratch {
  /** Arrays by field name; views of them are handed out. */
  private readonly pool = new Map<string, I32 | F64>();
  /** The step table when its direct form would be too big. */
  readonly stepTable = new StepTable();
  /**
   * The step table's direct form: (other wire, shift, sub) → value, an array indexed by wire × shift × sub,
   * for when wires × shifts is small enough (usual). An entry is valid while its stamp is the current step's;
   * the stamps only grow, so the array is shared by all extractions and never cleared.
   */
  stepTab: I32 = new Int32Array(0); // [stamp, value] per entry
  stepEpoch = 0;

  /** A view of `size` entries of the named array (zeroed unless `zero` is false). */
  i32(name: string, size: number, zero = true): I32 {
    return this.take(Int32Array, name, size, zero);
  }

  f64(name: string, size: number, zero = true): F64 {
    return this.take(Float64Array, name, size, zero);
  }

  private take<A extends I32 | F64>(Kind: new (n: number) => A, name: string, size: number, zero: boolean): A {
    let a = this.pool.get(name) as A | undefined;
    if (!a || a.length < size) {
      a = new Kind(Math.max(size, 2 * (a?.length ?? 0)));
      this.pool.set(name, a);
    } else if (zero) a.fill(0, 0, size);
    return a.subarray(0, size) as A;
  }

  /** A longer view of the same field, keeping its contents (new entries zero). */
  grow<A extends I32 | F64>(name: string, view: A, size: number): A {
    const a = this.pool.get(name) as A | undefined;
    if (a && a.length >= size && a.buffer === view.buffer) {
      a.fill(0, view.length, size);
      return a.subarray(0, size) as A;
    }
    const b = new (view.constructor as new (n: number) => A)(Math.max(size, 2 * view.length));
    b.set(view as ArrayLike<number> as never);
    this.pool.set(name, b);
    return b.subarray(0, size) as A;
  }

  /**
   * Grows the named array fields of `owner` (each pooled under its field's name) to `size` entries, keeping
   * their contents: the struct-of-arrays tables list their columns once.
   */
  growFields<O extends object>(owner: O, fields: readonly (keyof O & string)[], size: number): void {
    const cols = owner as unknown as Record<string, I32 | F64>;
    for (const f of fields) cols[f] = this.grow(f, cols[f]!, size);
  }

  /** Make `a` the named array (a table that grew beyond its pooled one). */
  adopt(name: string, a: I32): void {
    this.pool.set(name, a);
  }
}

/**
 * Insert-only open-addressing hash table from three int32 keys to a non-negative int32 value. The keys and
 * value of a slot are interleaved so that a probe touches one cache line.
 */
export class Table3 {
  private mask: number;
  private slots: I32; // [a, b, c, value] per slot; value −1 = empty
  private n = 0;

  /** `name`: the scratch array it lives in, so a table per extraction costs no allocation. */
  constructor(
    private readonly scratch: CseScratch,
    private readonly name: string,
    capacityHint: number,
  ) {
    let cap = 64;
    while (cap < capacityHint * 2) cap *= 2;
    this.mask = cap - 1;
    this.slots = scratch.i32(name, cap * 4, false).fill(-1);
  }

  private static hash(a: number, b: number, c: number): number {
    let h = Math.imul(a ^ 0x5bd1e995, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 16) ^ b, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ c, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** The value stored for the key, or −1. */
  get(a: number, b: number, c: number): number {
    const mask = this.mask;
    const sl = this.slots;
    let s = Table3.hash(a, b, c) & mask;
    for (;;) {
      const i = s << 2;
      const v = sl[i + 3]!;
      if (v < 0 || (sl[i] === a && sl[i + 1] === b && sl[i + 2] === c)) return v;
      s = (s + 1) & mask;
    }
  }

  /** Store v for a key known to be absent. */
  insert(a: number, b: number, c: number, v: number): void {
    const mask = this.mask;
    const sl = this.slots;
    let s = Table3.hash(a, b, c) & mask;
    while (sl[(s << 2) + 3]! >= 0) s = (s + 1) & mask;
    const i = s << 2;
    sl[i] = a;
    sl[i + 1] = b;
    sl[i + 2] = c;
    sl[i + 3] = v;
    if (++this.n * 2 > mask) this.grow();
  }

  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * 4).fill(-1);
    this.scratch.adopt(this.name, this.slots);
    this.n = 0;
    for (let i = 0; i < old.length; i += 4) if (old[i + 3]! >= 0) this.insert(old[i]!, old[i + 1]!, old[i + 2]!, old[i + 3]!);
  }
}

/**
 * The pairs made with the wire created in the current step, keyed by (other wire, shift·2 + sub). Every
 * later lookup of such a pair goes through the pair matrices, so this table is emptied each step (by
 * bumping a stamp) and stays small and cache-resident.
 */
export class StepTable {
  private mask = 1023;
  private slots: I32 = new Int32Array(1024 * 3); // [a, b, value]
  private stamp: I32 = new Int32Array(1024);
  private epoch = 1;
  private n = 0;

  clear(): void {
    this.epoch++;
    this.n = 0;
  }

  private static hash(a: number, b: number): number {
    const h = Math.imul(a ^ Math.imul(b, 0x85ebca6b), 0x9e3779b1);
    return h ^ (h >>> 15);
  }

  get(a: number, b: number): number {
    const mask = this.mask;
    let s = StepTable.hash(a, b) & mask;
    for (;;) {
      if (this.stamp[s] !== this.epoch) return -1;
      const i = s * 3;
      if (this.slots[i] === a && this.slots[i + 1] === b) return this.slots[i + 2]!;
      s = (s + 1) & mask;
    }
  }

  insert(a: number, b: number, v: number): void {
    if ((this.n + 1) * 2 > this.mask) this.grow();
    const mask = this.mask;
    let s = StepTable.hash(a, b) & mask;
    while (this.stamp[s] === this.epoch) s = (s + 1) & mask;
    const i = s * 3;
    this.slots[i] = a;
    this.slots[i + 1] = b;
    this.slots[i + 2] = v;
    this.stamp[s] = this.epoch;
    this.n++;
  }

  private grow(): void {
    const { slots, stamp, epoch } = this;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * 3);
    this.stamp = new Int32Array(cap);
    this.n = 0;
    for (let s = 0; s < stamp.length; s++)
      if (stamp[s] === epoch) this.insert(slots[s * 3]!, slots[s * 3 + 1]!, slots[s * 3 + 2]!);
  }
}
