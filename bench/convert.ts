/**
 * `npm run bench -- convert [MODEL]`: how fast a trained model becomes verified RTL.
 *
 * MNIST (issue #6): the LARGEST checkpoint of the MNIST demo front — MODEL is a demo --out directory
 * (front.json: the checkpoint with the most EBOPs is taken), or one model directory; without one, a
 * quick demo is trained first. Times, wall seconds (and the Node
 * process's CPU seconds): loading; trace with CMVM adder graphs (`trace_seconds`, includes the CMVM solves);
 * the same trace with plain signed-digit trees (`trace_plain_seconds`), so `cmvm_seconds_est` = the
 * difference estimates the CMVM part (the tracer calls CMVM internally and exposes no separate clock);
 * lowering to the pipelined netlist and writing Verilog at latency cutoff 2; then the project and a
 * Verilator check on 10,000 random vectors (build seconds, simulated vectors per second).
 *
 * Synthetic (as before): Verilog/VHDL/HLS writing for a ~50k-op network, Verilator on a ~3k-op design, and
 * Verilator on a table layer (32 × 10 tables on 4-bit inputs, as the hybrid MNIST model's QDenseT).
 * Environment: HGQ_BENCH_MODEL (= MODEL), HGQ_BENCH_VECTORS (default 10000), HGQ_BENCH_SYNTHETIC=0 skips
 * the synthetic part.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { buildNetlist, writeProject } from '../src/backends/project.ts';
import { writeHls } from '../src/backends/hls.ts';
import { writeVerilog } from '../src/backends/verilog.ts';
import { writeVhdl } from '../src/backends/vhdl.ts';
import { hasTool } from '../src/eda/tools.ts';
import { verify } from '../src/eda/verify.ts';
import { analyzeProgram } from '../src/ir/cost.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import type { Program } from '../src/ir/types.ts';
import { mulberry32 } from '../src/util/random.ts';

/** Dense layers as adder trees: each output sums `fanIn` shifted inputs (±), then ReLU and 8-bit quantization. */
export function syntheticNetwork(widths: number[], fanIn: number, seed = 1): Program {
  const r = mulberry32(seed);
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
  return b.build(
    `synthetic_${widths.join('x')}`,
    [{ name: 'x', shape: [widths[0]!] }],
    [{ name: 'y', shape: [n] }],
    layer.map((w) => ({ wire: w, shift: 0, neg: false })),
  );
}

/**
 * A table layer as hgq traces QDenseT: every edge (input i → output o) a table over the input's values,
 * each output the sum of its edges' tables. The shape of the hybrid MNIST model's QDenseT(10) on 32 inputs.
 */
export function syntheticTableLayer(nIn: number, nOut: number, inputBits: number, seed = 1): Program {
  const r = mulberry32(seed);
  const b = new ProgramBuilder();
  const xs = Array.from({ length: nIn }, (_, j) => b.input(j, { k: 1, i: inputBits - 3, f: 2 }, 'RND', 'SAT'));
  const outs = Array.from({ length: nOut }, () => {
    b.layer = 'table';
    const edges = xs.map((x) =>
      b.lut(
        x,
        Array.from({ length: 2 ** inputBits }, () => Math.round((r() - 0.5) * 64) / 16),
      ),
    );
    return edges.reduce((acc, e) => b.add(acc, e));
  });
  return b.build(
    `synthetic_table_${nIn}x${nOut}`,
    [{ name: 'x', shape: [nIn] }],
    [{ name: 'y', shape: [nOut] }],
    outs.map((w) => ({ wire: w, shift: 0, neg: false })),
  );
}

/** The model to time: the most expensive checkpoint of a demo front, a model directory, or (none given) a fresh quick demo. */
async function pickModel(arg: string | undefined): Promise<{ path: string; ebops: number | null; note: string }> {
  if (arg === undefined) return quickDemoModel('no MODEL given');
  const dir = resolve(arg);
  const front = join(dir, 'front.json');
  if (existsSync(front)) {
    const entries = JSON.parse(readFileSync(front, 'utf8')) as { path: string; ebops: number }[];
    if (!entries.length) throw new Error(`${front} lists no checkpoints`);
    const top = entries.reduce((a, b) => (b.ebops > a.ebops ? b : a));
    // front.json holds the run's absolute paths; the checkpoints sit next to it
    return {
      path: join(dir, basename(top.path)),
      ebops: top.ebops,
      note: `largest of ${entries.length} front checkpoints in ${dir}`,
    };
  }
  if (existsSync(join(dir, 'model.json'))) return { path: dir, ebops: null, note: 'model directory' };
  return quickDemoModel(`${dir} holds no demo front (front.json) or model`);
}

async function quickDemoModel(why: string): Promise<{ path: string; ebops: number | null; note: string }> {
  console.log(`${why}; training the quick demo (hgq demo --quick) to time its checkpoint instead`);
  const { runDemo } = await import('../src/app/demo.ts');
  const out = join(mkdtempSync(join(tmpdir(), 'hgq-bench-demo-')), 'demo');
  const r = await runDemo({ quick: true, out, progress: null, log: () => {} });
  const top = r.checkpoints[r.checkpoints.length - 1]!;
  return { path: top.path, ebops: top.ebops, note: `quick demo (${why})` };
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000;

/** Wall and Node CPU seconds of fn. */
async function timed<T>(fn: () => T | Promise<T>): Promise<{ value: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { value, wall: r3((performance.now() - t0) / 1000), cpu: r3((c.user + c.system) / 1e6) };
}

async function mnist(res: Record<string, unknown>, vectors: number): Promise<void> {
  const pick = await pickModel(process.argv[3] ?? process.env.HGQ_BENCH_MODEL);
  const { loadModelAny } = await import('../src/app/load-model.ts');
  const { trace } = await import('../src/trace/trace.ts');
  const load = await timed(() => loadModelAny(pick.path));
  const model = load.value;
  const da = await timed(() => trace(model, { cmvm: 'da' }));
  // the CMVM search as before its extra search (effort 1, one thread), for the ratio; and with a helper thread
  const old = await timed(() => trace(model, { cmvm: 'da', effort: 1, cmvmThreads: 1 }));
  const two = await timed(() => trace(model, { cmvm: 'da', cmvmThreads: 2 }));
  const plain = await timed(() => trace(model, { cmvm: 'none' }));
  model.dispose();
  const p = da.value;
  const lower = await timed(() => buildNetlist(p, { latencyCutoff: 2 }).nl);
  const verilog = await timed(() => writeVerilog(lower.value, 'mnist'));
  const m: Record<string, unknown> = {
    model: pick.path,
    source: pick.note,
    ebops: pick.ebops,
    ops: p.ops.length,
    ir_cost: analyzeProgram(p).totalCost,
    ops_plain: plain.value.ops.length,
    ir_cost_plain: analyzeProgram(plain.value).totalCost,
    load_seconds: load.wall,
    trace_seconds: da.wall,
    trace_cpu_seconds: da.cpu,
    trace_seconds_effort1_one_thread: old.wall,
    trace_time_ratio_vs_effort1_one_thread: r3(da.wall / old.wall),
    trace_seconds_two_threads: two.wall,
    ir_cost_effort1_one_thread: analyzeProgram(old.value).totalCost,
    trace_plain_seconds: plain.wall,
    cmvm_seconds_est: r3(da.wall - plain.wall),
    lower_seconds: lower.wall,
    verilog_seconds: verilog.wall,
    verilog_bytes: verilog.value.length,
    stages_cutoff2: lower.value.stages,
    trace_cmvm_verilog_seconds: r3(da.wall + lower.wall + verilog.wall),
  };
  console.log(
    `MNIST ${pick.path} (${pick.note}): ${p.ops.length} ops; trace ${da.wall} s (plain trees ${plain.wall} s → CMVM ≈ ${m.cmvm_seconds_est} s; ` +
      `effort 1 on one thread ${old.wall} s, cost ${m.ir_cost_effort1_one_thread} vs ${m.ir_cost}), ` +
      `lower ${lower.wall} s, Verilog ${verilog.wall} s (${verilog.value.length} bytes, ${lower.value.stages} stages at cutoff 2)`,
  );
  if (hasTool('verilator')) {
    const root = mkdtempSync(join(tmpdir(), 'hgq-bench-mnist-'));
    try {
      const prj = await timed(() => writeProject(p, join(root, 'prj'), { latencyCutoff: 2, vectors: 0 }));
      const v = await timed(() => verify(join(root, 'prj'), { vectors, simulator: 'verilator' }));
      const r = v.value;
      if (r.mismatches) throw new Error(`MNIST design mismatches the emulator: ${JSON.stringify(r.first_mismatch)}`);
      // a second check reuses the build: simulation alone, more vectors
      const r2 = await verify(join(root, 'prj'), { vectors: 2 * vectors, simulator: 'verilator', seed: 7 });
      if (r2.mismatches) throw new Error(`MNIST design mismatches the emulator: ${JSON.stringify(r2.first_mismatch)}`);
      Object.assign(m, {
        project_seconds: prj.wall,
        verify_seconds: v.wall,
        verilator_build_seconds: r3(r.build_seconds),
        verilator_vectors: r.vectors,
        verilator_run_seconds: r3(r.run_seconds),
        verilator_vectors_per_second: Math.round(r.vectors_per_second),
        verilator_vectors_per_second_2x: Math.round(r2.vectors_per_second),
        vectors_and_emulator_seconds: r3(v.wall - r.build_seconds - r.run_seconds),
        mismatches: r.mismatches + r2.mismatches,
      });
      console.log(
        `  Verilator: build ${r3(r.build_seconds)} s, ${r.vectors} vectors in ${r3(r.run_seconds)} s (${Math.round(r.vectors_per_second)}/s; ` +
          `${r2.vectors} in ${r3(r2.run_seconds)} s on the cached build), 0 mismatches; vectors + emulator ${m.vectors_and_emulator_seconds} s`,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  } else m.verilator = 'not installed (apt-get install verilator)';
  res.mnist = m;
}

export default async function main(): Promise<void> {
  const res: Record<string, unknown> = {};
  await mnist(res, Number(process.env.HGQ_BENCH_VECTORS ?? 10000));
  if (process.env.HGQ_BENCH_SYNTHETIC !== '0') res.synthetic = await synthetic();
  console.log(JSON.stringify(res));
}

async function synthetic(): Promise<Record<string, unknown>> {
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
      const r = await verify(join(root, 'mid'), { vectors: 20000, simulator: 'verilator' });
      if (r.mismatches) throw new Error(`bench design mismatches the emulator: ${JSON.stringify(r.first_mismatch)}`);
      Object.assign(res, {
        sim_ops: mid.ops.length,
        verilator_build_seconds: r.build_seconds,
        verilator_vectors: r.vectors,
        verilator_vectors_per_second: Math.round(r.vectors_per_second),
      });
      // a second run reuses the cached build
      const r2 = await verify(join(root, 'mid'), { vectors: 20000, simulator: 'verilator', seed: 2 });
      res.verilator_cached_build_seconds = r2.build_seconds;
      // table-heavy designs once took minutes: Verilator wrote each table to a file of its own (docs/rtl.md §6)
      const tables = syntheticTableLayer(32, 10, 4);
      writeProject(tables, join(root, 'tables'), { latencyCutoff: 2, vectors: 0 });
      const rt = await verify(join(root, 'tables'), { vectors: 20000, simulator: 'verilator' });
      if (rt.mismatches) throw new Error(`bench table design mismatches the emulator: ${JSON.stringify(rt.first_mismatch)}`);
      Object.assign(res, {
        table_ops: tables.ops.filter((o) => o.kind === 'lut').length,
        table_verilator_build_seconds: rt.build_seconds,
        table_verilator_vectors_per_second: Math.round(rt.vectors_per_second),
      });
      console.log(`Verilator: ${res.table_ops} tables built in ${r3(rt.build_seconds)} s`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  } else res.verilator = 'not installed (apt-get install verilator)';
  return res;
}
