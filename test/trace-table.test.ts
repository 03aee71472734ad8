/**
 * HGQ-LUT models in hardware: the five HGQ2 fixtures (../shared/fixtures/hgq2-lut) imported and traced. The
 * emulated program equals the model on 1,000 random inputs (incl. 4× beyond the port ranges) and HGQ2's own
 * outputs on the stored test inputs, bit for bit; tables are lut ops; Verilator equals the emulator on the
 * smallest (one build keeps the suite quick); VHDL and HLS projects carry one ROM per lut op.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend.ts';
import { loadHgq2Model } from '../src/import/hgq2-model.ts';
import { buildHgqModel } from '../src/import/hgq2-build.ts';
import { trace } from '../src/trace/trace.ts';
import { checkAgainstModel } from '../src/trace/check.ts';
import { compileProgram } from '../src/ir/emulate.ts';
import type { Program } from '../src/ir/types.ts';
import { writeProject } from '../src/backends/project.ts';
import { verify } from '../src/eda/verify.ts';
import { needTool } from './backends-fixtures.ts';
import * as tf from '@tensorflow/tfjs';
import { QDense } from '../src/layers/dense.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { QConvT1D, QDenseT } from '../src/layers/table-dense.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { makeRng } from './util/rng.ts';
import { HGQ2_LUT_DIR, HGQ2_LUT_STEMS, lutFixturesSkip } from './util/hgq2-fixtures.ts';

await initBackend();

const DIR = HGQ2_LUT_DIR;
const STEMS = HGQ2_LUT_STEMS;
const skip = lutFixturesSkip(test);

function f32(a: { b64_f32le: string }): Float32Array {
  const b = Buffer.from(a.b64_f32le, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

const programs = new Map<string, Program>();
async function traced(stem: string): Promise<Program> {
  let p = programs.get(stem);
  if (!p) {
    const model = buildHgqModel(await loadHgq2Model(`${DIR}${stem}.keras`));
    p = trace(model);
    programs.set(stem, p);
    const chk = checkAgainstModel(model, p, 1000);
    assert.equal(chk.mismatches, 0, `${stem}: emulator vs model, first mismatch ${JSON.stringify(chk.first)}`);
  }
  return p;
}

for (const stem of STEMS) {
  test(`${stem}: traced program equals the model and HGQ2's outputs bit for bit; tables are lut ops`, {
    skip,
  }, async () => {
    const p = await traced(stem);
    const ref = JSON.parse(readFileSync(`${DIR}${stem}.json`, 'utf8'));
    const z = compileProgram(p).run(Float64Array.from(f32(ref.test_inputs)), ref.test_inputs.shape[0]);
    const want = f32(ref.outputs);
    let bad = 0;
    for (let j = 0; j < want.length; j++) if (z[j] !== want[j]) bad++;
    assert.equal(bad, 0, `${stem}: ${bad} of ${want.length} emulated outputs differ from HGQ2`);
    const tableLayers = Object.entries<{ class: string }>(ref.ebops.per_layer)
      .filter(([, v]) => /T(1D|2D)?$/.test(v.class))
      .map(([k]) => k);
    for (const name of tableLayers) {
      const luts = p.ops.filter((o) => o.kind === 'lut' && o.layer?.includes(name));
      assert.ok(luts.length > 0, `${stem}: layer ${name} has lut ops`);
      for (const o of luts) {
        const q = p.ops[(o as { a: number }).a]!.qint;
        assert.equal(
          (o as { table: number[] }).table.length,
          Math.round((q.max - q.min) / q.step) + 1,
          'one entry per input value',
        );
      }
    }
  });
}

test('Verilator equals the emulator on a table-layer design (lut_dense_nhl2, pipelined)', {
  skip,
}, async (t) => {
  if (!needTool(t, 'verilator')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-lut-vl-'));
  try {
    for (const [stem, cutoff] of [['lut_dense_nhl2', 1]] as const) {
      const dir = join(root, stem);
      writeProject(await traced(stem), dir, {
        latencyCutoff: cutoff,
        vectors: 1,
      });
      const r = await verify(dir, { vectors: 2000, simulator: 'verilator', seed: 7 });
      assert.equal(r.vectors, 2000);
      assert.equal(r.mismatches, 0, `${stem}: first mismatch ${JSON.stringify(r.first_mismatch)}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('VHDL and HLS projects carry the tables (lut_dense_nhl2)', {
  skip,
}, async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-lut-fmt-'));
  try {
    const p = await traced('lut_dense_nhl2');
    for (const format of ['vhdl', 'hls'] as const) {
      const s = writeProject(p, join(root, format), { format, vectors: 1 });
      const src = readFileSync(join(root, format, s.files.source!), 'utf8');
      const roms = (src.match(format === 'vhdl' ? /table\(v\d+\)/g : /_rom\[\d+\] = \{/g) ?? []).length;
      assert.equal(roms, p.ops.filter((o) => o.kind === 'lut').length, `${format}: one ROM per lut op`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a hybrid model (QConvT1D → QDense → QDenseT with batch norm) trains on tfjs, calibrates, traces and equals its program', async () => {
  const rng = makeRng(4);
  const n = 256;
  const xs = Float32Array.from({ length: n * 8 * 2 }, () => (rng.next() - 0.5) * 4);
  const ys = Float32Array.from({ length: n * 2 }, (_, j) =>
    Math.tanh(xs[Math.floor(j / 2) * 16 + (j % 2)]! - xs[Math.floor(j / 2) * 16 + 5]!),
  );
  const input = tf.input({ shape: [8, 2] });
  let h = new QConvT1D({
    filters: 2,
    kernelSize: 3,
    strides: 2,
    beta0: 1e-5,
    iqConf: { i0: 2, f0: 3 },
    toqConf: { homogeneousAxes: [0] },
  }).apply(input) as tf.SymbolicTensor;
  h = new QFlatten({}).apply(h) as tf.SymbolicTensor;
  h = new QDense({ units: 4, activation: 'relu', beta0: 1e-5 }).apply(h) as tf.SymbolicTensor;
  const out = new QDenseT({
    nOut: 2,
    batchNorm: true,
    beta0: 1e-5,
    toqConf: { homogeneousAxes: [0] },
  }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
  const x = tf.tensor3d(xs, [n, 8, 2]);
  const y = tf.tensor2d(ys, [n, 2]);
  const h0 = await model.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0 });
  const h1 = await model.fit(x, y, { epochs: 15, batchSize: 64, verbose: 0 });
  const l0 = h0.history['loss']![0] as number;
  const l1 = h1.history['loss']!.at(-1) as number;
  assert.ok(l1 < l0, `training loss ${l0} → ${l1}`);
  calibrate(model, x, { reset: true });
  const p = trace(model);
  assert.ok(
    p.ops.some((o) => o.kind === 'lut'),
    'tables became lut ops',
  );
  const chk = checkAgainstModel(model, p, 500);
  assert.equal(chk.mismatches, 0, `first mismatch ${JSON.stringify(chk.first)}`);
});
