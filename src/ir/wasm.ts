/**
 * A WebAssembly SIMD (i32x4) kernel for programs whose wires all fit 31-bit integer codes: the fast path of
 * the emulator (four samples per instruction, compiled ahead of time, no JIT warm-up or deoptimization).
 *
 * Every wire w holds its integer code c = value / step_w (step from its exact interval), so a copy is free,
 * an add aligns its operands to the result's step with left shifts, and quantization is a shift with a
 * remainder test. Add, sub, neg and mul are exact modulo 2^32, hence exact whenever the result fits (its
 * interval says so); comparisons (min, max, relu, mux, saturation) need their aligned operands to fit too,
 * which is checked. A program that does not qualify gets `null` and the float64 JavaScript path instead.
 *
 * Input ops are quantized in JavaScript (they read arbitrary doubles); the kernel reads their codes and
 * writes output codes, four samples interleaved per 16-byte vector.
 */
import { qiFromKif } from '../fixed/interval.ts';
import type { QInterval, RoundMode } from '../fixed/types.ts';
import { operandsOf } from './interval.ts';
import type { Node, Program } from './types.ts';

// ---------------------------------------------------------------------------------------------------------
// binary encoding

function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}
function sleb(n: number, out: number[]): void {
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

const OP = {
  loop: 0x03,
  end: 0x0b,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i32Const: 0x41,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Shl: 0x74,
};
const SIMD = {
  load: 0x00,
  store: 0x0b,
  const: 0x0c,
  extract: 0x1b,
  replace: 0x1c,
  eq: 0x37,
  ne: 0x38,
  ltS: 0x39,
  gtS: 0x3b,
  geS: 0x3f,
  and: 0x4e,
  or: 0x50,
  bitselect: 0x52,
  neg: 0xa1,
  shl: 0xab,
  shrS: 0xac,
  add: 0xae,
  sub: 0xb1,
  mul: 0xb5,
  minS: 0xb6,
  maxS: 0xb8,
};

class Code {
  readonly b: number[] = [];
  simd(op: number): this {
    this.b.push(0xfd);
    uleb(op, this.b);
    return this;
  }
  get(l: number): this {
    this.b.push(OP.localGet);
    uleb(l, this.b);
    return this;
  }
  set(l: number): this {
    this.b.push(OP.localSet);
    uleb(l, this.b);
    return this;
  }
  i32(n: number): this {
    this.b.push(OP.i32Const);
    sleb(n | 0, this.b);
    return this;
  }
  op(o: number): this {
    this.b.push(o);
    return this;
  }
  splat(n: number): this {
    this.simd(SIMD.const);
    for (let l = 0; l < 4; l++) this.b.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
    return this;
  }
  memarg(align: number, offset: number): this {
    uleb(align, this.b);
    uleb(offset, this.b);
    return this;
  }
}

function append(out: number[], xs: readonly number[]): void {
  for (let j = 0; j < xs.length; j++) out.push(xs[j]!);
}

function section(id: number, body: number[], out: number[]): void {
  out.push(id);
  uleb(body.length, out);
  append(out, body);
}

/**
 * Module: imports memory "m"."mem"; funcs 0..K−1 `chunk_k(inPtr, outPtr, sp)` are the straight-line program for
 * one block of four samples, split so each function stays small (values that cross chunks go through a
 * scratch area, at sp within each slot); exported func K `run(inPtr, outPtr, nGroups)` runs each chunk over
 * a group of V blocks before the next chunk, so a chunk's machine code stays in the instruction cache while
 * it is reused (large programs are otherwise bound by instruction fetch). The loops live outside the chunk
 * bodies, so their locals carry no loop phis.
 */
function buildModule(
  chunks: { code: Code; nV128: number }[],
  memPages: number,
  inStride: number,
  outStride: number,
  V: number,
): Uint8Array {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const K = chunks.length;
  // type 0 = (i32, i32, i32) -> ()
  section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0], out);
  const imp: number[] = [1];
  for (const s of ['m', 'mem']) {
    uleb(s.length, imp);
    for (const ch of s) imp.push(ch.charCodeAt(0));
  }
  imp.push(0x02, 0x00);
  uleb(memPages, imp);
  section(2, imp, out);
  const funcs: number[] = [];
  uleb(K + 1, funcs);
  for (let k = 0; k <= K; k++) funcs.push(0);
  section(3, funcs, out);
  const exp: number[] = [1, 3, ...'run'.split('').map((c) => c.charCodeAt(0)), 0x00];
  uleb(K, exp);
  section(7, exp, out);
  const code: number[] = [];
  uleb(K + 1, code);
  for (const ch of chunks) {
    const f: number[] = [1];
    uleb(ch.nV128, f);
    f.push(0x7b);
    append(f, ch.code.b);
    f.push(OP.end);
    uleb(f.length, code);
    append(code, f);
  }
  // run(in, out, nGroups): loop { for each chunk k: for v < V: chunk_k(in + v·inStride, out + v·outStride, 16·v);
  //                               in += V·inStride; out += V·outStride } while (--nGroups)
  const r = new Code();
  const v = 3;
  r.op(OP.loop).op(0x40);
  for (let k = 0; k < K; k++) {
    r.i32(0).set(v);
    r.op(OP.loop).op(0x40);
    r.get(0).get(v).i32(inStride).op(0x6c).op(OP.i32Add);
    r.get(1).get(v).i32(outStride).op(0x6c).op(OP.i32Add);
    r.get(v).i32(16).op(0x6c);
    r.op(0x10);
    uleb(k, r.b);
    r.get(v).i32(1).op(OP.i32Add).op(OP.localTee).op(v).i32(V).op(0x47).op(OP.brIf).op(0); // i32.ne
    r.op(OP.end);
  }
  r.get(0)
    .i32(V * inStride)
    .op(OP.i32Add)
    .set(0);
  r.get(1)
    .i32(V * outStride)
    .op(OP.i32Add)
    .set(1);
  r.get(2).i32(1).op(OP.i32Sub).op(OP.localTee).op(2);
  r.op(OP.brIf).op(0);
  r.op(OP.end);
  const f1: number[] = [1, 1, 0x7f];
  append(f1, r.b);
  f1.push(OP.end);
  uleb(f1.length, code);
  append(code, f1);
  section(10, code, out);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------------------
// code generation

class NotEligible extends Error {}

/** The few WebAssembly JS API members used here (the project's lib settings carry no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (mod: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number }) => WasmMemory;
  CompileError: new () => Error;
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

const LIM = 2 ** 31;

function log2i(x: number): number {
  return Math.round(Math.log2(x));
}
function maxAbs(q: QInterval): number {
  return Math.max(Math.abs(q.min), Math.abs(q.max));
}
/** |values of q| / 2^scale must fit an int32. */
function checkFits(q: QInterval, scale: number): void {
  if (maxAbs(q) / 2 ** scale >= LIM) throw new NotEligible();
}
/** A code that must be an exact int32. */
function checkCode(v: number): void {
  if (!Number.isInteger(v) || Math.abs(v) >= LIM) throw new NotEligible();
}

export interface WasmKernel {
  /** live input ops, in the order their codes are laid out */
  inputOps: number[];
  /** log2 step of each input op's wire (code = value / 2^scale) */
  inputScales: number[];
  /** per output: the multiplier from code to value (sign and shift included), or 0 for a constant-0 output */
  outScale: number[];
  /**
   * Makes room for nBlocks blocks (rounded up to whole groups); returns the input-code region to fill,
   * [(block·nInputOps + k)·4 + lane], padding included (fill it with valid codes, e.g. 0).
   */
  prepare(nBlocks: number): Int32Array;
  /** Runs the prepared blocks; returns the outputs, sample-major (4·nBlocks × nOut values). */
  exec(nBlocks: number): Float64Array;
}

/** The kernel for p, or null when some wire or comparison does not fit 31-bit codes (or SIMD is missing). */
export function compileWasmKernel(p: Program, live: Uint8Array, chunkOps?: number, groupBlocks?: number): WasmKernel | null {
  try {
    return build(p, live, chunkOps, groupBlocks);
  } catch (e) {
    if (e instanceof NotEligible || (WA !== undefined && e instanceof WA.CompileError)) return null;
    throw e;
  }
}

/** Ops per generated function, and blocks each function runs over before the next (see buildModule). */
const CHUNK_OPS = 200;
const GROUP_BLOCKS = 16;

function build(p: Program, live: Uint8Array, chunkOps = CHUNK_OPS, V = GROUP_BLOCKS): WasmKernel {
  if (WA === undefined) throw new NotEligible();
  const inputOps = liveInputOps(p, live);
  const order = emissionOrder(p);
  const plan = planChunks(p, order, chunkOps);
  const w = new ChunkWriter(p, plan, inputOps, V);
  const inputScales = w.scaleInputs(inputOps);
  for (const j of order) w.op(j);
  const outScale = w.outputs();
  return instantiate(w, { inputOps, inputScales, outScale }, p.out.length, V);
}

/** Live input ops: their codes come first in the block layout, in op order. */
function liveInputOps(p: Program, live: Uint8Array): number[] {
  const inputOps: number[] = [];
  for (let j = 0; j < p.ops.length; j++) if (live[j] && p.ops[j]!.kind === 'input') inputOps.push(j);
  return inputOps;
}

/**
 * Emission order: depth-first from the outputs (operands right before their first consumer), which keeps
 * live ranges short in the straight-line code.
 */
function emissionOrder(p: Program): number[] {
  const order: number[] = [];
  const seen = new Uint8Array(p.ops.length); // 1: operands pending, 2: emitted
  const stack: number[] = [];
  for (const o of p.out) {
    if (o.wire < 0 || seen[o.wire]) continue;
    stack.push(o.wire);
    while (stack.length > 0) {
      const w = stack[stack.length - 1]!;
      if (seen[w] === 2) {
        stack.pop();
        continue;
      }
      if (seen[w] === 1) {
        seen[w] = 2;
        stack.pop();
        order.push(w);
        continue;
      }
      seen[w] = 1;
      const ops = operandsOf(p.ops[w]!);
      for (let q = ops.length - 1; q >= 0; q--) if (!seen[ops[q]!]) stack.push(ops[q]!);
    }
  }
  return order;
}

interface ChunkPlan {
  /** the wire whose code wire j shares (copies are free) */
  root: Int32Array;
  /** the chunk that computes wire j, or −1 (inputs, constants, copies) */
  chunkOf: Int32Array;
  nChunks: number;
  /** the scratch slot of a root used by a later chunk, or −1 */
  slot: Int32Array;
  nSlots: number;
}

/** Splits the emission order into chunks of chunkOps computed wires; roots used across chunks get scratch slots. */
function planChunks(p: Program, order: number[], chunkOps: number): ChunkPlan {
  const n = p.ops.length;
  const root = new Int32Array(n);
  const chunkOf = new Int32Array(n).fill(-1);
  let emitted = 0;
  for (let j = 0; j < n; j++) root[j] = j;
  for (const j of order) {
    const node = p.ops[j]!;
    if (node.kind === 'input' || node.qint.min === node.qint.max) continue;
    if (node.kind === 'copy') {
      root[j] = root[node.a]!;
      continue;
    }
    chunkOf[j] = Math.floor(emitted++ / chunkOps);
  }
  const nChunks = Math.max(1, Math.ceil(emitted / chunkOps));
  const slot = new Int32Array(n).fill(-1);
  let nSlots = 0;
  const use = (w: number, at: number): void => {
    const r = root[w]!;
    if (chunkOf[r]! >= 0 && chunkOf[r] !== at && slot[r]! < 0) slot[r] = nSlots++;
  };
  for (const j of order) if (chunkOf[j]! >= 0) for (const a of operandsOf(p.ops[j]!)) use(a, chunkOf[j]!);
  for (const o of p.out) if (o.wire >= 0) use(o.wire, nChunks - 1);
  return { root, chunkOf, nChunks, slot, nSlots };
}

/** Parameters of every chunk function (inPtr, outPtr, sp); the v128 locals follow, three temporaries first. */
const PIN = 0;
const POUT = 1;
const SP = 2;
const N_PARAMS = 3;
const T0 = N_PARAMS;
const T1 = N_PARAMS + 1;
const T2 = N_PARAMS + 2;
const N_TEMPS = 3;

/** Writes the chunk functions: one method per op kind, each leaving the op's codes on the stack. */
class ChunkWriter {
  readonly chunks: { code: Code; nV128: number }[] = [];
  readonly tables: { offset: number; data: Int32Array }[] = [];
  tableBytes = 0;
  /** scratch sits at the bottom of memory, tables after it */
  readonly tableBase: number;
  private readonly scale: Float64Array;
  private readonly isConst: Uint8Array;
  private readonly constCode: Float64Array;
  private readonly inputSlot: Int32Array;
  private c = new Code();
  private nLocals = N_TEMPS;
  private localOf = new Map<number, number>();
  private curChunk = 0;

  constructor(
    private readonly p: Program,
    private readonly plan: ChunkPlan,
    inputOps: number[],
    private readonly V: number,
  ) {
    const n = p.ops.length;
    this.scale = new Float64Array(n);
    this.isConst = new Uint8Array(n);
    this.constCode = new Float64Array(n);
    this.inputSlot = new Int32Array(n).fill(-1);
    inputOps.forEach((j, k) => {
      this.inputSlot[j] = k;
    });
    this.tableBase = plan.nSlots * 16 * V;
  }

  /** Each input's scale (log2 of its step), checked to fit 31-bit codes. */
  scaleInputs(inputOps: number[]): number[] {
    return inputOps.map((j) => {
      const q = this.p.ops[j]!.qint;
      this.scale[j] = log2i(q.step);
      checkFits(q, this.scale[j]!);
      return this.scale[j]!;
    });
  }

  /** Emits op j: constants and copies cost no code; anything else is computed into a local (and spilled if needed). */
  op(j: number): void {
    const node = this.p.ops[j]! as Node;
    if (node.kind === 'input') return;
    const q = node.qint;
    const lr = log2i(q.step);
    this.scale[j] = lr;
    if (q.min === q.max) {
      // constant wire (also every zero-width one): no code, its value is known
      this.isConst[j] = 1;
      this.constCode[j] = q.min / q.step;
      return;
    }
    checkFits(q, lr);
    if (node.kind === 'copy') {
      // same code, scale moved by the shift
      if (this.isConst[node.a]) throw new Error('internal: copy of a constant has a constant interval');
      this.scale[j] = this.scale[node.a]! + node.shift;
      if (this.scale[j] !== lr) throw new NotEligible();
      return;
    }
    if (this.plan.chunkOf[j] !== this.curChunk) this.enterChunk(this.plan.chunkOf[j]!);
    this.compute(node, lr);
    this.keep(j);
  }

  /** The op's codes at scale lr, on the stack. */
  private compute(node: Node, lr: number): void {
    const c = this.c;
    switch (node.kind) {
      case 'add':
        this.push(node.a, lr);
        // b·2^shift at scale lr: b's code at scale (scale_b + shift)
        this.pushAt(node.b, this.scale[node.b]! + node.shift, lr);
        c.simd(node.sub ? SIMD.sub : SIMD.add);
        return;
      case 'neg':
        this.push(node.a, lr);
        c.simd(SIMD.neg);
        return;
      case 'addc':
        this.push(node.a, lr);
        this.splat(node.value / 2 ** lr);
        c.simd(SIMD.add);
        return;
      case 'relu':
        checkFits(this.p.ops[node.a]!.qint, lr);
        this.push(node.a, lr);
        c.splat(0).simd(SIMD.maxS);
        return;
      case 'mux':
        checkFits(this.p.ops[node.a]!.qint, lr);
        checkFits(this.p.ops[node.b]!.qint, lr);
        this.push(node.a, lr);
        this.push(node.b, lr);
        this.push(node.cond, this.scale[node.cond]!);
        c.splat(0).simd(SIMD.ltS).simd(SIMD.bitselect);
        return;
      case 'mul': {
        const sa = this.scale[node.a]!;
        const sb = this.scale[node.b]!;
        this.push(node.a, sa);
        this.push(node.b, sb);
        c.simd(SIMD.mul);
        this.rescale(sa + sb, lr);
        return;
      }
      case 'min':
      case 'max':
        checkFits(this.p.ops[node.a]!.qint, lr);
        checkFits(this.p.ops[node.b]!.qint, lr);
        this.push(node.a, lr);
        this.push(node.b, lr);
        c.simd(node.kind === 'min' ? SIMD.minS : SIMD.maxS);
        return;
      case 'lut':
        this.lookup(node, lr);
        return;
      case 'quant':
        this.quantize(node, lr);
        return;
      default:
        throw new Error(`unreachable: ${node.kind}`);
    }
  }

  /** Table lookup lane by lane: the table (as codes at the result's scale) goes to memory, indexed by the operand's code − min. */
  private lookup(node: Extract<Node, { kind: 'lut' }>, lr: number): void {
    const a = node.a;
    if (this.isConst[a]) throw new Error('internal: lookup of a constant has a constant interval');
    const data = Int32Array.from(node.table, (v) => {
      const code = v / 2 ** lr;
      checkCode(code);
      return code;
    });
    const offset = this.tableBytes;
    this.tables.push({ offset, data });
    this.tableBytes += data.length * 4;
    const minCode = this.p.ops[a]!.qint.min / 2 ** this.scale[a]!;
    const c = this.c;
    c.splat(0);
    for (let lane = 0; lane < 4; lane++) {
      this.getCode(a);
      c.simd(SIMD.extract).op(lane).i32(minCode).op(OP.i32Sub).i32(2).op(OP.i32Shl);
      c.op(OP.i32Load)
        .memarg(2, this.tableBase + offset)
        .simd(SIMD.replace)
        .op(lane);
    }
  }

  /**
   * Quantization to type t = (k, i, f), i.e. to scale lt = −f: drop low bits with rounding (saturation clips
   * first, at the operand's finer scale) or align an operand already on the grid (then clip); WRAP keeps the
   * low W bits; finally the code moves from scale lt to the wire's scale lr.
   */
  private quantize(node: Extract<Node, { kind: 'quant' }>, lr: number): void {
    const t = node.type;
    const lt = -t.f;
    const la = this.scale[node.a]!;
    const qa = this.p.ops[node.a]!.qint;
    const r = qiFromKif(t, node.overflow);
    const needOv = qa.min < r.min || qa.max > r.max;
    const sat = node.overflow !== 'WRAP' && needOv;
    if (la < lt) {
      const d = lt - la;
      if (d > 30) throw new NotEligible();
      this.push(node.a, la);
      if (sat) this.clip(r, la);
      this.dropBits(d, node.round);
    } else {
      if (sat) checkFits(qa, lt);
      this.push(node.a, lt);
      if (sat) this.clip(r, lt);
    }
    if (node.overflow === 'WRAP' && needOv) this.wrap(t.k, t.k + t.i + t.f);
    this.rescale(lt, lr);
  }

  /** Clips the codes on the stack (at scale `at`) to the interval r. */
  private clip(r: QInterval, at: number): void {
    this.splat(r.min / 2 ** at);
    this.c.simd(SIMD.maxS);
    this.splat(r.max / 2 ** at);
    this.c.simd(SIMD.minS);
  }

  /** Drops the d low bits of the codes on the stack, rounding per mode (src/fixed/quantize's modes, on the remainder). */
  private dropBits(d: number, round: RoundMode): void {
    const c = this.c;
    c.set(T0);
    c.get(T0).i32(d).simd(SIMD.shrS).set(T1); // floor
    if (round === 'TRN') {
      c.get(T1);
      return;
    }
    const half = 2 ** (d - 1);
    c.get(T0)
      .splat(2 ** d - 1)
      .simd(SIMD.and)
      .set(T2); // remainder in [0, 2^d)
    c.get(T1);
    this.roundsUp(round, half);
    c.simd(SIMD.sub); // floor − (−1 where rounding up)
  }

  /** Pushes the lane mask (−1 or 0) of "round up" from T0 (the code), T1 (its floor) and T2 (the remainder). */
  private roundsUp(round: RoundMode, half: number): void {
    const c = this.c;
    const gtHalf = (): void => void c.get(T2).splat(half).simd(SIMD.gtS);
    const eqHalf = (): void => void c.get(T2).splat(half).simd(SIMD.eq);
    switch (round) {
      case 'RND':
        c.get(T2).splat(half).simd(SIMD.geS);
        break;
      case 'RND_MIN_INF':
        gtHalf();
        break;
      case 'RND_CONV':
        gtHalf();
        eqHalf();
        c.get(T1).splat(1).simd(SIMD.and).splat(1).simd(SIMD.eq).simd(SIMD.and).simd(SIMD.or);
        break;
      case 'RND_ZERO':
        gtHalf();
        eqHalf();
        c.get(T0).splat(0).simd(SIMD.ltS).simd(SIMD.and).simd(SIMD.or);
        break;
      case 'RND_INF':
        gtHalf();
        eqHalf();
        c.get(T0).splat(0).simd(SIMD.gtS).simd(SIMD.and).simd(SIMD.or);
        break;
      case 'TRN_ZERO':
        c.get(T2).splat(0).simd(SIMD.ne).get(T0).splat(0).simd(SIMD.ltS).simd(SIMD.and);
        break;
    }
  }

  /** Keeps the low W bits of the codes on the stack: sign-extended when k = 1, masked when k = 0. */
  private wrap(k: number, W: number): void {
    if (W > 32 || W < 1) throw new NotEligible();
    if (k === 1) {
      if (W < 32)
        this.c
          .i32(32 - W)
          .simd(SIMD.shl)
          .i32(32 - W)
          .simd(SIMD.shrS);
    } else {
      if (W > 31) throw new NotEligible();
      this.c.splat(2 ** W - 1).simd(SIMD.and);
    }
  }

  /** Stores the codes on the stack in wire j's local, and in its scratch slot when a later chunk reads it. */
  private keep(j: number): void {
    const l = this.newLocal();
    this.localOf.set(j, l);
    this.c.set(l);
    const s = this.plan.slot[j]!;
    if (s >= 0)
      this.c
        .get(SP)
        .get(l)
        .simd(SIMD.store)
        .memarg(4, s * 16 * this.V);
  }

  /**
   * Outputs leave as float64 values, sample-major: out[(4·block + lane)·nOut + k] = code · scale (+ 0: no −0).
   * Returns each output's scale.
   */
  outputs(): number[] {
    if (this.curChunk !== this.plan.nChunks - 1) this.enterChunk(this.plan.nChunks - 1);
    const c = this.c;
    const nOut = this.p.out.length;
    const f64 = (v: number): void => {
      const b = new Uint8Array(new Float64Array([v]).buffer);
      c.op(0x44);
      for (const x of b) c.op(x);
    };
    const outScale: number[] = [];
    this.p.out.forEach((o, k) => {
      const sc = o.wire < 0 ? 0 : (o.neg ? -1 : 1) * 2 ** (this.scale[o.wire]! + o.shift);
      outScale.push(sc);
      if (o.wire >= 0 && !this.isConst[o.wire]) {
        this.getCode(o.wire);
        c.set(T0);
        for (let lane = 0; lane < 4; lane++) {
          c.get(POUT).get(T0).simd(SIMD.extract).op(lane).op(0xb7); // f64.convert_i32_s
          f64(sc);
          c.op(0xa2); // f64.mul
          f64(0);
          c.op(0xa0); // f64.add
          c.op(0x39).memarg(3, (lane * nOut + k) * 8); // f64.store
        }
      } else {
        const v = o.wire < 0 ? 0 : this.constCode[o.wire]! * sc + 0;
        for (let lane = 0; lane < 4; lane++) {
          c.get(POUT);
          f64(v);
          c.op(0x39).memarg(3, (lane * nOut + k) * 8);
        }
      }
    });
    this.finishChunk();
    return outScale;
  }

  private newLocal(): number {
    return N_PARAMS + this.nLocals++;
  }

  private finishChunk(): void {
    this.chunks.push({ code: this.c, nV128: this.nLocals });
    this.c = new Code();
    this.nLocals = N_TEMPS;
    this.localOf = new Map();
  }

  private enterChunk(k: number): void {
    this.finishChunk();
    this.curChunk = k;
  }

  /** Pushes the code of wire w's root (loading it once per chunk from the inputs or the scratch area). */
  private getCode(w: number): void {
    const { root, slot, chunkOf } = this.plan;
    const r = root[w]!;
    const l = this.localOf.get(r);
    if (l !== undefined) {
      this.c.get(l);
      return;
    }
    const nl = this.newLocal();
    if (this.inputSlot[r]! >= 0)
      this.c
        .get(PIN)
        .simd(SIMD.load)
        .memarg(4, this.inputSlot[r]! * 16);
    else if (slot[r]! >= 0 && chunkOf[r] !== this.curChunk)
      this.c
        .get(SP)
        .simd(SIMD.load)
        .memarg(4, slot[r]! * 16 * this.V);
    else throw new Error(`internal: wire ${r} has no code in chunk ${this.curChunk}`);
    this.c.op(OP.localTee);
    uleb(nl, this.c.b);
    this.localOf.set(r, nl);
  }

  private shiftBy(s: number, right: boolean): void {
    if (s === 0) return;
    if (s < 0 || s > 31) throw new NotEligible();
    this.c.i32(s).simd(right ? SIMD.shrS : SIMD.shl);
  }

  /** Moves the codes on the stack from scale `from` to scale `to` (left shift to a finer grid, right shift to a coarser one). */
  private rescale(from: number, to: number): void {
    const d = from - to;
    if (d > 0) this.shiftBy(d, false);
    else if (d < 0) this.shiftBy(-d, true);
  }

  /** Pushes wire w's codes aligned to scale `to` (exact: w's values are on the 2^to grid or shifted out). */
  private push(w: number, to: number): void {
    this.pushAt(w, this.scale[w]!, to);
  }

  /** Pushes wire w's codes, read as being at scale wScale, aligned to scale `to`. */
  private pushAt(w: number, wScale: number, to: number): void {
    if (this.isConst[w]) {
      this.splat(this.constCode[w]! * 2 ** (wScale - to));
      return;
    }
    this.getCode(w);
    this.rescale(wScale, to);
  }

  private splat(v: number): void {
    checkCode(v);
    this.c.splat(v);
  }
}

/** Compiles the chunks, lays out memory (scratch, tables, then the input and output blocks) and wraps `run`. */
function instantiate(
  w: ChunkWriter,
  head: Pick<WasmKernel, 'inputOps' | 'inputScales' | 'outScale'>,
  nOut: number,
  V: number,
): WasmKernel {
  const nInOps = head.inputOps.length;
  const { tableBase, tableBytes } = w;
  const tablePages = Math.ceil((tableBase + tableBytes) / 65536) + 1;
  const mod = new WA!.Module(buildModule(w.chunks, tablePages, nInOps * 16, nOut * 32, V));
  const mem = new WA!.Memory({ initial: tablePages });
  const instance = new WA!.Instance(mod, { m: { mem } });
  const view = new Int32Array(mem.buffer);
  for (const tb of w.tables) view.set(tb.data, (tableBase + tb.offset) / 4);
  const tableEnd = tableBase + Math.ceil(tableBytes / 16) * 16;
  const run = instance.exports.run as (a: number, b: number, c: number) => void;
  return {
    ...head,
    prepare(nBlocks: number): Int32Array {
      const padded = Math.ceil(nBlocks / V) * V;
      const need = tableEnd + padded * nInOps * 16 + padded * nOut * 32;
      // tables stay in place; the instance sees the grown memory
      if (need > mem.buffer.byteLength) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
      return new Int32Array(mem.buffer, tableEnd, padded * nInOps * 4);
    },
    exec(nBlocks: number): Float64Array {
      const padded = Math.ceil(nBlocks / V) * V;
      const inBytes = padded * nInOps * 16;
      if (padded > 0) run(tableEnd, tableEnd + inBytes, padded / V);
      return new Float64Array(mem.buffer, tableEnd + inBytes, nBlocks * 4 * nOut);
    },
  };
}
