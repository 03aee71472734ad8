/**
 * Lowering of an IR program to a language-neutral, bit-exact, pipelined netlist; the Verilog and VHDL
 * printers only spell it out. Every net has an explicit width; every operand is explicitly aligned
 * (shifted by its step), sign- or zero-extended, or truncated (modular arithmetic: a result known to fit
 * in w bits is computed mod 2^w). Ops whose result is a constant (including pruned, zero-width wires)
 * become literals; ops no output depends on are dropped.
 *
 * Pipelining (DESIGN.md §7): with latencyCutoff c > 0, a wire of latency l lives in stage
 * max(0, ceil(l/c) − 1) (at least its operands' stages); a value used in a later stage goes through one
 * register per stage boundary, so no op straddles a register. Outputs are all taken in the last stage.
 */
import { qiFromKif, quantize, roundToStep } from '../fixed/index.ts';
import type { Kif, OverflowMode, QInterval, RoundMode } from '../fixed/types.ts';
import { operandsOf } from '../ir/interval.ts';
import { liveWires } from './analysis.ts';
import type { Program } from '../ir/types.ts';
import { type Dyadic, type Fmt, dyadic, dyadicCode, fmtOf, pattern } from './fmt.ts';
import { type BusLayout, type InputField, inputLayout, outputLayout } from './layout.ts';

// ------------------------------------------------------------------------------------------------
// Netlist data

export type Expr =
  | { t: 'ref'; sig: string; hi: number; lo: number }
  | { t: 'const'; w: number; v: bigint }
  /** most significant part first */
  | { t: 'cat'; parts: Expr[] }
  /** sign- or zero-extension of a ref to w bits */
  | { t: 'ext'; a: Expr & { t: 'ref' }; w: number; signed: boolean }
  | { t: 'add' | 'sub' | 'mul' | 'and' | 'or'; a: Expr; b: Expr }
  | { t: 'neg' | 'not'; a: Expr };

export type NetBody =
  | { kind: 'assign'; e: Expr }
  /** sel (1 bit) ? a : b */
  | { kind: 'mux'; sel: Expr; a: Expr; b: Expr }
  /** 1 bit: signed(a) < signed(b) */
  | { kind: 'lts'; a: Expr; b: Expr }
  /** 1 bit: a != 0 */
  | { kind: 'nez'; a: Expr }
  /** table lookup on the bit pattern of sel; other patterns give 0 */
  | { kind: 'rom'; sel: Expr; entries: Array<[bigint, bigint]> }
  /** register clocked at the boundary into `stage` */
  | { kind: 'reg'; d: string };

export type Net = NetBody & { name: string; w: number; stage: number; comment?: string };

export interface Netlist {
  name: string;
  inWidth: number;
  outWidth: number;
  inputs: BusLayout<InputField>;
  outputs: BusLayout;
  nets: Net[];
  /** the output bus, an expression over nets of the last stage */
  out: Expr;
  /** number of stages; registers between consecutive stages; latency in cycles = stages − 1 */
  stages: number;
  /** signal name → per-bit used flags (for targeted lint waivers on bits known to be dropped) */
  used: Map<string, Uint8Array>;
}

export const IN_BUS = 'inp';
export const OUT_BUS = 'outp';

export function exprWidth(e: Expr): number {
  switch (e.t) {
    case 'ref':
      return e.hi - e.lo + 1;
    case 'const':
      return e.w;
    case 'cat':
      return e.parts.reduce((a, p) => a + exprWidth(p), 0);
    case 'ext':
      return e.w;
    case 'neg':
    case 'not':
      return exprWidth(e.a);
    default:
      return exprWidth(e.a);
  }
}

// ------------------------------------------------------------------------------------------------
// Operands: a signal slice with a format, or an exact constant

type Operand = { k: 'sig'; name: string; off: number; fmt: Fmt } | { k: 'const'; v: Dyadic };

function shifted(o: Operand, s: number): Operand {
  if (s === 0) return o;
  if (o.k === 'const') return { k: 'const', v: o.v.m === 0n ? o.v : { m: o.v.m, e: o.v.e + s } };
  return { ...o, fmt: { ...o.fmt, lsb: o.fmt.lsb + s } };
}

function lsbOf(o: Operand): number {
  if (o.k === 'sig') return o.fmt.lsb;
  return o.v.m === 0n ? Infinity : o.v.e;
}

function ref(name: string, hi: number, lo: number): Expr & { t: 'ref' } {
  return { t: 'ref', sig: name, hi, lo };
}

/** Extend (by sign or zero) or truncate an n-bit ref to w bits. */
function fit(r: Expr & { t: 'ref' }, signed: boolean, w: number): Expr {
  const n = r.hi - r.lo + 1;
  if (w <= n) return ref(r.sig, r.lo + w - 1, r.lo);
  if (!signed && n === 0) return { t: 'const', w, v: 0n };
  return { t: 'ext', a: r, w, signed };
}

/**
 * w-bit expression for value / 2^L of the operand (mod 2^w). Exact when the value is a multiple of 2^L
 * and fits; dropping low bits (lsb < L) is a floor.
 */
function resize(o: Operand, w: number, L: number): Expr {
  if (w <= 0) throw new Error('internal: resize to width 0');
  if (o.k === 'const') {
    const code = o.v.m === 0n ? 0n : floorCode(o.v, L);
    return { t: 'const', w, v: pattern(code, w) };
  }
  const f = o.fmt;
  const s = f.lsb - L;
  if (s >= 0) {
    if (w <= s) return { t: 'const', w, v: 0n };
    const body = fit(ref(o.name, o.off + f.w - 1, o.off), f.signed, w - s);
    return s === 0 ? body : { t: 'cat', parts: [body, { t: 'const', w: s, v: 0n }] };
  }
  const d = -s;
  if (d >= f.w) {
    if (!f.signed) return { t: 'const', w, v: 0n };
    return fit(ref(o.name, o.off + f.w - 1, o.off + f.w - 1), true, w);
  }
  return fit(ref(o.name, o.off + f.w - 1, o.off + d), f.signed, w);
}

function floorCode(v: Dyadic, L: number): bigint {
  const s = v.e - L;
  return s >= 0 ? v.m << BigInt(s) : v.m >> BigInt(-s);
}

function bitOf(o: Operand & { k: 'sig' }, i: number): Expr {
  return ref(o.name, o.off + i, o.off + i);
}

// ------------------------------------------------------------------------------------------------
// Lowering

export interface LowerOptions {
  /** 0 = combinational */
  latencyCutoff?: number;
  /** latency of every wire (from the IR's analyzer); required when latencyCutoff > 0 */
  latency?: ArrayLike<number>;
}

export function stageOf(latency: number, cutoff: number): number {
  if (!(cutoff > 0)) return 0;
  return Math.max(0, Math.ceil(latency / cutoff - 1e-9) - 1);
}

export function lowerProgram(p: Program, opts: LowerOptions = {}): Netlist {
  const cutoff = opts.latencyCutoff ?? 0;
  if (!(cutoff >= 0) || !Number.isFinite(cutoff)) throw new RangeError(`latencyCutoff must be a number >= 0, got ${cutoff}`);
  if (cutoff > 0 && !opts.latency) throw new Error('internal: lowerProgram needs per-wire latencies when latencyCutoff > 0');
  const ops = p.ops;
  const inputs = inputLayout(p);
  const outputs = outputLayout(p);

  for (let n = 0; n < ops.length; n++)
    for (const a of operandsOf(ops[n]!))
      if (!(a >= 0 && a < n)) throw new RangeError(`op ${n} (${ops[n]!.kind}) reads wire ${a}, which is not an earlier wire`);
  const live = liveWires(p);
  const known = knownConstants(p, live);
  const isConst = (n: number): boolean => known.has(n);

  const stage = new Int32Array(ops.length);
  for (let n = 0; n < ops.length; n++) {
    if (!live[n] || isConst(n)) continue;
    let s = cutoff > 0 ? stageOf(opts.latency![n]!, cutoff) : 0;
    for (const a of operandsOf(ops[n]!)) if (!isConst(a)) s = Math.max(s, stage[a]!);
    stage[n] = s;
  }
  let last = 0;
  for (let n = 0; n < ops.length; n++) if (live[n] && !isConst(n)) last = Math.max(last, stage[n]!);

  const nets: Net[] = [];
  const used = new Map<string, Uint8Array>();
  const declared = new Map<string, number>(); // name → width
  const regs = new Map<string, string>(); // `${n}@${t}` → name

  const addNet = (net: Net): void => {
    nets.push(net);
    declared.set(net.name, net.w);
  };
  const fmtCache: Array<Fmt | undefined> = new Array(ops.length);
  const fmtN = (n: number): Fmt => (fmtCache[n] ??= fmtOf(ops[n]!.qint));

  /** Operand for wire n as seen from stage t (registers inserted as needed). */
  const operand = (n: number, t: number): Operand => {
    const c = known.get(n);
    if (c !== undefined) return { k: 'const', v: dyadic(c) };
    let name = `v${n}`;
    for (let s = stage[n]! + 1; s <= t; s++) {
      const key = `${n}@${s}`;
      let r = regs.get(key);
      if (!r) {
        r = `v${n}_s${s}`;
        regs.set(key, r);
        addNet({ name: r, w: fmtN(n).w, stage: s, kind: 'reg', d: name });
      }
      name = r;
    }
    return { k: 'sig', name, off: 0, fmt: fmtN(n) };
  };

  for (let n = 0; n < ops.length; n++) {
    if (!live[n] || isConst(n)) continue;
    const op = ops[n]!;
    const t = stage[n]!;
    const vf = fmtN(n);
    const name = `v${n}`;
    const tmp = (suffix: string, w: number, body: NetBody): Operand & { k: 'sig' } => {
      const nm = `${name}_${suffix}`;
      addNet({ name: nm, w, stage: t, ...body } as Net);
      return { k: 'sig', name: nm, off: 0, fmt: { w, lsb: 0, signed: false } };
    };
    const emit = (body: NetBody, comment?: string): void => addNet({ name, w: vf.w, stage: t, comment, ...body } as Net);
    /** wire = value of an arithmetic result computed mod 2^N at lsb L (N = wire bits + dropped low bits) */
    const arith = (L: number, make: (N: number) => Expr, comment: string): void => {
      const N = vf.w + vf.lsb - L;
      if (N === vf.w) return emit({ kind: 'assign', e: make(N) }, comment);
      const raw = tmp('t', N, { kind: 'assign', e: make(N) });
      emit({ kind: 'assign', e: resize({ ...raw, fmt: { w: N, lsb: L, signed: vf.signed } }, vf.w, vf.lsb) }, comment);
    };
    switch (op.kind) {
      case 'input': {
        // the port holds the field's type; quantizing it to this op's type is the identity unless the
        // element is shared by several types (or SAT_SYM excludes the most negative code)
        const fld = inputs.fields[op.index]!;
        const port: Operand & { k: 'sig' } = { k: 'sig', name: IN_BUS, off: fld.offset, fmt: fld };
        lowerQuant({ type: op.type, round: op.round, overflow: op.overflow, src: qiFromKif(fld.type!) }, port, vf, tmp, emit, `input ${op.index}`);
        break;
      }
      case 'copy':
        emit({ kind: 'assign', e: resize(shifted(operand(op.a, t), op.shift), vf.w, vf.lsb) }, `v${op.a} * 2^${op.shift}`);
        break;
      case 'add': {
        const a = operand(op.a, t);
        const b = shifted(operand(op.b, t), op.shift);
        const L = Math.min(lsbOf(a), lsbOf(b), vf.lsb);
        arith(L, (N) => ({ t: op.sub ? 'sub' : 'add', a: resize(a, N, L), b: resize(b, N, L) }), `v${op.a} ${op.sub ? '-' : '+'} v${op.b} * 2^${op.shift}`);
        break;
      }
      case 'addc': {
        const a = operand(op.a, t);
        const c: Operand = { k: 'const', v: dyadic(op.value) };
        const L = Math.min(lsbOf(a), lsbOf(c), vf.lsb);
        arith(L, (N) => ({ t: 'add', a: resize(a, N, L), b: resize(c, N, L) }), `v${op.a} + ${op.value}`);
        break;
      }
      case 'neg': {
        const a = operand(op.a, t);
        const L = Math.min(lsbOf(a), vf.lsb);
        arith(L, (N) => ({ t: 'neg', a: resize(a, N, L) }), `-v${op.a}`);
        break;
      }
      case 'mul': {
        const a = operand(op.a, t);
        const b = operand(op.b, t);
        const L = Math.min(lsbOf(a) + lsbOf(b), vf.lsb);
        // codes multiply at lsb la+lb; mod 2^N of the product only needs the operands mod 2^N
        const la = lsbOf(a);
        const lb = lsbOf(b);
        arith(L, (N) => ({ t: 'mul', a: resize(a, N, la), b: resize(shifted(b, la + lb - L), N, lb) }), `v${op.a} * v${op.b}`);
        break;
      }
      case 'relu': {
        const a = operand(op.a, t) as Operand & { k: 'sig' };
        if (!a.fmt.signed) emit({ kind: 'assign', e: resize(a, vf.w, vf.lsb) }, `relu(v${op.a})`);
        else emit({ kind: 'mux', sel: bitOf(a, a.fmt.w - 1), a: { t: 'const', w: vf.w, v: 0n }, b: resize(a, vf.w, vf.lsb) }, `relu(v${op.a})`);
        break;
      }
      case 'mux': {
        const c = operand(op.cond, t);
        const a = operand(op.a, t);
        const b = operand(op.b, t);
        if (c.k === 'const' || !c.fmt.signed) {
          const neg = c.k === 'const' && c.v.m < 0n;
          emit({ kind: 'assign', e: resize(neg ? a : b, vf.w, vf.lsb) }, `mux(v${op.cond}) constant select`);
        } else emit({ kind: 'mux', sel: bitOf(c, c.fmt.w - 1), a: resize(a, vf.w, vf.lsb), b: resize(b, vf.w, vf.lsb) }, `v${op.cond} < 0 ? v${op.a} : v${op.b}`);
        break;
      }
      case 'min':
      case 'max': {
        const a = operand(op.a, t);
        const b = operand(op.b, t);
        const L = Math.min(lsbOf(a), lsbOf(b));
        const cw = Math.max(cmpWidth(a, L), cmpWidth(b, L));
        const lt = tmp('lt', 1, { kind: 'lts', a: resizeSigned(a, cw, L), b: resizeSigned(b, cw, L) });
        const [x, y] = op.kind === 'min' ? [a, b] : [b, a];
        emit({ kind: 'mux', sel: ref(lt.name, 0, 0), a: resize(x, vf.w, vf.lsb), b: resize(y, vf.w, vf.lsb) }, `${op.kind}(v${op.a}, v${op.b})`);
        break;
      }
      case 'lut': {
        const a = operand(op.a, t) as Operand & { k: 'sig' };
        const qa = ops[op.a]!.qint;
        const count = Math.round((qa.max - qa.min) / qa.step) + 1;
        if (op.table.length !== count)
          throw new RangeError(`op ${n} (lut): table has ${op.table.length} entries, wire ${op.a} takes ${count} values`);
        const entries: Array<[bigint, bigint]> = [];
        for (let j = 0; j < count; j++) {
          const x = qa.min + j * qa.step;
          const y = op.table[j]!;
          if (y === 0) continue; // the default
          entries.push([pattern(dyadicCode(dyadic(x), a.fmt.lsb), a.fmt.w), pattern(dyadicCode(dyadic(y), vf.lsb), vf.w)]);
        }
        emit({ kind: 'rom', sel: resize(a, a.fmt.w, a.fmt.lsb), entries }, `table(v${op.a})`);
        break;
      }
      case 'quant':
        lowerQuant({ type: op.type, round: op.round, overflow: op.overflow, src: ops[op.a]!.qint }, operand(op.a, t) as Operand & { k: 'sig' }, vf, tmp, emit, `quant(v${op.a}, <${op.type.k},${op.type.i},${op.type.f}> ${op.round} ${op.overflow})`);
        break;
      case 'const':
        break; // unreachable: constants are literals
      default:
        throw new RangeError(`op ${n}: unknown op kind ${(op as { kind: string }).kind}`);
    }
  }

  // output bus, MSB first
  const parts: Expr[] = [];
  outputs.fields.forEach((fld, j) => {
    if (fld.w === 0) return;
    const o = p.out[j]!;
    const src = shifted(operand(o.wire, last), o.shift);
    if (!o.neg) parts.push(resize(src, fld.w, fld.lsb));
    else if (src.k === 'const') parts.push({ t: 'const', w: fld.w, v: pattern(-dyadicCode(src.v, fld.lsb), fld.w) });
    else {
      const nm = `o${j}_neg`;
      addNet({ name: nm, w: fld.w, stage: last, kind: 'assign', e: { t: 'neg', a: resize(src, fld.w, fld.lsb) }, comment: `output ${j} = -v${o.wire}` });
      parts.push(ref(nm, fld.w - 1, 0));
    }
  });
  parts.reverse();
  const out: Expr = parts.length === 0 ? { t: 'const', w: 1, v: 0n } : parts.length === 1 ? parts[0]! : { t: 'cat', parts };

  // used-bit bookkeeping (for lint waivers where bits are legitimately dropped)
  used.set(IN_BUS, new Uint8Array(Math.max(1, inputs.width)));
  for (const [nm, w] of declared) used.set(nm, new Uint8Array(w));
  const mark = (e: Expr): void => {
    switch (e.t) {
      case 'ref': {
        const u = used.get(e.sig);
        if (u) u.fill(1, e.lo, e.hi + 1);
        return;
      }
      case 'const':
        return;
      case 'cat':
        return e.parts.forEach(mark);
      case 'ext':
        return mark(e.a);
      case 'neg':
      case 'not':
        return mark(e.a);
      default:
        mark(e.a);
        mark(e.b);
    }
  };
  for (const net of nets) {
    switch (net.kind) {
      case 'assign':
        mark(net.e);
        break;
      case 'mux':
        mark(net.sel);
        mark(net.a);
        mark(net.b);
        break;
      case 'lts':
        mark(net.a);
        mark(net.b);
        break;
      case 'nez':
        mark(net.a);
        break;
      case 'rom':
        mark(net.sel);
        break;
      case 'reg':
        mark(ref(net.d, net.w - 1, 0));
        break;
    }
  }
  mark(out);

  return {
    name: p.name,
    inWidth: inputs.width,
    outWidth: outputs.width,
    inputs,
    outputs,
    nets,
    out,
    stages: last + 1,
    used,
  };
}



/**
 * Constant wires and their values: constant intervals, and live ops on constants only (e.g. a WRAP quant
 * of a constant has the whole type's range as interval but one value). They become literals in hardware.
 */
export function knownConstants(p: Program, live: Uint8Array): Map<number, number> {
  const ops = p.ops;
  const known = new Map<number, number>();
  for (let n = 0; n < ops.length; n++) {
    const op = ops[n]!;
    if (op.qint.min === op.qint.max) known.set(n, op.qint.min);
    else if (op.kind !== 'input' && live[n]) {
      const args = operandsOf(op);
      if (args.every((a) => known.has(a))) known.set(n, constEval(op, args.map((a) => known.get(a)!), args.length ? ops[args[0]!]!.qint : op.qint));
    }
  }
  return known;
}

/** Value of an op whose operands are all constants. */
function constEval(op: Program['ops'][number], v: number[], qa: QInterval): number {
  const [a = 0, b = 0, c = 0] = v;
  switch (op.kind) {
    case 'const':
      return op.value;
    case 'copy':
      return a * 2 ** op.shift;
    case 'add':
      return op.sub ? a - b * 2 ** op.shift : a + b * 2 ** op.shift;
    case 'neg':
      return -a + 0;
    case 'addc':
      return a + op.value;
    case 'relu':
      return Math.max(a, 0);
    case 'quant':
      return quantize(a, op.type, op.round, op.overflow);
    case 'mux':
      return a < 0 ? b : c;
    case 'mul':
      return a * b + 0;
    case 'lut':
      return op.table[Math.round((a - qa.min) / qa.step)]!;
    case 'min':
      return Math.min(a, b);
    case 'max':
      return Math.max(a, b);
    case 'input':
      throw new Error('internal: input is never constant-folded');
  }
}

/** Bits of a signed format at lsb L holding every value of the operand. */
function cmpWidth(o: Operand, L: number): number {
  if (o.k === 'const') {
    const c = floorCode(o.v, L);
    let w = 1;
    while (c < -(1n << BigInt(w - 1)) || c >= 1n << BigInt(w - 1)) w++;
    return w;
  }
  return o.fmt.w + (o.fmt.lsb - L) + (o.fmt.signed ? 0 : 1);
}

/** resize, but a signal is extended per its own signedness (the name says the result is read as signed). */
function resizeSigned(o: Operand, w: number, L: number): Expr {
  return resize(o, w, L);
}

type Tmp = (suffix: string, w: number, body: NetBody) => Operand & { k: 'sig' };

/**
 * Quantize (DESIGN.md §2, exactly as src/fixed/quantize): round the dropped low bits per mode, then wrap or
 * saturate. SAT clips before rounding in the definition; clipping after rounding gives the same values
 * because rounding is monotone and leaves the range ends (on the grid) unchanged.
 */
interface QuantSpec {
  type: Kif;
  round: RoundMode;
  overflow: OverflowMode;
  /** interval of the source (decides which rounding/overflow logic can matter) */
  src: QInterval;
}

function lowerQuant(op: QuantSpec, a: Operand & { k: 'sig' }, vf: Fmt, tmp: Tmp, emit: (b: NetBody, c?: string) => void, comment: string): void {
  const T = op.type;
  const tl = -T.f;
  const W = T.k + T.i + T.f;
  let src = a;
  // 1. round to lsb tl: R (rw bits at lsb tl, signed like the source)
  let R: Operand & { k: 'sig' };
  if (src.fmt.lsb === tl) R = src;
  else if (src.fmt.lsb > tl) {
    const rw = src.fmt.w + src.fmt.lsb - tl;
    R = { ...tmp('r', rw, { kind: 'assign', e: resize(src, rw, tl) }), fmt: { w: rw, lsb: tl, signed: src.fmt.signed } };
  } else {
    const d = tl - src.fmt.lsb;
    if (src.fmt.w < d + 1) {
      const xw = d + 1;
      src = { ...tmp('x', xw, { kind: 'assign', e: resize(src, xw, src.fmt.lsb) }), fmt: { w: xw, lsb: src.fmt.lsb, signed: src.fmt.signed } };
    }
    const wa = src.fmt.w;
    const flw = wa - d;
    const neg: Expr = src.fmt.signed ? bitOf(src, wa - 1) : { t: 'const', w: 1, v: 0n };
    const half = bitOf(src, d - 1);
    const restNet = (): Expr => (d >= 2 ? ref(tmp('rest', 1, { kind: 'nez', a: ref(src.name, src.off + d - 2, src.off) }).name, 0, 0) : { t: 'const', w: 1, v: 0n });
    let inc: Expr | null;
    switch (op.round) {
      case 'TRN':
        inc = null;
        break;
      case 'TRN_ZERO':
        inc = src.fmt.signed ? { t: 'and', a: neg, b: ref(tmp('any', 1, { kind: 'nez', a: ref(src.name, src.off + d - 1, src.off) }).name, 0, 0) } : null;
        break;
      case 'RND':
        inc = half;
        break;
      case 'RND_CONV':
        inc = { t: 'and', a: half, b: { t: 'or', a: restNet(), b: bitOf(src, d) } };
        break;
      case 'RND_ZERO':
        inc = { t: 'and', a: half, b: { t: 'or', a: restNet(), b: neg } };
        break;
      case 'RND_MIN_INF':
        inc = { t: 'and', a: half, b: restNet() };
        break;
      case 'RND_INF':
        inc = { t: 'and', a: half, b: { t: 'or', a: restNet(), b: { t: 'not', a: neg } } };
        break;
      default:
        throw new RangeError(`unknown rounding mode ${String(op.round)}`);
    }
    const floorRef = ref(src.name, src.off + wa - 1, src.off + d);
    if (inc === null) R = { k: 'sig', name: src.name, off: src.off + d, fmt: { w: flw, lsb: tl, signed: src.fmt.signed } };
    else {
      const rw = flw + 1;
      const incE: Expr = { t: 'cat', parts: [{ t: 'const', w: rw - 1, v: 0n }, inc] };
      R = { ...tmp('r', rw, { kind: 'assign', e: { t: 'add', a: fit(floorRef, src.fmt.signed, rw), b: incE } }), fmt: { w: rw, lsb: tl, signed: src.fmt.signed } };
    }
  }
  // 2. overflow, only where the rounded source range can leave the type's range
  const qa = op.src;
  const rmin = BigInt(roundToStep(qa.min, T.f, op.round) * 2 ** T.f);
  const rmax = BigInt(roundToStep(qa.max, T.f, op.round) * 2 ** T.f);
  const top = 1n << BigInt(T.i + T.f);
  const hi = top - 1n;
  const lo = T.k === 0 ? 0n : op.overflow === 'SAT_SYM' ? -hi : -top;
  if (rmin >= lo && rmax <= hi) return emit({ kind: 'assign', e: resize(R, vf.w, vf.lsb) }, comment);
  if (op.overflow === 'WRAP') {
    // keep the low W bits, read as signed when k = 1
    const wr: Operand = { k: 'sig', name: R.name, off: R.off, fmt: { w: R.fmt.w, lsb: tl, signed: R.fmt.signed } };
    const wrapped = W <= R.fmt.w ? { ...wr, fmt: { w: W, lsb: tl, signed: T.k === 1 } } : { ...tmp('w', W, { kind: 'assign', e: resize(wr, W, tl) }), fmt: { w: W, lsb: tl, signed: T.k === 1 } };
    return emit({ kind: 'assign', e: resize(wrapped, vf.w, vf.lsb) }, comment);
  }
  const cw = Math.max(R.fmt.w + (R.fmt.signed ? 0 : 1), W + 1);
  const Rc = resize(R, cw, tl);
  const code = (c: bigint): Expr => ({ t: 'const', w: vf.w, v: pattern(dyadicCode({ m: c, e: tl }, vf.lsb), vf.w) });
  let inner: Expr = resize(R, vf.w, vf.lsb);
  if (rmin < lo) {
    const lt = tmp('under', 1, { kind: 'lts', a: Rc, b: { t: 'const', w: cw, v: pattern(lo, cw) } });
    if (rmax > hi) {
      const m = tmp('m', vf.w, { kind: 'mux', sel: ref(lt.name, 0, 0), a: code(lo), b: inner });
      inner = ref(m.name, vf.w - 1, 0);
    } else return emit({ kind: 'mux', sel: ref(lt.name, 0, 0), a: code(lo), b: inner }, comment);
  }
  const gt = tmp('over', 1, { kind: 'lts', a: { t: 'const', w: cw, v: pattern(hi, cw) }, b: Rc });
  emit({ kind: 'mux', sel: ref(gt.name, 0, 0), a: code(hi), b: inner }, comment);
}

