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
import type { QInterval } from '../fixed/types.ts';
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
  loop: 0x03, end: 0x0b, brIf: 0x0d, localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Load: 0x28, i32Const: 0x41, i32Add: 0x6a, i32Sub: 0x6b, i32Shl: 0x74,
};
const SIMD = {
  load: 0x00, store: 0x0b, const: 0x0c, extract: 0x1b, replace: 0x1c,
  eq: 0x37, ne: 0x38, ltS: 0x39, gtS: 0x3b, geS: 0x3f,
  and: 0x4e, or: 0x50, bitselect: 0x52,
  neg: 0xa1, shl: 0xab, shrS: 0xac, add: 0xae, sub: 0xb1, mul: 0xb5, minS: 0xb6, maxS: 0xb8,
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
function buildModule(chunks: { code: Code; nV128: number }[], memPages: number, inStride: number, outStride: number, V: number): Uint8Array {
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
  r.get(0).i32(V * inStride).op(OP.i32Add).set(0);
  r.get(1).i32(V * outStride).op(OP.i32Add).set(1);
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
  const n = p.ops.length;
  const scale = new Float64Array(n);
  const isConst = new Uint8Array(n);
  const constCode = new Float64Array(n);
  const PIN = 0, POUT = 1, SP = 2;
  const base = 3;
  const T = [base, base + 1, base + 2]; // scratch v128 locals
  const tables: { offset: number; data: Int32Array }[] = [];
  let tableBytes = 0;
  const inputOps: number[] = [];
  const inputScales: number[] = [];
  const inputSlot = new Int32Array(n).fill(-1);

  // inputs come first in the block layout
  for (let j = 0; j < n; j++) if (live[j] && p.ops[j]!.kind === 'input') inputOps.push(j);
  inputOps.forEach((j, k) => (inputSlot[j] = k));
  const nInOps = inputOps.length;
  const nOut = p.out.length;

  // Emission order: depth-first from the outputs (operands right before their first consumer), which keeps
  // live ranges short in the straight-line code.
  const order: number[] = [];
  {
    const seen = new Uint8Array(n);
    const stack: number[] = [];
    for (const o of p.out) {
      if (o.wire < 0 || seen[o.wire]) continue;
      stack.push(o.wire);
      while (stack.length > 0) {
        const w = stack[stack.length - 1]!;
        if (seen[w] === 2) { stack.pop(); continue; }
        if (seen[w] === 1) { seen[w] = 2; stack.pop(); order.push(w); continue; }
        seen[w] = 1;
        const ops = operandsOf(p.ops[w]!);
        for (let q = ops.length - 1; q >= 0; q--) if (!seen[ops[q]!]) stack.push(ops[q]!);
      }
    }
  }
  // Plan the chunks: root[j] is the wire whose code j shares (copies are free), chunkOf[j] the chunk that
  // computes it; a root used by a later chunk is spilled to a scratch slot.
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
  const scratchBase = 0; // scratch sits at the bottom of memory, tables after it
  const tableBase = nSlots * 16 * V;

  const chunks: { code: Code; nV128: number }[] = [];
  let c = new Code();
  let nLocals = 3;
  let localOf = new Map<number, number>();
  const newLocal = (): number => base + nLocals++;
  let curChunk = 0;
  const finishChunk = (): void => {
    chunks.push({ code: c, nV128: nLocals });
    c = new Code();
    nLocals = 3;
    localOf = new Map();
  };
  /** push the code of wire w's root (loading it once per chunk from the inputs or the scratch area) */
  const getCode = (w: number): void => {
    const r = root[w]!;
    const l = localOf.get(r);
    if (l !== undefined) {
      c.get(l);
      return;
    }
    const nl = newLocal();
    if (inputSlot[r]! >= 0) c.get(PIN).simd(SIMD.load).memarg(4, inputSlot[r]! * 16);
    else if (slot[r]! >= 0 && chunkOf[r] !== curChunk) c.get(SP).simd(SIMD.load).memarg(4, scratchBase + slot[r]! * 16 * V);
    else throw new Error(`internal: wire ${r} has no code in chunk ${curChunk}`);
    c.op(OP.localTee);
    uleb(nl, c.b);
    localOf.set(r, nl);
  };

  const shiftBy = (s: number, right: boolean): void => {
    if (s === 0) return;
    if (s < 0 || s > 31) throw new NotEligible();
    c.i32(s).simd(right ? SIMD.shrS : SIMD.shl);
  };
  /** push wire w's codes aligned to scale `to` (exact: w's values are on the 2^to grid or shifted out) */
  const push = (w: number, to: number): void => {
    if (isConst[w]) {
      const v = constCode[w]! * 2 ** (scale[w]! - to);
      if (!Number.isInteger(v) || Math.abs(v) >= LIM) throw new NotEligible();
      c.splat(v);
      return;
    }
    getCode(w);
    const d = scale[w]! - to;
    if (d > 0) shiftBy(d, false);
    else if (d < 0) shiftBy(-d, true);
  };
  const splat = (v: number): void => {
    if (!Number.isInteger(v) || Math.abs(v) >= LIM) throw new NotEligible();
    c.splat(v);
  };

  inputOps.forEach((j) => {
    const q = p.ops[j]!.qint;
    scale[j] = log2i(q.step);
    checkFits(q, scale[j]!);
    inputScales.push(scale[j]!);
  });

  for (const j of order) {
    const node = p.ops[j]! as Node;
    if (node.kind === 'input') continue;
    const q = node.qint;
    const lr = log2i(q.step);
    scale[j] = lr;
    if (q.min === q.max) {
      // constant wire (also every zero-width one): no code, its value is known
      isConst[j] = 1;
      constCode[j] = q.min / q.step;
      continue;
    }
    checkFits(q, lr);
    if (node.kind !== 'copy' && chunkOf[j] !== curChunk) {
      finishChunk();
      curChunk = chunkOf[j]!;
    }
    const ops = operandsOf(node);
    const qa = ops.length > 0 ? p.ops[ops[0]!]!.qint : q;
    switch (node.kind) {
      case 'copy': {
        // same code, scale moved by the shift
        const a = node.a;
        if (isConst[a]) throw new Error('internal: copy of a constant has a constant interval');
        scale[j] = scale[a]! + node.shift;
        if (scale[j] !== lr) throw new NotEligible();
        continue;
      }
      case 'add':
        push(node.a, lr);
        // b·2^shift at scale lr: b's code at scale (scale_b + shift)
        if (isConst[node.b]) {
          splat(constCode[node.b]! * 2 ** (scale[node.b]! + node.shift - lr));
        } else {
          getCode(node.b);
          const d = scale[node.b]! + node.shift - lr;
          if (d > 0) shiftBy(d, false);
          else if (d < 0) shiftBy(-d, true);
        }
        c.simd(node.sub ? SIMD.sub : SIMD.add);
        break;
      case 'neg':
        push(node.a, lr);
        c.simd(SIMD.neg);
        break;
      case 'addc':
        push(node.a, lr);
        splat(node.value / 2 ** lr);
        c.simd(SIMD.add);
        break;
      case 'relu':
        checkFits(qa, lr);
        push(node.a, lr);
        c.splat(0).simd(SIMD.maxS);
        break;
      case 'mux':
        checkFits(p.ops[node.a]!.qint, lr);
        checkFits(p.ops[node.b]!.qint, lr);
        push(node.a, lr);
        push(node.b, lr);
        push(node.cond, scale[node.cond]!);
        c.splat(0).simd(SIMD.ltS).simd(SIMD.bitselect);
        break;
      case 'mul': {
        const sa = scale[node.a]!;
        const sb = scale[node.b]!;
        push(node.a, sa);
        push(node.b, sb);
        c.simd(SIMD.mul);
        const d = sa + sb - lr;
        if (d > 0) shiftBy(d, false);
        else if (d < 0) shiftBy(-d, true);
        break;
      }
      case 'min':
      case 'max':
        checkFits(p.ops[node.a]!.qint, lr);
        checkFits(p.ops[node.b]!.qint, lr);
        push(node.a, lr);
        push(node.b, lr);
        c.simd(node.kind === 'min' ? SIMD.minS : SIMD.maxS);
        break;
      case 'lut': {
        const a = node.a;
        if (isConst[a]) throw new Error('internal: lookup of a constant has a constant interval');
        const data = Int32Array.from(node.table, (v) => {
          const code = v / 2 ** lr;
          if (!Number.isInteger(code) || Math.abs(code) >= LIM) throw new NotEligible();
          return code;
        });
        const offset = tableBytes;
        tables.push({ offset, data });
        tableBytes += data.length * 4;
        const minCode = qa.min / 2 ** scale[a]!;
        c.splat(0);
        for (let lane = 0; lane < 4; lane++) {
          getCode(a);
          c.simd(SIMD.extract).op(lane).i32(minCode).op(OP.i32Sub).i32(2).op(OP.i32Shl);
          c.op(OP.i32Load).memarg(2, tableBase + offset).simd(SIMD.replace).op(lane);
        }
        break;
      }
      case 'quant': {
        const t = node.type;
        const W = t.k + t.i + t.f;
        const lt = -t.f;
        const la = scale[node.a]!;
        const r = qiFromKif(t, node.overflow);
        const needOv = qa.min < r.min || qa.max > r.max;
        const sat = node.overflow !== 'WRAP' && needOv;
        if (la < lt) {
          // drop d bits with rounding; saturation clips first at the operand's (finer) scale
          const d = lt - la;
          if (d > 30) throw new NotEligible();
          push(node.a, la);
          if (sat) {
            splat(r.min / 2 ** la);
            c.simd(SIMD.maxS);
            splat(r.max / 2 ** la);
            c.simd(SIMD.minS);
          }
          c.set(T[0]!);
          c.get(T[0]!).i32(d).simd(SIMD.shrS).set(T[1]!); // floor
          if (node.round === 'TRN') c.get(T[1]!);
          else {
            const half = 2 ** (d - 1);
            c.get(T[0]!).splat(2 ** d - 1).simd(SIMD.and).set(T[2]!); // remainder in [0, 2^d)
            c.get(T[1]!);
            const gtHalf = (): void => void c.get(T[2]!).splat(half).simd(SIMD.gtS);
            const eqHalf = (): void => void c.get(T[2]!).splat(half).simd(SIMD.eq);
            switch (node.round) {
              case 'RND':
                c.get(T[2]!).splat(half).simd(SIMD.geS);
                break;
              case 'RND_MIN_INF':
                gtHalf();
                break;
              case 'RND_CONV':
                gtHalf();
                eqHalf();
                c.get(T[1]!).splat(1).simd(SIMD.and).splat(1).simd(SIMD.eq).simd(SIMD.and).simd(SIMD.or);
                break;
              case 'RND_ZERO':
                gtHalf();
                eqHalf();
                c.get(T[0]!).splat(0).simd(SIMD.ltS).simd(SIMD.and).simd(SIMD.or);
                break;
              case 'RND_INF':
                gtHalf();
                eqHalf();
                c.get(T[0]!).splat(0).simd(SIMD.gtS).simd(SIMD.and).simd(SIMD.or);
                break;
              case 'TRN_ZERO':
                c.get(T[2]!).splat(0).simd(SIMD.ne).get(T[0]!).splat(0).simd(SIMD.ltS).simd(SIMD.and);
                break;
            }
            c.simd(SIMD.sub); // floor − (−1 where rounding up)
          }
        } else {
          // already on the grid: align to the type's scale, then clip
          if (sat) checkFits(qa, lt);
          push(node.a, lt);
          if (sat) {
            splat(r.min / 2 ** lt);
            c.simd(SIMD.maxS);
            splat(r.max / 2 ** lt);
            c.simd(SIMD.minS);
          }
        }
        if (node.overflow === 'WRAP' && needOv) {
          if (W > 32 || W < 1) throw new NotEligible();
          if (t.k === 1) {
            if (W < 32) c.i32(32 - W).simd(SIMD.shl).i32(32 - W).simd(SIMD.shrS);
          } else {
            if (W > 31) throw new NotEligible();
            c.splat(2 ** W - 1).simd(SIMD.and);
          }
        }
        // code at scale lt → the wire's scale
        const d = lr - lt;
        if (d > 0) shiftBy(d, true);
        else if (d < 0) shiftBy(-d, false);
        break;
      }
      default:
        throw new Error(`unreachable: ${node.kind}`);
    }
    const l = newLocal();
    localOf.set(j, l);
    c.set(l);
    if (slot[j]! >= 0) c.get(SP).get(l).simd(SIMD.store).memarg(4, scratchBase + slot[j]! * 16 * V);
  }
  if (curChunk !== nChunks - 1) {
    finishChunk();
    curChunk = nChunks - 1;
  }

  // outputs leave as float64 values, sample-major: out[(4·block + lane)·nOut + k] = code · scale (+ 0: no −0)
  const outScale: number[] = [];
  const f64 = (v: number): void => {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    c.op(0x44);
    for (const x of b) c.op(x);
  };
  p.out.forEach((o, k) => {
    const sc = o.wire < 0 ? 0 : (o.neg ? -1 : 1) * 2 ** (scale[o.wire]! + o.shift);
    outScale.push(sc);
    if (o.wire >= 0 && !isConst[o.wire]) {
      getCode(o.wire);
      c.set(T[0]!);
      for (let lane = 0; lane < 4; lane++) {
        c.get(POUT).get(T[0]!).simd(SIMD.extract).op(lane).op(0xb7); // f64.convert_i32_s
        f64(sc);
        c.op(0xa2); // f64.mul
        f64(0);
        c.op(0xa0); // f64.add
        c.op(0x39).memarg(3, (lane * nOut + k) * 8); // f64.store
      }
    } else {
      const v = o.wire < 0 ? 0 : constCode[o.wire]! * sc + 0;
      for (let lane = 0; lane < 4; lane++) {
        c.get(POUT);
        f64(v);
        c.op(0x39).memarg(3, (lane * nOut + k) * 8);
      }
    }
  });

  finishChunk();
  const tablePages = Math.ceil((tableBase + tableBytes) / 65536) + 1;
  const mod = new WA.Module(buildModule(chunks, tablePages, nInOps * 16, nOut * 32, V));
  const mem = new WA.Memory({ initial: tablePages });
  const instance = new WA.Instance(mod, { m: { mem } });
  const view = new Int32Array(mem.buffer);
  for (const tb of tables) view.set(tb.data, (tableBase + tb.offset) / 4);
  const tableEnd = tableBase + Math.ceil(tableBytes / 16) * 16;
  const run = instance.exports.run as (a: number, b: number, c: number) => void;
  return {
    inputOps,
    inputScales,
    outScale,
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
