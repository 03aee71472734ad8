/**
 * validateProgram: rejects a malformed Program with an Error naming the op index and the problem.
 *
 * Stored intervals must EQUAL the recomputed ones (min, max and step, compared with ===): a wire's interval
 * is a function of its operands, so any difference means the program was edited inconsistently. A wider
 * type for a wire is expressed with a `quant` op, never by widening a stored interval.
 */
import { ROUND_MODES, OVERFLOW_MODES, type Kif, type QInterval } from '../fixed/types.ts';
import { IR_FORMAT_VERSION, type Node, type Program } from './types.ts';
import { intervalSize, opInterval, operandsOf } from './interval.ts';

/** Largest lookup table accepted (entries). */
export const MAX_TABLE_SIZE = 1 << 24;
/** Shifts and type exponents are bounded so that every interval end is a finite double. */
export const MAX_EXPONENT = 1000;

const KINDS = new Set(['input', 'const', 'copy', 'add', 'neg', 'addc', 'relu', 'quant', 'mux', 'mul', 'lut', 'min', 'max']);

function isPow2(x: number): boolean {
  if (!(x > 0) || !Number.isFinite(x)) return false;
  const e = Math.log2(x);
  return Number.isInteger(e) && 2 ** e === x;
}

function fmtQ(q: QInterval): string {
  return `[${q.min}, ${q.max}] step ${q.step}`;
}

function totalSize(specs: { name: string; shape: number[] }[], what: string): number {
  if (!Array.isArray(specs)) throw new Error(`invalid program: '${what}' must be an array of {name, shape}`);
  let n = 0;
  specs.forEach((t, j) => {
    if (typeof t?.name !== 'string' || !Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`invalid program: ${what}[${j}] must be {name: string, shape: non-negative integers}`);
    }
    n += t.shape.reduce((a, b) => a * b, 1);
  });
  return n;
}

/** Total number of input elements (all input tensors flattened). */
export function inputSize(p: Program): number {
  return totalSize(p.inputs, 'inputs');
}
/** Total number of output elements. */
export function outputSize(p: Program): number {
  return totalSize(p.outputs, 'outputs');
}

export function validateProgram(p: Program): void {
  if (p === null || typeof p !== 'object') throw new Error('invalid program: not an object');
  if (p.version !== IR_FORMAT_VERSION)
    throw new Error(`invalid program: format version ${String(p.version)}, this hgq reads version ${IR_FORMAT_VERSION}`);
  if (typeof p.name !== 'string') throw new Error('invalid program: name must be a string');
  const nIn = inputSize(p);
  const nOut = outputSize(p);
  if (!Array.isArray(p.ops)) throw new Error('invalid program: ops must be an array');
  if (!Array.isArray(p.out)) throw new Error('invalid program: out must be an array');
  const n = p.ops.length;
  for (let j = 0; j < n; j++) {
    const node = p.ops[j] as Node;
    const fail: (what: string) => never = (what) => {
      throw new Error(`invalid program '${p.name}': op ${j} (${String(node?.kind)}): ${what}`);
    };
    if (node === null || typeof node !== 'object') fail('not an object');
    if (!KINDS.has(node.kind)) fail(`unknown op kind '${String(node.kind)}' (expected one of ${[...KINDS].join(', ')})`);
    const operands = operandsOf(node);
    for (const a of operands) {
      if (!Number.isInteger(a) || a < 0 || a >= j) fail(`operand ${String(a)} must be an earlier wire (0..${j - 1})`);
    }
    const intField = (v: unknown, name: string): void => {
      if (!Number.isInteger(v) || Math.abs(v as number) > MAX_EXPONENT)
        fail(`${name} must be an integer in [-${MAX_EXPONENT}, ${MAX_EXPONENT}], got ${String(v)}`);
    };
    const kifField = (t: Kif): void => {
      if (t === null || typeof t !== 'object' || (t.k !== 0 && t.k !== 1))
        fail(`type must be {k: 0|1, i, f}, got ${JSON.stringify(t)}`);
      intField(t.i, 'type.i');
      intField(t.f, 'type.f');
    };
    const modes = (round: unknown, overflow: unknown): void => {
      if (!ROUND_MODES.includes(round as never))
        fail(`unknown rounding mode ${JSON.stringify(round)} (expected ${ROUND_MODES.join(', ')})`);
      if (!OVERFLOW_MODES.includes(overflow as never))
        fail(`unknown overflow mode ${JSON.stringify(overflow)} (expected ${OVERFLOW_MODES.join(', ')})`);
    };
    const finite = (v: unknown, name: string): void => {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${name} must be a finite number, got ${String(v)}`);
    };
    switch (node.kind) {
      case 'input':
        if (!Number.isInteger(node.index) || node.index < 0 || node.index >= nIn)
          fail(`input index ${String(node.index)} out of range (the program has ${nIn} input elements)`);
        kifField(node.type);
        modes(node.round, node.overflow);
        break;
      case 'const':
        finite(node.value, 'value');
        break;
      case 'copy':
        intField(node.shift, 'shift');
        break;
      case 'add':
        intField(node.shift, 'shift');
        if (typeof node.sub !== 'boolean') fail('sub must be a boolean');
        break;
      case 'addc':
        finite(node.value, 'value');
        break;
      case 'quant':
        kifField(node.type);
        modes(node.round, node.overflow);
        break;
      case 'lut': {
        if (!Array.isArray(node.table)) fail('table must be an array');
        const need = intervalSize(p.ops[node.a]!.qint);
        if (node.table.length !== need)
          fail(
            `table has ${node.table.length} entries, operand wire ${node.a} takes ${need} values ${fmtQ(p.ops[node.a]!.qint)}`,
          );
        if (need > MAX_TABLE_SIZE) fail(`table of ${need} entries exceeds the limit ${MAX_TABLE_SIZE}`);
        node.table.forEach((v, e) => {
          if (typeof v !== 'number' || !Number.isFinite(v)) fail(`table entry ${e} is ${String(v)}, not a finite number`);
        });
        break;
      }
      default:
        break;
    }
    const q = node.qint;
    if (
      q === null ||
      typeof q !== 'object' ||
      ![q.min, q.max, q.step].every((v) => typeof v === 'number' && Number.isFinite(v))
    ) {
      fail(`qint must be {min, max, step} of finite numbers, got ${JSON.stringify(q)}`);
    }
    if (!isPow2(q.step)) fail(`qint step ${q.step} is not a power of two`);
    if (q.min > q.max) fail(`qint min ${q.min} > max ${q.max}`);
    let want: QInterval;
    try {
      want = opInterval(
        node,
        operands.map((a) => p.ops[a]!.qint),
      );
    } catch (e) {
      fail(`cannot compute its interval: ${(e as Error).message}`);
    }
    if (want.min !== q.min || want.max !== q.max || want.step !== q.step) {
      fail(`stored qint ${fmtQ(q)} differs from the exact interval ${fmtQ(want)} of its operands`);
    }
    if (node.layer !== undefined && typeof node.layer !== 'string') fail('layer must be a string');
  }
  if (p.out.length !== nOut)
    throw new Error(`invalid program '${p.name}': out has ${p.out.length} entries, the output tensors hold ${nOut} elements`);
  p.out.forEach((o, j) => {
    if (o === null || typeof o !== 'object') throw new Error(`invalid program '${p.name}': out[${j}] is not an object`);
    if (!Number.isInteger(o.wire) || o.wire < -1 || o.wire >= n)
      throw new Error(
        `invalid program '${p.name}': out[${j}] refers to wire ${String(o.wire)}, which does not exist (wires 0..${n - 1}, or -1 for constant 0)`,
      );
    if (!Number.isInteger(o.shift) || Math.abs(o.shift) > MAX_EXPONENT)
      throw new Error(`invalid program '${p.name}': out[${j}] shift must be an integer in [-${MAX_EXPONENT}, ${MAX_EXPONENT}]`);
    if (typeof o.neg !== 'boolean') throw new Error(`invalid program '${p.name}': out[${j}] neg must be a boolean`);
  });
}
