// The wasm backend's Slice is replaced for contiguous slices (src/backend.ts: the stock kernel copies the whole
// input out of the heap per call). Property: on random shapes, begins and sizes — contiguous and not, float32
// int32 and bool, empty — tf.slice on wasm returns exactly what the cpu backend returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../src/backend.ts';
import { makeRng } from './util/rng.ts';

test('tf.slice on wasm (contiguous fast path and the stock kernel) equals the cpu backend', async () => {
  const rng = makeRng(77);
  const cases: Array<{ shape: number[]; begin: number[]; size: number[]; dtype: 'float32' | 'int32' | 'bool' }> = [];
  for (let c = 0; c < 300; c++) {
    const rank = rng.int(1, 4);
    const shape = Array.from({ length: rank }, () => rng.int(1, 6));
    const contiguous = rng.chance(0.6);
    const begin: number[] = [],
      size: number[] = [];
    shape.forEach((d, a) => {
      // contiguous: a run along the first axis that is not full, full extent on the later axes
      const b = contiguous && a > 0 ? 0 : rng.int(0, d - 1);
      begin.push(b);
      size.push(contiguous && a > 0 ? (rng.chance(0.2) ? -1 : d) : rng.int(0, d - b));
    });
    cases.push({ shape, begin, size, dtype: rng.pick(['float32', 'float32', 'int32', 'bool'] as const) });
  }
  const values = (shape: number[], dtype: string) =>
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, j) =>
      dtype === 'int32' ? j - 7 : dtype === 'bool' ? ((j * 7) % 3 === 0 ? 1 : 0) : j * 0.5 - 3.25,
    );
  const run = async (backend: 'wasm' | 'cpu') => {
    await useBackend(backend);
    return cases.map(({ shape, begin, size, dtype }) => {
      const x = tf.tensor(values(shape, dtype), shape, dtype);
      const y = tf.slice(x, begin, size);
      const r = { shape: y.shape, dtype: y.dtype, data: Array.from(y.dataSync()) };
      tf.dispose([x, y]);
      return r;
    });
  };
  const onWasm = await run('wasm');
  assert.ok(
    (tf.getKernel('Slice', 'wasm') as { hgqContiguous?: boolean }).hgqContiguous,
    'the contiguous Slice kernel is registered on wasm',
  );
  const onCpu = await run('cpu');
  await useBackend('wasm');
  cases.forEach((c, j) => assert.deepEqual(onWasm[j], onCpu[j], `slice ${JSON.stringify(c)}`));
  // a batch cut off a large tensor whose heap view must be taken after the output is allocated
  const big = tf.range(0, 1 << 20, 1, 'float32').reshape([1 << 12, 1 << 8]);
  const part = tf.slice(big, [4000, 0], [96, 256]);
  assert.equal(part.dataSync()[0], 4000 * 256);
  assert.equal(part.dataSync()[96 * 256 - 1], 4096 * 256 - 1);
  tf.dispose([big, part]);
});
