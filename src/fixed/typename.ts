/**
 * Type names (docs/fixed-point.md §1): `fixed<W,I>` (signed, k=1, i=I−1, f=W−I), `ufixed<W,I>` (k=0, i=I, f=W−I),
 * Vivado/Vitis HLS `ap_fixed<W,I,Q,O,N>` / `ap_ufixed<...>`, and `(k,i,f)` triples.
 */
import type { Kif, OverflowMode, RoundMode } from './types.ts';
import { OVERFLOW_MODES, ROUND_MODES } from './types.ts';

export interface ParsedType {
  kif: Kif;
  round?: RoundMode;
  overflow?: OverflowMode;
}

export const TYPE_FORMS =
  'fixed<W,I>, ufixed<W,I>, ap_fixed<W,I[,Q[,O[,N]]]>, ap_ufixed<W,I[,Q[,O[,N]]]> or (k,i,f) — ' +
  'W the width >= 0, I the integer bits (counting the sign bit of signed types; may be negative or > W), ' +
  `Q one of ${ROUND_MODES.map((m) => 'AP_' + m).join('|')}, O one of ${OVERFLOW_MODES.map((m) => 'AP_' + m).join('|')}, ` +
  'N = 0; (k,i,f) = sign bit 0|1, integer bits without the sign, fractional bits';

/** HLS modes we cannot express. */
const UNSUPPORTED: Record<string, string> = {
  SAT_ZERO: 'AP_SAT_ZERO (overflow to zero) is not supported; use AP_SAT, AP_SAT_SYM or AP_WRAP',
  WRAP_SM: 'AP_WRAP_SM (sign-magnitude wrap) is not supported; use AP_WRAP',
};

const INT = '\\s*([+-]?\\d+)\\s*';
const FIXED_RE = new RegExp(`^\\s*(ap_fixed|ap_ufixed|fixed|ufixed)\\s*<${INT},${INT}((?:,[^,<>]*){0,3})>\\s*$`, 'i');
const KIF_RE = new RegExp(`^\\s*\\(${INT},${INT},${INT}\\)\\s*$`);

function fail(name: string, why: string): never {
  throw new Error(`invalid fixed-point type "${name}": ${why}. Accepted forms: ${TYPE_FORMS}`);
}

function int(name: string, s: string, what: string): number {
  const v = Number(s);
  if (!Number.isSafeInteger(v) || Math.abs(v) > 100000) fail(name, `${what} ${s} is out of range (|${what}| <= 100000)`);
  return v + 0; // "-0" is 0: no -0 in a type
}

function modeName(s: string): string {
  const u = s.trim().toUpperCase();
  return u.startsWith('AP_') ? u.slice(3) : u;
}

export function parseType(name: string): ParsedType {
  const kifm = KIF_RE.exec(name);
  if (kifm) {
    const k = int(name, kifm[1]!, 'k');
    if (k !== 0 && k !== 1) fail(name, `k must be 0 or 1, got ${k}`);
    return { kif: { k: k as 0 | 1, i: int(name, kifm[2]!, 'i'), f: int(name, kifm[3]!, 'f') } };
  }
  const m = FIXED_RE.exec(name);
  if (!m) fail(name, 'not a recognised type name');
  const base = m[1]!.toLowerCase();
  const W = int(name, m[2]!, 'W');
  const I = int(name, m[3]!, 'I');
  if (W < 0) fail(name, `width W=${W} must be >= 0`);
  const signed = base === 'fixed' || base === 'ap_fixed';
  const kif: Kif = signed ? { k: 1, i: I - 1, f: W - I } : { k: 0, i: I, f: W - I };
  const extra = m[4] ? m[4].slice(1).split(',') : [];
  const out: ParsedType = { kif };
  if (extra.length > 0) {
    const q = modeName(extra[0]!);
    if (!(ROUND_MODES as readonly string[]).includes(q)) fail(name, `unknown quantization (rounding) mode "${extra[0]!.trim()}"`);
    out.round = q as RoundMode;
  }
  if (extra.length > 1) {
    const o = modeName(extra[1]!);
    if (UNSUPPORTED[o]) fail(name, UNSUPPORTED[o]!);
    if (!(OVERFLOW_MODES as readonly string[]).includes(o)) fail(name, `unknown overflow mode "${extra[1]!.trim()}"`);
    out.overflow = o as OverflowMode;
  }
  if (extra.length > 2) {
    const n = extra[2]!.trim();
    if (!/^\d+$/.test(n)) fail(name, `saturation bits N "${n}" must be a non-negative integer`);
    if (Number(n) !== 0) fail(name, `saturation bits N=${n} are not supported (only N=0)`);
  }
  return out;
}

/** Print a type: 'fixed' → fixed<W,I>/ufixed<W,I>, 'ap' → ap_fixed<W,I[,AP_Q,AP_O]>, 'kif' → (k,i,f). */
export function formatType(t: Kif, style: 'fixed' | 'ap' | 'kif' = 'fixed', round?: RoundMode, overflow?: OverflowMode): string {
  const W = t.k + t.i + t.f;
  const I = t.k + t.i;
  if (style === 'kif') return `(${t.k},${t.i},${t.f})`;
  const modes =
    round !== undefined || overflow !== undefined
      ? `,AP_${round ?? 'TRN'}${overflow !== undefined ? `,AP_${overflow}` : ''}`
      : '';
  if (style === 'ap') {
    if (W < 1) throw new RangeError(`type (${t.k},${t.i},${t.f}) has width ${W}; ap_fixed needs a width >= 1`);
    return `${t.k ? 'ap_fixed' : 'ap_ufixed'}<${W},${I}${modes}>`;
  }
  if (W < 0) throw new RangeError(`type (${t.k},${t.i},${t.f}) has negative width ${W}; fixed<W,I> needs W >= 0`);
  return `${t.k ? 'fixed' : 'ufixed'}<${W},${I}${modes}>`;
}
