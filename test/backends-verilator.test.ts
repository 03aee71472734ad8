/**
 * Verilator simulation of generated Verilog equals the IR emulator bit for bit on >= 10,000 vectors
 * (random over the port types incl. extremes), for random programs covering every op kind, at latency
 * cutoffs 0 (combinational), 1 and 3. One Verilator build per design (the runtime is cached).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeProject } from '../src/backends/project.ts';
import { verify } from '../src/eda/verify.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';

test('Verilator equals the emulator on 10,000 vectors at cutoffs 0, 1, 3 (every op kind)', async (t) => {
  if (!needTool(t, 'verilator')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-vl-'));
  try {
    const p = coveringProgram(100);
    const stages: number[] = [];
    for (const cutoff of [0, 1, 3]) {
      const dir = join(root, `c${cutoff}`);
      const s = writeProject(p, dir, { latencyCutoff: cutoff, vectors: 1, reset: cutoff === 3 });
      stages.push(s.stages);
      const r = await verify(dir, { vectors: 10000, simulator: 'verilator', seed: cutoff + 1 });
      assert.equal(r.vectors, 10000);
      assert.equal(r.mismatches, 0, `cutoff ${cutoff}: first mismatch ${JSON.stringify(r.first_mismatch)}`);
    }
    assert.equal(stages[0], 1, 'cutoff 0 is combinational');
    assert.ok(stages[1]! > stages[2]! && stages[2]! > 1, `more stages at cutoff 1 than at 3: ${stages}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a broken design is caught: mismatches counted and the first failing vector reported', async (t) => {
  if (!needTool(t, 'verilator')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-vl-'));
  try {
    const p = coveringProgram(100, 40, 4);
    const dir = join(root, 'bad');
    const s = writeProject(p, dir, { vectors: 1 });
    // inject a hardware bug: every adder subtracts and every subtracter adds
    const src = join(dir, s.files.source!);
    const v = readFileSync(src, 'utf8');
    const bugged = v.replace(
      /^(\s*wire [^\n]*?) ([+-]) /gm,
      (_m, head: string, op: string) => `${head} ${op === '+' ? '-' : '+'} `,
    );
    assert.notEqual(bugged, v, 'the design has an adder to break');
    writeFileSync(src, bugged);
    const r = await verify(dir, { vectors: 500, simulator: 'verilator' });
    assert.ok(r.mismatches > 0, 'mismatches found');
    assert.ok(r.first_mismatch !== undefined && r.first_mismatch.vector >= 0 && r.first_mismatch.vector < 500);
    assert.equal(r.first_mismatch.got.length, p.out.length);
    assert.notDeepEqual(r.first_mismatch.got, r.first_mismatch.expected);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
