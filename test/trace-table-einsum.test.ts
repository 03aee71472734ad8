/**
 * QEinsumDenseT in hardware (no HGQ2 fixture exists for it, so the property checked is our own chain's
 * exactness): a small model (grouped einsum table layer with zero-width inputs and vanished edges → flatten →
 * ellipsis einsum table layer with batch norm and relu) traces to lut ops and adder trees whose emulation equals
 * tfjs inference bit for bit on 2,000 random inputs (a third of them 4× beyond the port ranges), and its
 * Verilog equals the emulator in Verilator with 0 mismatches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QEinsumDenseT } from '../src/layers/table-einsum.ts';
import { QFlatten } from '../src/layers/shape.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { trace } from '../src/trace/trace.ts';
import { checkAgainstModel } from '../src/trace/check.ts';
import { writeProject } from '../src/backends/project.ts';
import { verify } from '../src/eda/verify.ts';
import type { Program } from '../src/ir/types.ts';
import { needTool } from './backends-fixtures.ts';
import { makeRng } from './util/rng.ts';

await initBackend();

/** Every third element of a layer's quantizer variable set to `value`. */
function everyThird(layer: tf.layers.Layer, name: string, value: number, first: number): void {
  const w = layer.weights.find((v) => v.originalName.endsWith(`/${name}`))!;
  const v = w.read().dataSync().slice();
  for (let j = first; j < v.length; j += 3) v[j] = value;
  w.write(tf.tensor(v, w.shape as number[]));
}

function einsumTableModel(): { model: tf.LayersModel; program: Program } {
  const rng = makeRng(21);
  const input = tf.input({ shape: [3, 4] });
  const a = new QEinsumDenseT({
    equation: 'bci,cio->bco',
    outputShape: [3, 2],
    biasAxes: 'o',
    dHl: 4,
    iqConf: { i0: 2, f0: 2 },
    toqConf: { b0: 5, i0: 2, homogeneousAxes: [0] },
  });
  const b = new QEinsumDenseT({
    equation: '...i,io->...o',
    outputShape: [2],
    batchNorm: true,
    activation: 'relu',
    iqConf: { i0: 3, f0: 1 },
    toqConf: { b0: 4, i0: 2, homogeneousAxes: [0] },
  });
  const h = new QFlatten({}).apply(a.apply(input)) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: b.apply(h) as tf.SymbolicTensor });
  const x = tf.tensor(
    Float32Array.from({ length: 256 * 12 }, () => (rng.next() - 0.5) * 6),
    [256, 3, 4],
  );
  calibrate(model, x, { reset: true });
  for (const l of [a, b])
    for (const w of l.weights) {
      if (!/kernel|bias|bn_/.test(w.originalName)) continue;
      const v = w.read();
      w.write(tf.add(v, tf.randomUniform(v.shape, -1, 1, 'float32', rng.int(0, 1 << 30))));
    }
  everyThird(a, 'iq_f', -40, 0); // zero-width inputs: constant tables
  everyThird(a, 'toq_k', 0, 1); // zero-width table outputs: the edges vanish
  everyThird(a, 'toq_b', 0, 1);
  return { model, program: trace(model) };
}

test('a QEinsumDenseT model traces to lut ops whose emulation equals inference bit for bit; Verilator agrees', async (t) => {
  const { model, program } = einsumTableModel();
  const luts = program.ops.filter((o) => o.kind === 'lut');
  assert.ok(luts.length > 0, 'tables became lut ops');
  for (const o of luts) {
    const q = program.ops[(o as { a: number }).a]!.qint;
    assert.equal((o as { table: number[] }).table.length, Math.round((q.max - q.min) / q.step) + 1, 'one entry per input value');
  }
  const chk = checkAgainstModel(model, program, 2000);
  assert.equal(chk.mismatches, 0, `emulator vs model, first mismatch ${JSON.stringify(chk.first)}`);
  if (!needTool(t, 'verilator')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hgq-eint-vl-'));
  try {
    writeProject(program, dir, { latencyCutoff: 1, vectors: 1 });
    const r = await verify(dir, { vectors: 2000, simulator: 'verilator', seed: 5 });
    assert.equal(r.vectors, 2000);
    assert.equal(r.mismatches, 0, `first mismatch ${JSON.stringify(r.first_mismatch)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
