/**
 * Generated VHDL analyzes and elaborates with GHDL (VHDL-2008) and its simulation equals the emulator bit
 * for bit on random programs covering every op kind, at cutoffs 0, 1 and 3 (with and without reset).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeProject } from '../src/backends/project.ts';
import { verify } from '../src/eda/verify.ts';
import { makeRng } from './util/rng.ts';
import { randomProgram } from './util/random-program.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';

test('GHDL simulation of the VHDL equals the emulator (every op kind, cutoffs 0, 1, 3)', async (t) => {
  if (!needTool(t, 'ghdl')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-vhdl-'));
  try {
    let total = 0;
    for (let seed = 1; seed <= 3; seed++) {
      const p = seed === 1 ? coveringProgram(300) : randomProgram(makeRng(seed * 31), { nOps: 80 });
      for (const cutoff of [0, 1, 3]) {
        const dir = join(root, `${seed}_${cutoff}`);
        writeProject(p, dir, { format: 'vhdl', latencyCutoff: cutoff, vectors: 1, reset: cutoff === 1 });
        const r = await verify(dir, { vectors: 1000, simulator: 'ghdl', seed });
        assert.equal(r.mismatches, 0, `seed ${seed} cutoff ${cutoff}: ${JSON.stringify(r.first_mismatch)}`);
        total += r.vectors;
      }
    }
    assert.equal(total, 9000);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
