/**
 * Shared helpers for the backends/eda tests (not a test file itself): tool gating and random programs
 * that exercise every op kind in the generated hardware.
 */
import type { TestContext } from 'node:test';
import { hasTool, TOOL_PACKAGES } from '../src/eda/tools.ts';
import { operandsOf } from '../src/ir/interval.ts';
import type { OpKind, Program } from '../src/ir/types.ts';
import { makeRng } from './util/rng.ts';
import { randomProgram } from './util/random-program.ts';

/**
 * True when `tool` is installed. Otherwise: under CI (CI=true) the test fails, because CI installs the
 * tools; elsewhere the test is skipped with a message naming the Debian package.
 */
export function needTool(t: TestContext, tool: string): boolean {
  if (hasTool(tool)) return true;
  const msg = `${tool} not installed: apt-get install ${TOOL_PACKAGES[tool] ?? tool}`;
  if (process.env.CI === 'true') throw new Error(`${msg} (required under CI)`);
  t.skip(msg);
  return false;
}

export const ALL_KINDS: OpKind[] = [
  'input',
  'const',
  'copy',
  'add',
  'neg',
  'addc',
  'relu',
  'quant',
  'mux',
  'mul',
  'lut',
  'min',
  'max',
];

/** Op kinds that some output depends on (what reaches the hardware). */
export function liveKinds(p: Program): Set<OpKind> {
  const live = new Uint8Array(p.ops.length);
  for (const o of p.out) if (o.wire >= 0) live[o.wire] = 1;
  const kinds = new Set<OpKind>();
  for (let n = p.ops.length - 1; n >= 0; n--) {
    if (!live[n]) continue;
    kinds.add(p.ops[n]!.kind);
    if (p.ops[n]!.qint.min === p.ops[n]!.qint.max) continue; // folded to a literal: operands not in hardware
    for (const a of operandsOf(p.ops[n]!)) live[a] = 1;
  }
  return kinds;
}

/** The first random program from `seed` on whose live ops cover every op kind. */
export function coveringProgram(seed: number, nOps = 160, nOut = 16): Program {
  for (let s = seed; s < seed + 500; s++) {
    const p = randomProgram(makeRng(s), { nOps, nOut, nIn: 8 });
    const k = liveKinds(p);
    if (ALL_KINDS.every((x) => k.has(x))) return p;
  }
  throw new Error('no covering program found');
}
