/**
 * Table (`lut`) ops in the generated RTL: random tables over signed, unsigned, fractional, coarse-step,
 * zero-width and one-entry inputs, with signed, unsigned, constant and wide (> 32-bit) outputs, equal the
 * emulator bit for bit in Verilator, Icarus and GHDL, combinational and pipelined. Plus the build shape that
 * keeps table-heavy designs quick to build in Verilator (one C++ translation unit for the model).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { syntheticTableLayer } from '../bench/convert.ts';
import { writeProject } from '../src/backends/project.ts';
import { buildVerilator, verify } from '../src/eda/verify.ts';
import type { Kif } from '../src/fixed/types.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { intervalSize } from '../src/ir/interval.ts';
import type { Program } from '../src/ir/types.ts';
import { needTool } from './backends-fixtures.ts';
import { type Rng, makeRng } from './util/rng.ts';

/** Input types covering the table selector's shapes; the last two take a single value. */
const INPUT_TYPES: Kif[] = [
  { k: 1, i: 2, f: 2 }, // signed, fractional: 5 bits
  { k: 0, i: 3, f: 1 }, // unsigned: 4 bits
  { k: 1, i: 5, f: -2 }, // signed, step 4: 4 bits
  { k: 0, i: 1, f: 0 }, // one bit
  { k: 1, i: 6, f: 3 }, // signed, 10 bits: 1024 entries
  { k: 0, i: 0, f: 0 }, // zero width: the constant 0
];

/** A table of `size` entries: signed, unsigned, constant or wide values on a random step. */
function randomTable(rng: Rng, size: number): number[] {
  const step = 2 ** rng.int(-4, 2);
  const shape = rng.pick(['signed', 'unsigned', 'constant', 'wide', 'sparse'] as const);
  const c = rng.int(-50, 50) * step;
  return Array.from({ length: size }, () => {
    switch (shape) {
      case 'signed':
        return rng.int(-100, 100) * step;
      case 'unsigned':
        return rng.int(0, 200) * step;
      case 'constant':
        return c;
      case 'wide':
        return rng.int(-(2 ** 40), 2 ** 40) * step;
      case 'sparse':
        return rng.chance(0.8) ? 0 : rng.int(-100, 100) * step;
    }
  });
}

/**
 * Tables on every input, on sums of inputs (a selector range that is no power of two), on a constant (one
 * entry) and several on one wire; every table an output, and sums of tables as in a table layer.
 */
function tableProgram(seed: number): Program {
  const rng = makeRng(seed);
  const b = new ProgramBuilder();
  const xs = INPUT_TYPES.map((t, j) => b.input(j, t, 'TRN', 'WRAP'));
  const selectors = [...xs, b.add(xs[0]!, xs[1]!), b.sub(xs[2]!, xs[3]!, 1), b.const(rng.int(-8, 8) * 0.5)];
  const tables: number[] = [];
  for (const x of selectors)
    for (let k = rng.int(1, 3); k > 0; k--) tables.push(b.lut(x, randomTable(rng, intervalSize(b.qint(x)))));
  const sums = [0, 1, 2].map(() => {
    const terms = tables.filter(() => rng.chance(0.4));
    return terms.reduce((acc, t) => b.add(acc, t), b.const(0));
  });
  const outs = [...tables, ...sums];
  return b.build(
    `tables_${seed}`,
    [{ name: 'x', shape: [xs.length] }],
    [{ name: 'y', shape: [outs.length] }],
    outs.map((wire) => ({ wire, shift: 0, neg: false })),
  );
}

test('random tables equal the emulator in Verilator and Icarus, combinational and pipelined', async (t) => {
  const sims = (['verilator', 'icarus'] as const).filter((s) => needTool(t, s === 'icarus' ? 'iverilog' : s));
  const root = mkdtempSync(join(tmpdir(), 'hgq-tables-'));
  try {
    for (const seed of [1, 2]) {
      const p = tableProgram(seed);
      assert.ok(p.ops.filter((o) => o.kind === 'lut').length >= 10, 'the program holds tables');
      for (const cutoff of [0, 1]) {
        const dir = join(root, `s${seed}_c${cutoff}`);
        const s = writeProject(p, dir, { latencyCutoff: cutoff, vectors: 1 });
        const roms = readFileSync(join(dir, s.files.source!), 'utf8').match(/\/\/ table\(/g)?.length ?? 0;
        assert.ok(roms >= 8, `seed ${seed}: tables on live, non-constant wires stay ROMs (${roms})`);
        for (const simulator of sims) {
          const r = await verify(dir, { vectors: 3000, simulator, seed });
          assert.equal(r.vectors, 3000);
          assert.equal(r.mismatches, 0, `${simulator} seed ${seed} cutoff ${cutoff}: ${JSON.stringify(r.first_mismatch)}`);
        }
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('random tables equal the emulator in GHDL (VHDL), pipelined', async (t) => {
  if (!needTool(t, 'ghdl')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-tables-vhdl-'));
  try {
    const dir = join(root, 'p');
    writeProject(tableProgram(4), dir, { latencyCutoff: 1, vectors: 1, format: 'vhdl' });
    const r = await verify(dir, { vectors: 3000, simulator: 'ghdl', seed: 4 });
    assert.equal(r.vectors, 3000);
    assert.equal(r.mismatches, 0, JSON.stringify(r.first_mismatch));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a table layer of 320 tables builds in Verilator as one model unit, not one compile per table', async (t) => {
  if (!needTool(t, 'verilator')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-tables-build-'));
  try {
    const dir = join(root, 'p');
    writeProject(syntheticTableLayer(32, 10, 4), dir, { latencyCutoff: 2, vectors: 1 });
    const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    // Verilator writes each table's constant pool to a file of its own; compiled one by one (~1 s of CPU
    // each) a table layer took minutes. One unit for the model plus the harness: a couple of objects.
    const b = await buildVerilator(dir, s);
    assert.ok(b.modelObjects !== undefined && b.modelObjects <= 3, `${b.modelObjects} objects compiled for the model`);
    const r = await verify(dir, { vectors: 1000, simulator: 'verilator', seed: 9 });
    assert.equal(r.mismatches, 0, JSON.stringify(r.first_mismatch));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
