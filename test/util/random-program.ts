/**
 * Random valid IR programs for property tests (here and in backends/): every op kind, negative shifts,
 * negative i/f types, zero-width wires, WRAP/SAT/SAT_SYM quantizes that really wrap and clip, lookup tables.
 */
import { ROUND_MODES, OVERFLOW_MODES, type Kif } from '../../src/fixed/types.ts';
import { qiWidth } from '../../src/fixed/interval.ts';
import { ProgramBuilder } from '../../src/ir/builder.ts';
import { intervalSize } from '../../src/ir/interval.ts';
import type { OpKind, OutputRef, Program } from '../../src/ir/types.ts';
import type { Rng } from './rng.ts';

export interface RandomProgramOptions {
  nIn?: number;
  nOut?: number;
  /** ops after the inputs */
  nOps?: number;
  /** widest wire allowed (wider results are replaced by a narrowing quant); > 52 exercises the BigInt emulator */
  maxWidth?: number;
  /** op kinds to draw from (default: all) */
  kinds?: OpKind[];
  /** largest lookup table */
  maxTable?: number;
}

const ALL: OpKind[] = ['const', 'copy', 'add', 'neg', 'addc', 'relu', 'quant', 'mux', 'mul', 'lut', 'min', 'max'];

/** A random dyadic number: integer in [-r, r] times 2^e, e in [-emax, emax]. */
export function randomDyadic(rng: Rng, r = 64, emax = 4): number {
  return rng.int(-r, r) * 2 ** rng.int(-emax, emax) + 0;
}

export function randomKif(rng: Rng, iLo = -3, iHi = 8, fLo = -3, fHi = 8): Kif {
  return { k: rng.chance(0.6) ? 1 : 0, i: rng.int(iLo, iHi), f: rng.int(fLo, fHi) };
}

export function randomProgram(rng: Rng, opts: RandomProgramOptions = {}): Program {
  const nIn = opts.nIn ?? rng.int(1, 6);
  const nOut = opts.nOut ?? rng.int(1, 5);
  const nOps = opts.nOps ?? rng.int(5, 40);
  const maxWidth = opts.maxWidth ?? 40;
  const kinds = opts.kinds ?? ALL;
  const maxTable = opts.maxTable ?? 64;
  const b = new ProgramBuilder();
  const wide = maxWidth > 52;
  // inputs: each index once (some unused), sometimes twice with another type
  for (let j = 0; j < nIn; j++) {
    if (rng.chance(0.1) && j > 0) continue;
    const reps = rng.chance(0.2) ? 2 : 1;
    for (let r = 0; r < reps; r++) {
      const t = wide && rng.chance(0.5) ? randomKif(rng, 20, 30, 20, 30) : randomKif(rng);
      b.layer = `in${j % 2}`;
      b.input(j, t, rng.pick(ROUND_MODES), rng.pick(OVERFLOW_MODES));
    }
  }
  if (b.size === 0) b.input(0, { k: 1, i: 3, f: 2 });
  const pickWire = (): number => (rng.chance(0.6) ? rng.int(Math.max(0, b.size - 6), b.size - 1) : rng.int(0, b.size - 1));
  for (let n = 0; n < nOps; n++) {
    b.layer = `layer${Math.floor((n * 3) / nOps)}`;
    const kind = rng.pick(kinds);
    const a = pickWire();
    const c = pickWire();
    const before = b.size;
    try {
      switch (kind) {
        case 'const':
          b.const(rng.chance(0.15) ? 0 : randomDyadic(rng));
          break;
        case 'copy':
          b.copy(a, rng.int(-4, 4));
          break;
        case 'add':
          b.add(a, c, rng.int(-4, 4), rng.chance(0.5));
          break;
        case 'neg':
          b.neg(a);
          break;
        case 'addc':
          b.addc(a, rng.chance(0.1) ? 0 : randomDyadic(rng));
          break;
        case 'relu':
          b.relu(a);
          break;
        case 'quant': {
          // types near the operand's range so wrap-around and clipping happen, sometimes zero or negative width
          const q = b.qint(a);
          const mag = Math.max(Math.abs(q.min), Math.abs(q.max), q.step);
          const i0 = Math.ceil(Math.log2(mag));
          const f0 = -Math.log2(q.step);
          const t: Kif = { k: rng.chance(0.6) ? 1 : 0, i: i0 + rng.int(-3, 1), f: f0 + rng.int(-4, 1) };
          b.quant(a, t, rng.pick(ROUND_MODES), rng.pick(OVERFLOW_MODES));
          break;
        }
        case 'mux':
          b.mux(pickWire(), a, c);
          break;
        case 'mul':
          b.mul(a, c);
          break;
        case 'lut': {
          let x = a;
          if (intervalSize(b.qint(x)) > maxTable) {
            const bits = rng.int(0, Math.round(Math.log2(maxTable)) - 1);
            const f = rng.int(-2, 3);
            x = b.quant(x, { k: 1, i: bits - f, f }, rng.pick(ROUND_MODES), rng.pick(OVERFLOW_MODES));
            if (intervalSize(b.qint(x)) > maxTable) break;
          }
          const size = intervalSize(b.qint(x));
          const table = Array.from({ length: size }, () => (rng.chance(0.1) ? 0 : randomDyadic(rng, 100, 5)));
          b.lut(x, table);
          break;
        }
        case 'min':
          b.min(a, c);
          break;
        case 'max':
          b.max(a, c);
          break;
        default:
          break;
      }
    } catch (e) {
      // src/fixed's interval rules stop at 53 bits: an op whose interval is not computable is skipped
      if (!wide) throw e;
      continue;
    }
    // keep wires within maxWidth: drop a too-wide result (a narrowing quant of an operand may follow later)
    if (b.size > before && qiWidth(b.qint(b.size - 1)) > maxWidth) b.ops.length = before;
  }
  const out: OutputRef[] = [];
  for (let k = 0; k < nOut; k++) {
    const wire = rng.chance(0.05) ? -1 : rng.chance(0.7) ? rng.int(Math.max(0, b.size - 8), b.size - 1) : rng.int(0, b.size - 1);
    // outputs leave as float64: narrow any wire wider than 52 bits first
    const w =
      wire >= 0 && qiWidth(b.qint(wire)) > 52
        ? b.quant(wire, { k: 1, i: 10, f: 13 }, rng.pick(ROUND_MODES), rng.pick(OVERFLOW_MODES))
        : wire;
    out.push({ wire: w, shift: rng.int(-3, 3), neg: rng.chance(0.3) });
  }
  return b.build(`random${rng.int(0, 1e6)}`, [{ name: 'x', shape: [nIn] }], [{ name: 'y', shape: [nOut] }], out);
}

/**
 * Random raw inputs for a program: grid values, exact ties, values beyond the ranges (to wrap and clip),
 * zeros, tiny and huge magnitudes.
 */
export function randomInputs(rng: Rng, nIn: number, batch: number): Float64Array {
  const x = new Float64Array(nIn * batch);
  for (let j = 0; j < x.length; j++) {
    const r = rng.next();
    if (r < 0.35) x[j] = randomDyadic(rng, 1024, 8);
    else if (r < 0.5)
      x[j] = (rng.int(-200, 200) + 0.5) * 2 ** rng.int(-8, 3); // ties at many steps
    else if (r < 0.7) x[j] = (rng.next() - 0.5) * 2 ** rng.int(-4, 12);
    else if (r < 0.78) x[j] = 0;
    else if (r < 0.84) x[j] = (rng.chance(0.5) ? -1 : 1) * 2 ** rng.int(-1074, -900) * rng.int(1, 7);
    else if (r < 0.9) x[j] = (rng.chance(0.5) ? -1 : 1) * rng.next() * 2 ** rng.int(40, 1020);
    else x[j] = (rng.chance(0.5) ? -1 : 1) * (2 ** rng.int(0, 10) - 2 ** -rng.int(0, 8));
  }
  return x;
}
