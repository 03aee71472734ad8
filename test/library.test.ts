/**
 * The library entry (src/index.ts): every layer it exports is registered for loading, `fit` picks the engine
 * (wasm, else tfjs with the reason), and `emulate` is the compiled emulator in one call.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as hgq from '../src/index.ts';

const { tf } = hgq;
await hgq.initBackend();

test('every exported layer class is registered with tfjs (saved models of each class load)', () => {
  const registered = tf.serialization.SerializationMap.getMap().classNameMap;
  // every concrete layer class in src/layers, read from the sources (a class statement, or one made by layerClass)
  const dir = join(import.meta.dirname, '..', 'src', 'layers');
  const declared = /^export (?:class (\w+) extends|const (\w+) = layerClass\()/gm;
  const classes = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(declared)].map((m) => (m[1] ?? m[2])!));
  assert.ok(
    classes.length >= 27 && classes.includes('QEinsumDense') && classes.includes('GetItem'),
    `found the layer classes: ${classes}`,
  );
  const exported = Object.entries(hgq)
    .filter(([, v]) => typeof v === 'function' && v.prototype instanceof hgq.QLayer)
    .map(([k]) => k);
  assert.deepEqual(exported.sort(), [...classes].sort(), 'the entry exports exactly the registered layer classes');
  for (const name of exported) {
    const className = (hgq[name as keyof typeof hgq] as unknown as { className: string }).className;
    assert.equal(className, name, `${name} is exported under its class name`);
    assert.ok(registered[className], `${name} is registered`);
  }
});

function data(n: number, seed: number): { x: hgq.tf.Tensor2D; y: hgq.tf.Tensor2D } {
  const x = tf.randomUniform([n, 4], -1, 1, 'float32', seed) as hgq.tf.Tensor2D;
  const y = tf.oneHot(tf.argMax(x, 1), 4).toFloat() as hgq.tf.Tensor2D;
  return { x, y };
}

test('fit: an uncompiled MLP is compiled and trained on the wasm engine; loss and callbacks as with model.fit', async () => {
  const { x, y } = data(512, 1);
  const model = tf.sequential({
    layers: [new hgq.QDense({ units: 8, activation: 'relu', inputShape: [4] }), new hgq.QDense({ units: 4 })],
  });
  const seen = new Set<number>();
  const r = await hgq.fit(model, x, y, {
    loss: 'softmax_cross_entropy',
    epochs: 4,
    batchSize: 64,
    learningRate: 1e-2,
    validationData: [x, y],
    callbacks: [new hgq.BetaScheduler((e) => (seen.add(e), 1e-6)), new hgq.EbopsLogger()],
  });
  assert.equal(r.engine, 'wasm');
  assert.equal(r.fallbackReason, undefined);
  assert.deepEqual(r.epoch, [0, 1, 2, 3]);
  assert.deepEqual([...seen], [0, 1, 2, 3], 'the β callback ran every epoch');
  assert.equal(hgq.modelBeta(model), Math.fround(1e-6), 'β set on every layer (a float32 weight)');
  for (const k of ['loss', 'acc', 'val_loss', 'val_acc', 'ebops']) assert.equal(r.history[k]?.length, 4, `history.${k}`);
  assert.ok(r.history['loss']![3]! < r.history['loss']![0]!, `the loss falls: ${r.history['loss']}`);
  assert.equal(model.optimizer.getClassName(), 'Adam');
  tf.dispose([x, y]);
  model.dispose();
});

test('fit: a layer the engine lacks falls back to tfjs model.fit and says why; engine "wasm" refuses it', async () => {
  const { x } = data(128, 2);
  const y = tf.sum(x, 1, true);
  const build = () =>
    tf.sequential({ layers: [new hgq.QDense({ units: 4, inputShape: [4] }), new hgq.QSum({ axes: -1, keepdims: true })] });
  const model = build();
  const r = await hgq.fit(model, x, y, { loss: 'mse', epochs: 2, batchSize: 32 });
  assert.equal(r.engine, 'tfjs');
  assert.match(r.fallbackReason ?? '', /QSum/);
  assert.equal(r.history['loss']?.length, 2);
  assert.equal(r.history['acc'], undefined, 'no accuracy for a regression');
  await assert.rejects(
    hgq.fit(build(), x, y, { loss: 'mse', epochs: 1, batchSize: 32, engine: 'wasm' }),
    /QSum.*use engine 'auto' or 'tfjs'/,
  );
  // forced tfjs trains a model the engine supports without asking the engine
  const mlp = tf.sequential({ layers: [new hgq.QDense({ units: 1, inputShape: [4] })] });
  assert.equal((await hgq.fit(mlp, x, y, { loss: 'mse', epochs: 1, batchSize: 32, engine: 'tfjs' })).engine, 'tfjs');
  await assert.rejects(
    hgq.fit(mlp, x, y, { loss: 'hinge' as hgq.TaskLoss, epochs: 1, batchSize: 32 }),
    /loss 'hinge' is not one of softmax_cross_entropy, mse/,
  );
  tf.dispose([x, y]);
});

test('emulate(program, inputs) equals the compiled emulator and refuses a partial sample', async () => {
  const { x, y } = data(256, 3);
  const model = tf.sequential({
    layers: [new hgq.QDense({ units: 6, activation: 'relu', inputShape: [4] }), new hgq.QDense({ units: 4 })],
  });
  await hgq.fit(model, x, y, { loss: 'softmax_cross_entropy', epochs: 1, batchSize: 64 });
  hgq.calibrate(model, x, { reset: true });
  const p = hgq.trace(model);
  const inputs = Float64Array.from(x.dataSync());
  const got = hgq.emulate(p, Array.from(inputs));
  assert.deepEqual(got, hgq.compileProgram(p).run(inputs, 256));
  assert.deepEqual(Array.from(got), Array.from((model.predict(x) as hgq.tf.Tensor).dataSync()), 'bit-exact with the model');
  assert.throws(() => hgq.emulate(p, inputs.subarray(0, 6)), /6 input values are not a whole number of samples of 4 values/);
  tf.dispose([x, y]);
  model.dispose();
});
