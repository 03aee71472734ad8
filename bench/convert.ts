/**
 * `npm run bench -- convert`: RTL generation speed and simulation throughput.
 *
 *  - write_seconds: lowering + Verilog (and VHDL, HLS) text for a large synthetic network program
 *    (dense layers of shift-and-add trees with ReLU + 8-bit requantization, ~50k ops);
 *  - Verilator: build seconds and simulated vectors per second for a medium program (~3k ops, pipelined),
 *    run time only, 20k vectors, checked against the emulator.
 * The trace + CMVM timing for the MNIST checkpoint is added by the tracer's benchmark.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNetlist, writeProject } from '../src/backends/project.ts';
import { writeHls } from '../src/backends/hls.ts';
import { writeVerilog } from '../src/backends/verilog.ts';
import { writeVhdl } from '../src/backends/vhdl.ts';
import { hasTool } from '../src/eda/tools.ts';
import { verify } from '../src/eda/verify.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import type { Program } from '../src/ir/types.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Dense layers as adder trees: each output sums `fanIn` shifted inputs (±), then ReLU and 8-bit quantization. */
export function syntheticNetwork(widths: number[], fanIn: number, seed = 1): Program {
  const r = rng(seed);
  const b = new ProgramBuilder();
  let layer = Array.from({ length: widths[0]! }, (_, j) => b.input(j, { k: 1, i: 3, f: 4 }, 'RND', 'SAT'));
  for (let l = 1; l < widths.length; l++) {
    b.layer = `dense${l}`;
    const next: number[] = [];
    for (let o = 0; o < widths[l]!; o++) {
      let terms = Array.from({ length: fanIn }, () => b.copy(layer[Math.floor(r() * layer.length)]!, Math.floor(r() * 4) - 2));
      while (terms.length > 1) {
        const t: number[] = [];
        for (let k = 0; k + 1 < terms.length; k += 2) t.push(b.add(terms[k]!, terms[k + 1]!, 0, r() < 0.3));
        if (terms.length % 2) t.push(terms[terms.length - 1]!);
        terms = t;
      }
      const y = l < widths.length - 1 ? b.relu(terms[0]!) : terms[0]!;
      next.push(b.quant(y, { k: l < widths.length - 1 ? 0 : 1, i: 4, f: 3 }, 'RND', 'SAT'));
    }
    layer = next;
  }
  const n = widths[widths.length - 1]!;
  return b.build(`synthetic_${widths.join('x')}`, [{ name: 'x', shape: [widths[0]!] }], [{ name: 'y', shape: [n] }], layer.map((w) => ({ wire: w, shift: 0, neg: false })));
}

export default async function main(): Promise<void> {
  const big = syntheticNetwork([784, 256, 128, 10], 64);
  const t0 = performance.now();
  const { nl } = buildNetlist(big, { latencyCutoff: 2 });
  const v = writeVerilog(nl, 'big');
  const t1 = performance.now();
  const vh = writeVhdl(nl, 'big');
  const t2 = performance.now();
  const h = writeHls(big, 'big');
  const t3 = performance.now();
  const res: Record<string, unknown> = {
    ops: big.ops.length,
    stages: nl.stages,
    verilog_bytes: v.length,
    write_seconds: (t1 - t0) / 1000,
    vhdl_seconds: (t2 - t1) / 1000,
    hls_seconds: (t3 - t2) / 1000,
    hls_bytes: vh.length + h.length,
  };
  console.log(`wrote Verilog for ${big.ops.length} ops in ${res.write_seconds} s (${nl.stages} stages)`);
  if (hasTool('verilator')) {
    const mid = syntheticNetwork([64, 32, 32, 10], 32, 2);
    const root = mkdtempSync(join(tmpdir(), 'hgq-bench-'));
    try {
      writeProject(mid, join(root, 'mid'), { latencyCutoff: 2, vectors: 0 });
      const r = verify(join(root, 'mid'), { vectors: 20000, simulator: 'verilator' });
      if (r.mismatches) throw new Error(`bench design mismatches the emulator: ${JSON.stringify(r.first_mismatch)}`);
      Object.assign(res, {
        sim_ops: mid.ops.length,
        verilator_build_seconds: r.build_seconds,
        verilator_vectors: r.vectors,
        verilator_vectors_per_second: Math.round(r.vectors_per_second),
      });
      // a second run reuses the cached build
      const r2 = verify(join(root, 'mid'), { vectors: 20000, simulator: 'verilator', seed: 2 });
      res.verilator_cached_build_seconds = r2.build_seconds;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  } else res.verilator = 'not installed (apt-get install verilator)';
  console.log(JSON.stringify(res));
}
