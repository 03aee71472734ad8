/**
 * The generated HDL text is stable: refactors of the lowering (src/backends/netlist.ts) or the printers must
 * not change a byte of it. The hashes were recorded from the code before its split into named steps (and
 * checked then against the previous implementation on 1,200 random programs × cutoffs). A deliberate
 * change of the output updates them: print the new hashes with `GOLDEN_PRINT=1`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { analyze } from '../src/backends/analysis.ts';
import { lowerProgram } from '../src/backends/netlist.ts';
import { writeVerilog } from '../src/backends/verilog.ts';
import { writeVhdl } from '../src/backends/vhdl.ts';
import type { Program } from '../src/ir/types.ts';
import { coveringProgram } from './backends-fixtures.ts';
import { randomProgram } from './util/random-program.ts';
import { makeRng } from './util/rng.ts';

const CASES: Array<{ name: string; program: () => Program; cutoff: number; sha256: string }> = [
  {
    name: 'covering program, combinational',
    program: () => coveringProgram(100),
    cutoff: 0,
    sha256: '6983ff9a2b7cbadbc58a38c1485810d9bc703e71b1314d8e380381ca37c9ad1e',
  },
  {
    name: 'covering program, cutoff 2',
    program: () => coveringProgram(100),
    cutoff: 2,
    sha256: '7f539ad0425c9fd338c644831185cd42fde9f0e9817ed1a197fe08b8fbb3e0a5',
  },
  {
    name: 'random 60-op program, cutoff 1',
    program: () => randomProgram(makeRng(5), { nOps: 60, maxWidth: 40 }),
    cutoff: 1,
    sha256: '1e272bc84b7cf81e0a09005f05df8bd42bade734da57303f5c47097685eed262',
  },
  {
    name: 'random wide program, cutoff 3',
    program: () => randomProgram(makeRng(6), { nOps: 40, maxWidth: 60 }),
    cutoff: 3,
    sha256: 'c9a0174f98f23401d285007c992093ec5f15400b48663a6a3c114d42c86fd22d',
  },
];

function hdlHash(p: Program, cutoff: number): string {
  const nl = lowerProgram(p, { latencyCutoff: cutoff, latency: analyze(p).latency });
  return createHash('sha256').update(writeVerilog(nl, 'top')).update(writeVhdl(nl, 'top')).digest('hex');
}

for (const c of CASES) {
  test(`Verilog and VHDL text unchanged: ${c.name}`, () => {
    const got = hdlHash(c.program(), c.cutoff);
    if (process.env.GOLDEN_PRINT) console.log(`${c.name}: ${got}`);
    assert.equal(got, c.sha256, `the HDL of '${c.name}' changed; if deliberate, record the new hash`);
  });
}
