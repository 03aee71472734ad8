/**
 * Configuration: defaults per place (docs/quantizers.md §7), scoped overrides (nesting, restored after the scope even on
 * error), per-quantizer overrides, granularity → parameter shapes, variable names and order (HGQ2's), custom
 * weight factories, serialization round trip, and clear errors for bad options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { Quantizer, resolveQuantizerConfig, withQuantizerConfig, type QVariable } from '../src/quantizer/index.ts';

test('defaults per place', () => {
  const w = resolveQuantizerConfig({ place: 'weight' });
  assert.deepEqual(
    [w.qType, w.k0, w.b0, w.i0, w.roundMode, w.overflowMode, w.bBounds, w.iBounds, w.l1, w.homogeneousAxes],
    ['kbi', 1, 8, 2, 'RND', 'SAT_SYM', [0, 23], [-24, 24], 1e-8, []],
  );
  const b = resolveQuantizerConfig({ place: 'bias' });
  assert.deepEqual([b.qType, b.b0, b.i0, b.overflowMode, b.homogeneousAxes], ['kbi', 8, 2, 'SAT_SYM', []]);
  const a = resolveQuantizerConfig({ place: 'activation' });
  assert.deepEqual(
    [a.place, a.qType, a.i0, a.f0, a.roundMode, a.overflowMode, a.iDecaySpeed, a.fBounds, a.homogeneousAxes],
    ['datalane', 'kif', 2, 6, 'RND', 'WRAP', 0.01, [-24, 24], [0]],
  );
  const t = resolveQuantizerConfig({ place: 'table' });
  assert.deepEqual([t.qType, t.overflowMode, t.heterogeneousAxes, t.homogeneousAxes], ['kbi', 'SAT_SYM', [], null]);
});

test('scoped defaults nest, lose to explicit options, and are restored afterwards (also after a throw)', () => {
  const inner = withQuantizerConfig({ default: { roundMode: 'TRN' }, weight: { b0: 4 } }, () =>
    withQuantizerConfig({ weight: { i0: 1 }, activation: { qType: 'kbi' } }, () => ({
      w: resolveQuantizerConfig({ place: 'weight' }),
      w2: resolveQuantizerConfig({ place: 'weight', b0: 6 }),
      a: resolveQuantizerConfig({ place: 'datalane' }),
    })),
  );
  assert.deepEqual([inner.w.b0, inner.w.i0, inner.w.roundMode], [4, 1, 'TRN']);
  assert.equal(inner.w2.b0, 6);
  assert.deepEqual([inner.a.qType, inner.a.b0, inner.a.overflowMode, inner.a.roundMode], ['kbi', 8, 'WRAP', 'TRN']);
  assert.throws(
    () =>
      withQuantizerConfig({ weight: { b0: 3 } }, () => {
        throw new Error('boom');
      }),
    /boom/,
  );
  const after = resolveQuantizerConfig({ place: 'weight' });
  assert.deepEqual([after.b0, after.i0, after.roundMode], [8, 2, 'RND']);
  // two of (i0, f0, b0) determine the third, as in HGQ2's scopes
  const d = resolveQuantizerConfig({ place: 'weight', i0: 3, f0: 2 });
  assert.equal(d.b0, 5);
});

test('granularity sets the parameter shape (homogeneous axes become 1)', () => {
  const shapes: [object, (number | null)[], number[]][] = [
    [{ place: 'datalane' }, [null, 4, 5], [1, 4, 5]],
    [{ place: 'weight' }, [3, 3, 2, 8], [3, 3, 2, 8]],
    [{ place: 'weight', granularity: 'channel' }, [3, 3, 2, 8], [1, 1, 1, 8]],
    [{ place: 'weight', granularity: 'tensor' }, [3, 3], [1, 1]],
    [{ place: 'datalane', homogeneousAxes: [0, -1] }, [null, 4, 5], [1, 4, 1]],
    [{ place: 'datalane', heterogeneousAxes: [1] }, [null, 4, 5], [1, 4, 1]],
  ];
  for (const [opts, input, want] of shapes) {
    const q = new Quantizer(opts);
    q.build(input);
    assert.deepEqual(q.paramShape, want, JSON.stringify(opts));
    q.dispose();
  }
  const q = new Quantizer({ place: 'weight' });
  assert.throws(() => q.build([null, 3]), /axis 0 has size null but is heterogeneous/);
});

test("variables carry HGQ2's names and order; a layer's own weight factory is used", async () => {
  await initBackend();
  const names = (q: Quantizer) => q.weights.map((w) => `${w.name}${w.trainable ? '' : '(frozen)'}`);
  const kbi = new Quantizer({ place: 'weight' });
  kbi.build([2, 3]);
  assert.deepEqual(names(kbi), ['k(frozen)', 'b', 'i']);
  const kif = new Quantizer({ place: 'datalane' });
  kif.build([null, 3]);
  assert.deepEqual(names(kif), ['k(frozen)', 'i(frozen)', 'f', 'i_decay_speed(frozen)']);
  assert.deepEqual(
    kif.weights.map((w) => w.variable.read().shape),
    [[1, 3], [1, 3], [1, 3], []],
  );
  kbi.dispose();
  kif.dispose();

  const made: string[] = [];
  const owned: tf.Variable[] = [];
  const factory = (name: string, shape: number[], init: number, trainable: boolean): QVariable => {
    made.push(`${name}:${shape}:${init}:${trainable}`);
    const v = tf.variable(tf.fill(shape, init), trainable);
    owned.push(v);
    return { read: () => v, write: (t) => v.assign(t) };
  };
  const q = new Quantizer({ place: 'weight', b0: 5, trainable: false });
  q.build([2], factory);
  assert.deepEqual(made, ['k:2:1:false', 'b:2:5:false', 'i:2:2:false']);
  tf.dispose(owned);
});

test('getConfig / fromConfig round trip through JSON', () => {
  const q = new Quantizer({ place: 'datalane', qType: 'kbi', roundMode: 'RND_CONV', granularity: 'channel', name: 'dense_iq' });
  const json = JSON.stringify(q.getConfig());
  const r = Quantizer.fromConfig(JSON.parse(json));
  assert.deepEqual(r.config, q.config);
  assert.equal(r.name, 'dense_iq');
});

test('bad options get errors that say what is wrong', () => {
  assert.throws(() => resolveQuantizerConfig({ place: 'kernel' as never }), /unknown place 'kernel'/);
  assert.throws(() => resolveQuantizerConfig({ roundMode: 'ROUND' as never }), /unknown roundMode 'ROUND'.*RND/);
  assert.throws(() => resolveQuantizerConfig({ overflowMode: 'CLIP' as never }), /unknown overflowMode 'CLIP'/);
  assert.throws(() => resolveQuantizerConfig({ bits: 3 } as never), /unknown option 'bits'/);
  assert.throws(
    () => resolveQuantizerConfig({ granularity: 'tensor', homogeneousAxes: [0] }),
    /either granularity or an axis list/,
  );
  assert.throws(() => resolveQuantizerConfig({ homogeneousAxes: [0], heterogeneousAxes: [1] }), /only one of homogeneousAxes/);
  assert.throws(() => resolveQuantizerConfig({ bBounds: [5, 1] }), /bBounds must be \[lo, hi\]/);
  assert.throws(() => resolveQuantizerConfig({ place: 'weight', b0: -1 }), /b0 must be >= 0/);
  assert.throws(() => withQuantizerConfig({ weights: {} } as never, () => 0), /unknown key 'weights'/);
  const q = new Quantizer({ place: 'weight' });
  assert.throws(() => q.bits(), /not built/);
});

test('initBackend picks wasm when tfjs-node is absent, is idempotent, and rejects unknown names', async () => {
  const { initBackend: init } = await import('../src/backend.ts');
  const first = await init();
  assert.ok(['wasm', 'tensorflow'].includes(first), `default backend ${first}`);
  assert.equal(await init('cpu'), first, 'a second call keeps the chosen backend');
  assert.equal(tf.getBackend(), first);
  await assert.rejects(init('webgpu' as never), /unknown backend 'webgpu'/);
});
