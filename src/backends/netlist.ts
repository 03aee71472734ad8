/**
 * Lowering of an IR program to a language-neutral, bit-exact, pipelined netlist; the Verilog and VHDL
 * printers only spell it out. Every net has an explicit width; every operand is explicitly aligned
 * (shifted by its step), sign- or zero-extended, or truncated (modular arithmetic: a result known to fit
 * in w bits is computed mod 2^w). Ops whose result is a constant (including pruned, zero-width wires)
 * become literals; ops no output depends on are dropped.
 *
 * Pipelining (docs/rtl.md §4): with latencyCutoff c > 0, a wire of latency l lives in stage
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
  const inputs = inputLayout(p);
  const outputs = outputLayout(p);
  checkOperandOrder(p);
  const live = liveWires(p);
  const known = knownConstants(p, live);
  const { stage, last } = assignStages(p, live, known, cutoff, opts.latency);
  const lw = new Lowering(p, inputs, known, stage);
  for (let n = 0; n < p.ops.length; n++) if (live[n] && !known.has(n)) lw.lowerOp(n);
  const out = lw.outputBus(outputs, last);
  return {
    name: p.name,
    inWidth: inputs.width,
    outWidth: outputs.width,
    inputs,
    outputs,
    nets: lw.nets,
    out,
    stages: last + 1,
    used: usedBits(lw.nets, lw.declared, inputs.width, out),
  };
}

function checkOperandOrder(p: Program): void {
  const ops = p.ops;
  for (let n = 0; n < ops.length; n++)
    for (const a of operandsOf(ops[n]!))
      if (!(a >= 0 && a < n)) throw new RangeError(`op ${n} (${ops[n]!.kind}) reads wire ${a}, which is not an earlier wire`);
}

/** Each computed wire's pipeline stage (stageOf its latency, at least its operands' stages) and the last stage. */
function assignStages(
  p: Program,
  live: Uint8Array,
  known: Map<number, number>,
  cutoff: number,
  latency: ArrayLike<number> | undefined,
): { stage: Int32Array; last: number } {
  const ops = p.ops;
  const stage = new Int32Array(ops.length);
  for (let n = 0; n < ops.length; n++) {
    if (!live[n] || known.has(n)) continue;
    let s = cutoff > 0 ? stageOf(latency![n]!, cutoff) : 0;
    for (const a of operandsOf(ops[n]!)) if (!known.has(a)) s = Math.max(s, stage[a]!);
    stage[n] = s;
  }
  let last = 0;
  for (let n = 0; n < ops.length; n++) if (live[n] && !known.has(n)) last = Math.max(last, stage[n]!);
  return { stage, last };
}

type Tmp = (suffix: string, w: number, body: NetBody) => Operand & { k: 'sig' };
type Emit = (body: NetBody, comment?: string) => void;

/** Where one op's nets go: its stage, its wire's format, helper nets (`v<n>_<suffix>`) and the wire's own net. */
interface OpSink {
  t: number;
  vf: Fmt;
  tmp: Tmp;
  emit: Emit;
}

/** The nets of a program, op by op; registers appear where a value is read in a later stage than its own. */
class Lowering {
  readonly nets: Net[] = [];
  /** net name → width */
  readonly declared = new Map<string, number>();
  /** `${n}@${t}` → register name */
  private readonly regs = new Map<string, string>();
  private readonly fmtCache: Array<Fmt | undefined>;

  constructor(
    private readonly p: Program,
    private readonly inputs: BusLayout<InputField>,
    private readonly known: Map<number, number>,
    private readonly stage: Int32Array,
  ) {
    this.fmtCache = new Array(p.ops.length);
  }

  private addNet(net: Net): void {
    this.nets.push(net);
    this.declared.set(net.name, net.w);
  }

  private fmtN(n: number): Fmt {
    return (this.fmtCache[n] ??= fmtOf(this.p.ops[n]!.qint));
  }

  /** Operand for wire n as seen from stage t (registers inserted as needed). */
  private operand(n: number, t: number): Operand {
    const c = this.known.get(n);
    if (c !== undefined) return { k: 'const', v: dyadic(c) };
    let name = `v${n}`;
    for (let s = this.stage[n]! + 1; s <= t; s++) {
      const key = `${n}@${s}`;
      let r = this.regs.get(key);
      if (!r) {
        r = `v${n}_s${s}`;
        this.regs.set(key, r);
        this.addNet({ name: r, w: this.fmtN(n).w, stage: s, kind: 'reg', d: name });
      }
      name = r;
    }
    return { k: 'sig', name, off: 0, fmt: this.fmtN(n) };
  }

  private sink(n: number): OpSink {
    const t = this.stage[n]!;
    const vf = this.fmtN(n);
    const name = `v${n}`;
    const tmp: Tmp = (suffix, w, body) => {
      const nm = `${name}_${suffix}`;
      this.addNet({ name: nm, w, stage: t, ...body } as Net);
      return { k: 'sig', name: nm, off: 0, fmt: { w, lsb: 0, signed: false } };
    };
    const emit: Emit = (body, comment) => this.addNet({ name, w: vf.w, stage: t, comment, ...body } as Net);
    return { t, vf, tmp, emit };
  }

  lowerOp(n: number): void {
    const op = this.p.ops[n]!;
    const o = this.sink(n);
    const { t, vf, emit } = o;
    switch (op.kind) {
      case 'input': {
        // the port holds the field's type; quantizing it to this op's type is the identity unless the
        // element is shared by several types (or SAT_SYM excludes the most negative code)
        const fld = this.inputs.fields[op.index]!;
        const port: Operand & { k: 'sig' } = { k: 'sig', name: IN_BUS, off: fld.offset, fmt: fld };
        lowerQuant(
          { type: op.type, round: op.round, overflow: op.overflow, src: qiFromKif(fld.type!) },
          port,
          o,
          `input ${op.index}`,
        );
        return;
      }
      case 'copy':
        emit({ kind: 'assign', e: resize(shifted(this.operand(op.a, t), op.shift), vf.w, vf.lsb) }, `v${op.a} * 2^${op.shift}`);
        return;
      case 'add': {
        const a = this.operand(op.a, t);
        const b = shifted(this.operand(op.b, t), op.shift);
        const L = Math.min(lsbOf(a), lsbOf(b), vf.lsb);
        const what = `v${op.a} ${op.sub ? '-' : '+'} v${op.b} * 2^${op.shift}`;
        arith(o, L, (N) => ({ t: op.sub ? 'sub' : 'add', a: resize(a, N, L), b: resize(b, N, L) }), what);
        return;
      }
      case 'addc': {
        const a = this.operand(op.a, t);
        const c: Operand = { k: 'const', v: dyadic(op.value) };
        const L = Math.min(lsbOf(a), lsbOf(c), vf.lsb);
        arith(o, L, (N) => ({ t: 'add', a: resize(a, N, L), b: resize(c, N, L) }), `v${op.a} + ${op.value}`);
        return;
      }
      case 'neg': {
        const a = this.operand(op.a, t);
        const L = Math.min(lsbOf(a), vf.lsb);
        arith(o, L, (N) => ({ t: 'neg', a: resize(a, N, L) }), `-v${op.a}`);
        return;
      }
      case 'mul':
        this.mul(op, o);
        return;
      case 'relu':
        this.relu(op, o);
        return;
      case 'mux':
        this.mux(op, o);
        return;
      case 'min':
      case 'max':
        this.minMax(op, o);
        return;
      case 'lut':
        this.lookup(n, op, o);
        return;
      case 'quant': {
        const spec = { type: op.type, round: op.round, overflow: op.overflow, src: this.p.ops[op.a]!.qint };
        const what = `quant(v${op.a}, <${op.type.k},${op.type.i},${op.type.f}> ${op.round} ${op.overflow})`;
        lowerQuant(spec, this.operand(op.a, t) as Operand & { k: 'sig' }, o, what);
        return;
      }
      case 'const':
        return; // unreachable: constants are literals
      default:
        throw new RangeError(`op ${n}: unknown op kind ${(op as { kind: string }).kind}`);
    }
  }

  private mul(op: OpOf<'mul'>, o: OpSink): void {
    const a = this.operand(op.a, o.t);
    const b = this.operand(op.b, o.t);
    const L = Math.min(lsbOf(a) + lsbOf(b), o.vf.lsb);
    // codes multiply at lsb la+lb; mod 2^N of the product only needs the operands mod 2^N
    const la = lsbOf(a);
    const lb = lsbOf(b);
    arith(o, L, (N) => ({ t: 'mul', a: resize(a, N, la), b: resize(shifted(b, la + lb - L), N, lb) }), `v${op.a} * v${op.b}`);
  }

  private relu(op: OpOf<'relu'>, { t, vf, emit }: OpSink): void {
    const a = this.operand(op.a, t) as Operand & { k: 'sig' };
    if (!a.fmt.signed) emit({ kind: 'assign', e: resize(a, vf.w, vf.lsb) }, `relu(v${op.a})`);
    else
      emit(
        { kind: 'mux', sel: bitOf(a, a.fmt.w - 1), a: { t: 'const', w: vf.w, v: 0n }, b: resize(a, vf.w, vf.lsb) },
        `relu(v${op.a})`,
      );
  }

  private mux(op: OpOf<'mux'>, { t, vf, emit }: OpSink): void {
    const c = this.operand(op.cond, t);
    const a = this.operand(op.a, t);
    const b = this.operand(op.b, t);
    if (c.k === 'const' || !c.fmt.signed) {
      const neg = c.k === 'const' && c.v.m < 0n;
      emit({ kind: 'assign', e: resize(neg ? a : b, vf.w, vf.lsb) }, `mux(v${op.cond}) constant select`);
    } else {
      const body: NetBody = { kind: 'mux', sel: bitOf(c, c.fmt.w - 1), a: resize(a, vf.w, vf.lsb), b: resize(b, vf.w, vf.lsb) };
      emit(body, `v${op.cond} < 0 ? v${op.a} : v${op.b}`);
    }
  }

  private minMax(op: OpOf<'min' | 'max'>, { t, vf, tmp, emit }: OpSink): void {
    const a = this.operand(op.a, t);
    const b = this.operand(op.b, t);
    const L = Math.min(lsbOf(a), lsbOf(b));
    const cw = Math.max(cmpWidth(a, L), cmpWidth(b, L));
    const lt = tmp('lt', 1, { kind: 'lts', a: resizeSigned(a, cw, L), b: resizeSigned(b, cw, L) });
    const [x, y] = op.kind === 'min' ? [a, b] : [b, a];
    const body: NetBody = { kind: 'mux', sel: ref(lt.name, 0, 0), a: resize(x, vf.w, vf.lsb), b: resize(y, vf.w, vf.lsb) };
    emit(body, `${op.kind}(v${op.a}, v${op.b})`);
  }

  /** A ROM on the operand's bit pattern; entries whose value is 0 are left to the default. */
  private lookup(n: number, op: OpOf<'lut'>, { t, vf, emit }: OpSink): void {
    const a = this.operand(op.a, t) as Operand & { k: 'sig' };
    const qa = this.p.ops[op.a]!.qint;
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
  }

  /** The output bus, MSB first: every output field read in the last stage (negated outputs get a net of their own). */
  outputBus(outputs: BusLayout, last: number): Expr {
    const parts: Expr[] = [];
    outputs.fields.forEach((fld, j) => {
      if (fld.w === 0) return;
      const o = this.p.out[j]!;
      const src = shifted(this.operand(o.wire, last), o.shift);
      if (!o.neg) parts.push(resize(src, fld.w, fld.lsb));
      else if (src.k === 'const') parts.push({ t: 'const', w: fld.w, v: pattern(-dyadicCode(src.v, fld.lsb), fld.w) });
      else {
        const nm = `o${j}_neg`;
        const e: Expr = { t: 'neg', a: resize(src, fld.w, fld.lsb) };
        this.addNet({ name: nm, w: fld.w, stage: last, kind: 'assign', e, comment: `output ${j} = -v${o.wire}` });
        parts.push(ref(nm, fld.w - 1, 0));
      }
    });
    parts.reverse();
    return parts.length === 0 ? { t: 'const', w: 1, v: 0n } : parts.length === 1 ? parts[0]! : { t: 'cat', parts };
  }
}

type OpOf<K extends Program['ops'][number]['kind']> = Extract<Program['ops'][number], { kind: K }>;

/** Wire = value of an arithmetic result computed mod 2^N at lsb L (N = wire bits + dropped low bits). */
function arith({ vf, tmp, emit }: OpSink, L: number, make: (N: number) => Expr, comment: string): void {
  const N = vf.w + vf.lsb - L;
  if (N === vf.w) {
    emit({ kind: 'assign', e: make(N) }, comment);
    return;
  }
  const raw = tmp('t', N, { kind: 'assign', e: make(N) });
  emit({ kind: 'assign', e: resize({ ...raw, fmt: { w: N, lsb: L, signed: vf.signed } }, vf.w, vf.lsb) }, comment);
}

/** Per signal, which bits some net or the output bus reads (for lint waivers where bits are legitimately dropped). */
function usedBits(nets: Net[], declared: Map<string, number>, inWidth: number, out: Expr): Map<string, Uint8Array> {
  const used = new Map<string, Uint8Array>();
  used.set(IN_BUS, new Uint8Array(Math.max(1, inWidth)));
  for (const [nm, w] of declared) used.set(nm, new Uint8Array(w));
  const mark = (e: Expr): void => {
    switch (e.t) {
      case 'ref':
        used.get(e.sig)?.fill(1, e.lo, e.hi + 1);
        return;
      case 'const':
        return;
      case 'cat':
        for (const part of e.parts) mark(part);
        return;
      case 'ext':
      case 'neg':
      case 'not':
        mark(e.a);
        return;
      default:
        mark(e.a);
        mark(e.b);
    }
  };
  for (const net of nets) for (const e of netInputs(net)) mark(e);
  mark(out);
  return used;
}

/** The expressions a net reads. */
function netInputs(net: Net): Expr[] {
  switch (net.kind) {
    case 'assign':
      return [net.e];
    case 'mux':
      return [net.sel, net.a, net.b];
    case 'lts':
      return [net.a, net.b];
    case 'nez':
      return [net.a];
    case 'rom':
      return [net.sel];
    case 'reg':
      return [ref(net.d, net.w - 1, 0)];
  }
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
      if (args.every((a) => known.has(a)))
        known.set(
          n,
          constEval(
            op,
            args.map((a) => known.get(a)!),
            args.length ? ops[args[0]!]!.qint : op.qint,
          ),
        );
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

/**
 * Quantize (docs/fixed-point.md §2–3, exactly as src/fixed/quantize): round the dropped low bits per mode, then wrap or
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

function lowerQuant(op: QuantSpec, a: Operand & { k: 'sig' }, o: OpSink, comment: string): void {
  const R = roundToLsb(op, a, o.tmp);
  overflowToType(op, R, o, comment);
}

/** Step 1: R = the source rounded to lsb −f (signed like the source), a slice of it or a new net. */
function roundToLsb(op: QuantSpec, a: Operand & { k: 'sig' }, tmp: Tmp): Operand & { k: 'sig' } {
  const tl = -op.type.f;
  let src = a;
  if (src.fmt.lsb === tl) return src;
  if (src.fmt.lsb > tl) {
    const rw = src.fmt.w + src.fmt.lsb - tl;
    return { ...tmp('r', rw, { kind: 'assign', e: resize(src, rw, tl) }), fmt: { w: rw, lsb: tl, signed: src.fmt.signed } };
  }
  const d = tl - src.fmt.lsb;
  if (src.fmt.w < d + 1) {
    const xw = d + 1;
    const body: NetBody = { kind: 'assign', e: resize(src, xw, src.fmt.lsb) };
    src = { ...tmp('x', xw, body), fmt: { w: xw, lsb: src.fmt.lsb, signed: src.fmt.signed } };
  }
  const wa = src.fmt.w;
  const flw = wa - d;
  const inc = roundUpBit(op.round, src, d, tmp);
  const floorRef = ref(src.name, src.off + wa - 1, src.off + d);
  if (inc === null) return { k: 'sig', name: src.name, off: src.off + d, fmt: { w: flw, lsb: tl, signed: src.fmt.signed } };
  const rw = flw + 1;
  const incE: Expr = { t: 'cat', parts: [{ t: 'const', w: rw - 1, v: 0n }, inc] };
  const body: NetBody = { kind: 'assign', e: { t: 'add', a: fit(floorRef, src.fmt.signed, rw), b: incE } };
  return { ...tmp('r', rw, body), fmt: { w: rw, lsb: tl, signed: src.fmt.signed } };
}

/**
 * The 1-bit "add one to the floor" of dropping the d low bits of src under a rounding mode (null: never, TRN).
 * From the half bit (d−1), the bits below it (rest), the sign and the kept lsb (bit d).
 */
function roundUpBit(round: RoundMode, src: Operand & { k: 'sig' }, d: number, tmp: Tmp): Expr | null {
  const wa = src.fmt.w;
  const neg: Expr = src.fmt.signed ? bitOf(src, wa - 1) : { t: 'const', w: 1, v: 0n };
  const half = bitOf(src, d - 1);
  const restNet = (): Expr =>
    d >= 2
      ? ref(tmp('rest', 1, { kind: 'nez', a: ref(src.name, src.off + d - 2, src.off) }).name, 0, 0)
      : { t: 'const', w: 1, v: 0n };
  switch (round) {
    case 'TRN':
      return null;
    case 'TRN_ZERO':
      if (!src.fmt.signed) return null;
      return { t: 'and', a: neg, b: ref(tmp('any', 1, { kind: 'nez', a: ref(src.name, src.off + d - 1, src.off) }).name, 0, 0) };
    case 'RND':
      return half;
    case 'RND_CONV':
      return { t: 'and', a: half, b: { t: 'or', a: restNet(), b: bitOf(src, d) } };
    case 'RND_ZERO':
      return { t: 'and', a: half, b: { t: 'or', a: restNet(), b: neg } };
    case 'RND_MIN_INF':
      return { t: 'and', a: half, b: restNet() };
    case 'RND_INF':
      return { t: 'and', a: half, b: { t: 'or', a: restNet(), b: { t: 'not', a: neg } } };
    default:
      throw new RangeError(`unknown rounding mode ${String(round)}`);
  }
}

/** Step 2: overflow, only where the rounded source range can leave the type's range: WRAP keeps the low W bits, SAT muxes in the ends. */
function overflowToType(op: QuantSpec, R: Operand & { k: 'sig' }, { vf, tmp, emit }: OpSink, comment: string): void {
  const T = op.type;
  const tl = -T.f;
  const W = T.k + T.i + T.f;
  const qa = op.src;
  const rmin = BigInt(roundToStep(qa.min, T.f, op.round) * 2 ** T.f);
  const rmax = BigInt(roundToStep(qa.max, T.f, op.round) * 2 ** T.f);
  const top = 1n << BigInt(T.i + T.f);
  const hi = top - 1n;
  const lo = T.k === 0 ? 0n : op.overflow === 'SAT_SYM' ? -hi : -top;
  if (rmin >= lo && rmax <= hi) {
    emit({ kind: 'assign', e: resize(R, vf.w, vf.lsb) }, comment);
    return;
  }
  if (op.overflow === 'WRAP') {
    // keep the low W bits, read as signed when k = 1
    const wr: Operand = { k: 'sig', name: R.name, off: R.off, fmt: { w: R.fmt.w, lsb: tl, signed: R.fmt.signed } };
    const wrappedFmt = { w: W, lsb: tl, signed: T.k === 1 };
    const wrapped =
      W <= R.fmt.w ? { ...wr, fmt: wrappedFmt } : { ...tmp('w', W, { kind: 'assign', e: resize(wr, W, tl) }), fmt: wrappedFmt };
    emit({ kind: 'assign', e: resize(wrapped, vf.w, vf.lsb) }, comment);
    return;
  }
  const cw = Math.max(R.fmt.w + (R.fmt.signed ? 0 : 1), W + 1);
  const Rc = resize(R, cw, tl);
  const code = (c: bigint): Expr => ({ t: 'const', w: vf.w, v: pattern(dyadicCode({ m: c, e: tl }, vf.lsb), vf.w) });
  let inner: Expr = resize(R, vf.w, vf.lsb);
  if (rmin < lo) {
    const lt = tmp('under', 1, { kind: 'lts', a: Rc, b: { t: 'const', w: cw, v: pattern(lo, cw) } });
    if (rmax <= hi) {
      emit({ kind: 'mux', sel: ref(lt.name, 0, 0), a: code(lo), b: inner }, comment);
      return;
    }
    const m = tmp('m', vf.w, { kind: 'mux', sel: ref(lt.name, 0, 0), a: code(lo), b: inner });
    inner = ref(m.name, vf.w - 1, 0);
  }
  const gt = tmp('over', 1, { kind: 'lts', a: { t: 'const', w: cw, v: pattern(hi, cw) }, b: Rc });
  emit({ kind: 'mux', sel: ref(gt.name, 0, 0), a: code(hi), b: inner }, comment);
}
