/**
 * Generated Verilog: lint-clean under `verilator -Wall --lint-only`, and Icarus simulation equals the
 * emulator bit for bit on random programs at cutoffs 0, 1, 3. Plus the bus layout and pipelining bookkeeping.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inputLayout, outputLayout } from '../src/backends/layout.ts';
import { lowerProgram, stageOf } from '../src/backends/netlist.ts';
import { generateProject, writeProject } from '../src/backends/project.ts';
import { makeVectors, packHex, randomPortValues, unpackHex } from '../src/backends/vectors.ts';
import { analyze } from '../src/backends/analysis.ts';
import { verify } from '../src/eda/verify.ts';
import { hdlName } from '../src/backends/verilog.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { makeRng } from './util/rng.ts';
import { randomProgram } from './util/random-program.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';

test('verilator -Wall --lint-only is clean for random programs at cutoffs 0, 1, 3', (t) => {
  if (!needTool(t, 'verilator')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-lint-'));
  try {
    for (let seed = 1; seed <= 8; seed++) {
      const p = seed === 1 ? coveringProgram(100) : randomProgram(makeRng(seed * 7), { nOps: 80 });
      for (const cutoff of [0, 1, 3]) {
        const dir = join(root, `${seed}_${cutoff}`);
        const s = writeProject(p, dir, { latencyCutoff: cutoff, vectors: 0, reset: seed % 2 === 0 });
        const r = spawnSync('verilator', ['-Wall', '--lint-only', join(dir, s.files.source!)], { encoding: 'utf8' });
        assert.equal(r.status, 0, `seed ${seed} cutoff ${cutoff}:\n${r.stderr}`);
        assert.equal(r.stderr.trim(), '', `seed ${seed} cutoff ${cutoff}: warnings\n${r.stderr}`);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('Icarus simulation equals the emulator on random programs at cutoffs 0, 1, 3', async (t) => {
  if (!needTool(t, 'iverilog')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-iv-'));
  try {
    let vectors = 0;
    for (let seed = 1; seed <= 4; seed++) {
      const p = seed === 1 ? coveringProgram(200) : randomProgram(makeRng(seed * 13), { nOps: 80 });
      for (const cutoff of [0, 1, 3]) {
        const dir = join(root, `${seed}_${cutoff}`);
        writeProject(p, dir, { latencyCutoff: cutoff, vectors: 1 });
        const r = await verify(dir, { vectors: 1500, simulator: 'icarus', seed });
        assert.equal(r.mismatches, 0, `seed ${seed} cutoff ${cutoff}: ${JSON.stringify(r.first_mismatch)}`);
        vectors += r.vectors;
      }
    }
    assert.equal(vectors, 4 * 3 * 1500);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('bus layout: element 0 in the LSBs, fields back to back at their exact widths; hex round-trips', () => {
  const b = new ProgramBuilder();
  const x0 = b.input(0, { k: 1, i: 2, f: 1 }); // 4 bits signed, step 1/2
  const x1 = b.input(1, { k: 0, i: 3, f: 0 }); // 3 bits unsigned
  b.input(2, { k: 0, i: -1, f: 0 }); // width 0: no bits
  const s = b.add(x0, x1);
  const p = b.build(
    'lay',
    [{ name: 'x', shape: [3] }],
    [{ name: 'y', shape: [3] }],
    [
      { wire: s, shift: 0, neg: false },
      { wire: -1, shift: 0, neg: false },
      { wire: x1, shift: 1, neg: true },
    ],
  );
  const il = inputLayout(p);
  assert.deepEqual(
    il.fields.map((f) => [f.offset, f.w, f.signed, f.lsb]),
    [
      [0, 4, true, -1],
      [4, 3, false, 0],
      [7, 0, false, 0],
    ],
  );
  assert.equal(il.width, 7);
  const ol = outputLayout(p);
  assert.deepEqual(
    ol.fields.map((f) => f.w),
    [ol.fields[0]!.w, 0, ol.fields[2]!.w],
  );
  assert.equal(ol.fields[2]!.offset, ol.fields[0]!.w);
  // x0 = -1.5 (code -3 → 0b1101), x1 = 5 (0b101): bus = 101_1101
  const hex = packHex(il, Float64Array.from([-1.5, 5, 0]), 1);
  assert.deepEqual(hex, ['5d']);
  assert.deepEqual(unpackHex(il, hex[0]!), [-1.5, 5, 0]);
  const vals = randomPortValues(il, 200, 3);
  const lines = packHex(il, vals, 200);
  lines.forEach((l, v) => assert.deepEqual(unpackHex(il, l), Array.from(vals.subarray(v * 3, v * 3 + 3))));
  // expected outputs round-trip through the output layout too
  const vec = makeVectors(p, 50);
  vec.expHex.forEach((l, v) => assert.deepEqual(unpackHex(ol, l), Array.from(vec.expected.subarray(v * 3, v * 3 + 3))));
});

test('pipelining: stages follow the latency cutoff and every operand comes from the same or an earlier stage', () => {
  const p = coveringProgram(100);
  const a = analyze(p);
  for (const cutoff of [0, 1, 2, 3, 5]) {
    const nl = lowerProgram(p, { latencyCutoff: cutoff, latency: a.latency });
    const deepest = Math.max(
      ...p.out.filter((o) => o.wire >= 0 && p.ops[o.wire]!.qint.min !== p.ops[o.wire]!.qint.max).map((o) => a.latency[o.wire]!),
    );
    const want = cutoff === 0 ? 1 : stageOf(deepest, cutoff) + 1;
    assert.equal(nl.stages, want, `cutoff ${cutoff}`);
    const stageOfNet = new Map(nl.nets.map((n) => [n.name, n.stage]));
    for (const n of nl.nets) {
      if (n.kind === 'reg') assert.equal(stageOfNet.get(n.d), n.stage - 1, `${n.name} registers its previous stage`);
      else {
        const refs = JSON.stringify(n, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).match(/"sig":"([^"]+)"/g) ?? [];
        for (const r of refs) {
          const name = r.slice(7, -1);
          if (name === 'inp') assert.equal(n.stage, 0, `${n.name} reads the input bus only in stage 0`);
          else
            assert.equal(
              stageOfNet.get(name),
              n.stage,
              `${n.name} (stage ${n.stage}) reads ${name} from stage ${stageOfNet.get(name)}`,
            );
        }
      }
    }
  }
});

test('summary.json holds the estimate, latency, stages and both bus layouts', () => {
  const p = coveringProgram(100);
  const { files, summary } = generateProject(p, { latencyCutoff: 2, vectors: 3 });
  const s = JSON.parse(files.get('summary.json')!);
  for (const k of ['estimated_lut', 'latency_cycles', 'stages', 'inputs', 'outputs', 'files', 'ports']) assert.ok(k in s, k);
  assert.equal(s.latency_cycles, s.stages - 1);
  assert.ok(s.stages > 1 && s.estimated_lut > 0);
  assert.equal(s.inputs.fields.length, 8);
  assert.equal(s.outputs.fields.length, p.out.length);
  assert.equal(summary.testbench_vectors, 3);
  assert.equal(files.get('tb/inputs.hex')!.trim().split('\n').length, 3);
  assert.match(files.get(summary.files.source!)!, new RegExp(`module ${summary.top} \\(`));
  assert.match(files.get('vivado/build.tcl')!, /synth_design .*-mode out_of_context/);
  assert.match(files.get(summary.files.xdc!)!, /create_clock -period 5 /);
  void readFileSync;
});

test('bad input gets a clear error', () => {
  const p = coveringProgram(100, 40, 4);
  assert.throws(() => generateProject(p, { format: 'sv' as never }), /unknown format "sv"/);
  assert.throws(() => generateProject(p, { latencyCutoff: -1 }), /latencyCutoff must be a number >= 0/);
  assert.throws(() => generateProject(p, { clockPeriodNs: 0 }), /clock period must be > 0/);
});

test('top-level names are legal identifiers that collide with no keyword or internal signal', () => {
  assert.equal(hdlName('my-model.v2'), 'my_model_v2');
  assert.equal(hdlName('3layers'), 'hgq_3layers');
  assert.equal(hdlName('process'), 'process_top');
  assert.equal(hdlName('Entity'), 'Entity_top');
  assert.equal(hdlName('v12'), 'v12_top');
  assert.equal(hdlName('outp'), 'outp_top');
  assert.equal(hdlName('***'), 'hgq_design');
});
