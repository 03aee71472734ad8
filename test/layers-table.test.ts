import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QUnaryFunctionLUT, QSoftmax, registerLutFunction, type TableExport } from '../src/layers/table.ts';
import { quantize } from '../src/fixed/quantize.ts';
import type { QuantizerExport } from '../src/layers/base.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { saveModel, loadModel } from '../src/train/io.ts';
import { makeRng } from './util/rng.ts';
import { kifAt } from './util/tf.ts';

await initBackend();

/** Table lookup as hardware does it: index = (x − min)/step. */
function lookup(t: TableExport, x: number): number {
  const idx = (x - t.min) / t.step;
  assert.ok(Number.isInteger(idx) && idx >= 0 && idx < t.values.length, `index ${idx} for ${x}`);
  return t.values[idx]!;
}

test('QUnaryFunctionLUT: inference equals table lookup of the exported tables, bit for bit', () => {
  const rng = makeRng(31);
  for (const fn of ['tanh', 'sigmoid']) {
    const m = tf.sequential();
    const l = new QUnaryFunctionLUT({ activation: fn, inputShape: [4], iqConf: { i0: 2, f0: 4 } });
    m.add(l);
    const xs = Float32Array.from({ length: 200 * 4 }, () => (rng.next() - 0.5) * 12);
    calibrate(m, tf.tensor2d(xs, [200, 4]), { reset: true });
    const y = (m.predict(tf.tensor2d(xs, [200, 4])) as tf.Tensor).dataSync();
    const ex = l.exportQuantized();
    const iq = ex.inputQuantizers[0]!;
    const tables = ex['tables'] as TableExport[],
      index = ex['index'] as Int32Array;
    for (let j = 0; j < xs.length; j++) {
      const xq = quantize(xs[j]!, kifAt(iq, j % 4), iq.round, iq.overflow);
      assert.equal(y[j], lookup(tables[index[j % 4]!]!, xq), `${fn} element ${j}`);
    }
    // table values are the output quantizer applied to the function (float32 function values)
    const t0 = tables[0]!;
    const want = quantize(
      Math.fround(fn === 'tanh' ? Math.tanh(t0.min) : 1 / (1 + Math.exp(-t0.min))),
      t0.output,
      ex.outputQuantizer!.round,
      ex.outputQuantizer!.overflow,
    );
    assert.ok(Math.abs(t0.values[0]! - want) <= 2 ** -t0.output.f, 'table entry ≈ quantized f(min)');
  }
});

test('table EBOPs follow HGQ2 table_ebops by hand', () => {
  const m = tf.sequential();
  const l = new QUnaryFunctionLUT({ activation: 'tanh', inputShape: [2], iqConf: { i0: 1, f0: 3 }, oqConf: { b0: 5 } });
  m.add(l);
  // in bits 4 → extra −2 → small = 5·max(1.5625 − 0.546875, 1)·1 = 5.078125 per element
  assert.equal(l.hgqEbops(), 2 * 5 * (1.5625 - 0.109375 * 5));
});

test('QSoftmax: inference equals the exp/reciprocal tables bit for bit; outputs ≈ softmax; save/load', async () => {
  const rng = makeRng(2);
  const m = tf.sequential();
  const l = new QSoftmax({
    inputShape: [5],
    iqConf: { i0: 3, f0: 3 },
    expOqConf: { b0: 8, i0: 1 },
    invOqConf: { b0: 10, i0: 1 },
  });
  m.add(l);
  const xs = Float32Array.from({ length: 100 * 5 }, () => (rng.next() - 0.5) * 6);
  const x = tf.tensor2d(xs, [100, 5]);
  calibrate(m, x, { reset: true });
  const y = (m.predict(x) as tf.Tensor).dataSync();
  const ex = l.exportQuantized();
  const iq = ex.inputQuantizers[0]!;
  const exp = ex['exp'] as { inputQuantizer: QuantizerExport; tables: TableExport[]; index: Int32Array };
  const inv = ex['inv'] as { inputQuantizer: QuantizerExport; tables: TableExport[]; index: Int32Array };
  let maxErr = 0;
  for (let s = 0; s < 100; s++) {
    const xq = Array.from({ length: 5 }, (_, j) => quantize(xs[s * 5 + j]!, kifAt(iq, j), iq.round, iq.overflow));
    const mx = Math.max(...xq);
    const e = xq.map((v, j) =>
      lookup(
        exp.tables[exp.index[j]!]!,
        quantize(mx - v, kifAt(exp.inputQuantizer, j), exp.inputQuantizer.round, exp.inputQuantizer.overflow),
      ),
    );
    const sum = e.reduce((a, b) => a + b, 0);
    const r = lookup(
      inv.tables[inv.index[0]!]!,
      quantize(sum, kifAt(inv.inputQuantizer, 0), inv.inputQuantizer.round, inv.inputQuantizer.overflow),
    );
    const ref = xq.map((v) => Math.exp(v - mx));
    const rs = ref.reduce((a, b) => a + b, 0);
    for (let j = 0; j < 5; j++) {
      assert.equal(y[s * 5 + j], e[j]! * r, `sample ${s} element ${j}`);
      maxErr = Math.max(maxErr, Math.abs(y[s * 5 + j]! - ref[j]! / rs));
    }
  }
  assert.ok(maxErr < 0.05, `max |softmax error| ${maxErr}`);
  assert.ok(l.hgqEbops() > 0);
  const dir = join(mkdtempSync(join(tmpdir(), 'sm-')), 'm');
  await saveModel(m, dir);
  const m2 = await loadModel(dir);
  assert.deepEqual((m2.predict(x) as tf.Tensor).dataSync(), (m.predict(x) as tf.Tensor).dataSync());
});

test('user functions register by name; unknown names are clear errors naming the layer', () => {
  registerLutFunction('cube', (t) => tf.mul(tf.square(t), t));
  const l = new QUnaryFunctionLUT({ activation: 'cube' });
  assert.equal(l.activation, 'cube');
  assert.throws(
    () => new QUnaryFunctionLUT({ activation: 'nope', name: 'lut1' }),
    /QUnaryFunctionLUT 'lut1': unknown activation 'nope'/,
  );
  assert.throws(() => new QSoftmax({ inputScaler: -1, name: 'sm1' }), /QSoftmax 'sm1': inputScaler must be > 0/);
});
