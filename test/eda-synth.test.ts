/**
 * Yosys synthesis reports sensible cell counts: an 8-bit adder tree maps to LUTs and carry chains with no
 * flip-flops when combinational, and gains flip-flops (and keeps its logic) when pipelined; the JSON has
 * LUT by size, CARRY, FF, MUXF and depth. Plus the parsing of `stat -json` / `ltp` output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeProject } from '../src/backends/project.ts';
import { parseStat, synth } from '../src/eda/synth.ts';
import { ToolMissingError } from '../src/eda/tools.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import type { Program } from '../src/ir/types.ts';
import { needTool } from './backends-fixtures.ts';

/** y = (x0 + x1) + (x2 − x3), 8-bit signed inputs: two levels of adders. */
function adderTree(): Program {
  const b = new ProgramBuilder();
  const x = [0, 1, 2, 3].map((j) => b.input(j, { k: 1, i: 7, f: 0 }));
  const s = b.add(x[0]!, x[1]!);
  const d = b.sub(x[2]!, x[3]!);
  const y = b.add(s, d);
  return b.build('adder_tree', [{ name: 'x', shape: [4] }], [{ name: 'y', shape: [1] }], [{ wire: y, shift: 0, neg: false }]);
}

test('parseStat sums LUT sizes, carries, flip-flops and reads the ltp depth', () => {
  const r = parseStat(
    { LUT2: 3, LUT6: 2, CARRY4: 2, FDRE: 5, FDSE: 1, MUXF7: 1, SRL16E: 1, DSP48E1: 1, INV: 4 },
    'Longest topological path in top (length=7):',
    'xc7',
    'top',
  );
  assert.equal(r.lut, 5);
  assert.deepEqual(r.lut_by_size, { LUT1: 0, LUT2: 3, LUT3: 0, LUT4: 0, LUT5: 0, LUT6: 2 });
  assert.equal(r.carry, 2);
  assert.equal(r.ff, 6);
  assert.equal(r.srl, 1);
  assert.equal(r.dsp, 1);
  assert.deepEqual(r.muxf, { MUXF7: 1 });
  assert.equal(r.depth, 7);
});

test('Yosys synth_xilinx (xc7, xcup) of an adder tree: LUTs + carry chains, FFs only when pipelined', async (t) => {
  if (!needTool(t, 'yosys')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-synth-'));
  try {
    const p = adderTree();
    writeProject(p, join(root, 'comb'), { vectors: 0 });
    const comb = await synth(join(root, 'comb'), { family: 'xc7' });
    // a 10-bit result from 8-bit operands: three adders of ~9-10 bits
    assert.ok(comb.lut >= 16 && comb.lut <= 60, `LUTs ${comb.lut}`);
    assert.ok(comb.carry >= 6 && comb.carry <= 9, `CARRY4 ${comb.carry}`);
    assert.equal(comb.ff, 0);
    assert.ok(comb.depth >= 3, `depth ${comb.depth}`);
    const saved = JSON.parse(readFileSync(join(root, 'comb', 'reports', 'yosys-xc7.json'), 'utf8'));
    assert.equal(saved.lut, comb.lut);

    const s = writeProject(p, join(root, 'pipe'), { vectors: 0, latencyCutoff: 1 });
    assert.equal(s.stages, 2);
    const pipe = await synth(join(root, 'pipe'), { family: 'xcup' });
    assert.equal(pipe.family, 'xcup');
    // the two first-level sums (9 bits each) are registered, plus the valid bit
    assert.ok(pipe.ff + pipe.srl >= 18, `FF ${pipe.ff} SRL ${pipe.srl}`);
    assert.ok(pipe.lut >= 16, `LUTs ${pipe.lut}`);
    // registers cut the path: the deepest stage has one adder level fewer than the whole tree
    assert.ok(pipe.depth < comb.depth, `depth ${pipe.depth} vs ${comb.depth}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('synth errors name the problem: not a project, unknown family, missing tool names the package', async () => {
  await assert.rejects(synth('/nonexistent/dir'), /not an hgq project \(no summary\.json\)/);
  await assert.rejects(synth('/tmp', { family: 'xc9' as never }), /unknown family "xc9"/);
  assert.match(new ToolMissingError('yosys').message, /apt-get install yosys/);
  assert.match(new ToolMissingError('vvp').message, /apt-get install iverilog/);
});
