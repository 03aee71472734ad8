/**
 * Multi-output tables: lookups that read the same wire (in a table layer, the edges whose input quantizer
 * gives the same type read one quantized wire) can share one ROM. The IR's lut op has one output, so a
 * shared table is one lut op whose entries pack every field's code side by side (field k at bit offset off_k,
 * as an unsigned integer), and each field is read back by a free rewiring: copy(Y, −off_k − f_k) then quant to
 * the field's own type with TRN (drops the fields below) and WRAP (drops the fields above, and reads the field's
 * bits as two's complement when it is signed). Exact: each field's code is its value's bits in its minimal type.
 */
import { minimalKif } from '../fixed/interval.ts';
import { kifWidth } from '../fixed/quantize.ts';
import type { Kif } from '../fixed/types.ts';
import type { ProgramBuilder } from '../ir/builder.ts';
import { tableInterval } from '../ir/interval.ts';

/** A lookup still to be emitted: one table entry per value of wire `a`. */
export interface PendingLookup {
  a: number;
  table: number[];
}

/** Widest packed table: keeps every wire within the emulator's 31-bit integer fast path. */
export const MAX_PACKED_BITS = 31;

interface Field {
  /** indices into the pending list that read this table (identical tables are kept once) */
  users: number[];
  table: number[];
  type: Kif;
  width: number;
}

/**
 * Emits `lookups` and returns the wire of each. Identical tables on the same wire are always emitted once; with
 * `share`, the distinct tables of one wire are packed into as few lut ops of at most MAX_PACKED_BITS as a greedy
 * first-fit gives.
 */
export function emitLookups(b: ProgramBuilder, lookups: readonly PendingLookup[], share: boolean): number[] {
  const out = new Array<number>(lookups.length);
  const byWire = new Map<number, Map<string, Field>>();
  lookups.forEach((l, j) => {
    let fields = byWire.get(l.a);
    if (!fields) byWire.set(l.a, (fields = new Map()));
    const key = l.table.join(',');
    const f = fields.get(key);
    if (f) f.users.push(j);
    else {
      const type = minimalKif(tableInterval(l.table));
      fields.set(key, { users: [j], table: l.table, type, width: kifWidth(type) });
    }
  });
  for (const [a, fields] of byWire) {
    const list = [...fields.values()];
    const packs = share ? firstFit(list) : list.map((f) => [f]);
    for (const pack of packs) {
      if (pack.length === 1) {
        const w = b.lut(a, pack[0]!.table);
        for (const j of pack[0]!.users) out[j] = w;
        continue;
      }
      emitPacked(b, a, pack).forEach((w, k) => {
        for (const j of pack[k]!.users) out[j] = w;
      });
    }
  }
  return out;
}

/** Groups fields into packs of total width ≤ MAX_PACKED_BITS, widest first (fields wider than that stay alone). */
function firstFit(fields: Field[]): Field[][] {
  const packs: { fields: Field[]; bits: number }[] = [];
  for (const f of [...fields].sort((x, y) => y.width - x.width)) {
    const p = packs.find((q) => q.bits + f.width <= MAX_PACKED_BITS);
    if (p) {
      p.fields.push(f);
      p.bits += f.width;
    } else packs.push({ fields: [f], bits: f.width });
  }
  return packs.map((p) => p.fields);
}

/** One lut op holding every field of `pack` side by side; returns each field's wire. */
function emitPacked(b: ProgramBuilder, a: number, pack: Field[]): number[] {
  const offsets: number[] = [];
  let bits = 0;
  for (const f of pack) {
    offsets.push(bits);
    bits += f.width;
  }
  const n = pack[0]!.table.length;
  const packed = Array.from({ length: n }, (_, m) =>
    pack.reduce((acc, f, k) => {
      const code = f.table[m]! * 2 ** f.type.f; // an integer: the table's values lie on its type's grid
      const unsigned = code < 0 ? code + 2 ** f.width : code;
      return acc + unsigned * 2 ** offsets[k]!;
    }, 0),
  );
  const y = b.lut(a, packed);
  return pack.map((f, k) => b.quant(b.copy(y, -offsets[k]! - f.type.f), f.type, 'TRN', 'WRAP'));
}
