import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { loadHgq2Model, quantizerBits, type HgqLayer, type HgqQuantizer } from '../src/import/hgq2-model.ts';
import { ebopsFromFileName, layerEbops, modelEbops } from '../src/import/ebops.ts';
import { hgq2Fixtures, fixturesMissing, HGQ2_FIXTURE_DIR } from './util/hgq2-fixtures.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();

if (missing.skip) test('HGQ2 fixture tests', { skip: missing.skip }, () => {});
if (missing.failInCi) {
  test('HGQ2 fixtures are present in CI', () => {
    assert.fail(`CI=true but no .keras fixtures in ${HGQ2_FIXTURE_DIR}`);
  });
}

for (const path of fixtures) {
  test(`EBOPs from the stored state of ${basename(path)} are within 2% of the logged value`, { skip: missing.skip }, async () => {
    const logged = ebopsFromFileName(path);
    assert.ok(logged !== null && logged > 0);
    const e = modelEbops(await loadHgq2Model(path));
    const rel = Math.abs(e.total - logged) / logged;
    assert.ok(rel < 0.02, `ours ${e.total.toFixed(1)} vs logged ${logged}: ${(rel * 100).toFixed(2)}%`);
    // every layer that computes EBOPs in HGQ2 is covered (the file's per-layer values are the reference)
    assert.equal(e.storedTotal, logged);
    for (const l of e.layers) {
      assert.ok(l.ebops >= 0 && Number.isFinite(l.ebops), `${l.name}: ${l.ebops}`);
      // per layer: within 10% or 150 EBOPs of what HGQ2 stored one optimizer step earlier
      assert.ok(Math.abs(l.ebops - l.stored!) <= Math.max(150, 0.1 * l.stored!), `${l.name}: ours ${l.ebops} vs stored ${l.stored}`);
    }
  });
}

// ---- formulas on small hand-computed layers -------------------------------------------------------------

function kif(shape: number[], k: number[], i: number[], f: number[], overflow: 'WRAP' | 'SAT' = 'WRAP'): HgqQuantizer {
  return {
    group: 'test', qType: 'kif', place: 'datalane', roundMode: 'RND', overflowMode: overflow, trainable: true, isWeight: false,
    shape, k: Uint8Array.from(k), iRaw: Float32Array.from(i), bRaw: null, fRaw: Float32Array.from(f), iDecaySpeed: null, bounds: {}, config: {},
  };
}
function kbi(shape: number[], b: number[], overflow: 'SAT_SYM' | 'WRAP' = 'SAT_SYM'): HgqQuantizer {
  return {
    group: 'test', qType: 'kbi', place: 'weight', roundMode: 'RND', overflowMode: overflow, trainable: true, isWeight: true,
    shape, k: new Uint8Array(b.length).fill(1), iRaw: new Float32Array(b.length), bRaw: Float32Array.from(b), fRaw: null,
    iDecaySpeed: null, bounds: {}, config: {},
  };
}
function layer(className: string, config: any, inShapes: (number | null)[][], parts: Partial<HgqLayer>): HgqLayer {
  return {
    name: 't', className, group: null, config, inbound: inShapes.map((shape) => ({ layer: 'x', node: 0, tensor: 0, shape })),
    callArgs: [], vars: {}, iq: null, iqs: null, kq: null, bq: null, ...parts,
  };
}
const tensor = (shape: number[]) => ({ shape, dtype: 'float32', data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

test('bits: KIF is relu(i+f) (+k only under SAT), KBI is round-half-even(b)', () => {
  assert.deepEqual([...quantizerBits(kif([4], [1, 1, 0, 1], [1, -5, 2, 0], [2, 3, 1, 3]))], [3, 0, 3, 3]);
  assert.deepEqual([...quantizerBits(kif([2], [1, 0], [0, 0], [3, 3], 'SAT'))], [4, 3]);
  assert.deepEqual([...quantizerBits(kbi([5], [2.5, 3.5, 2.4999, 0, 7.6]))], [2, 4, 2, 0, 8]);
  // stored float32 values are rounded as stored: 2.5000157 → 3
  assert.deepEqual([...quantizerBits(kif([1], [1], [Math.fround(2.5000157)], [0]))], [3]);
});

test('QDense EBOPs = Σ_c bits_in[c]·Σ_u bits_k[c,u] + mean(bits_bias)·units', () => {
  const L = layer('QDense', { units: 3, parallelization_factor: -1 }, [[null, 2]], {
    iq: kif([1, 2], [1, 1], [1, 2], [2, 3]), // bits 3, 5
    kq: kbi([2, 3], [1, 2, 3, 4, 0, 1]),
    bq: kbi([3], [2, 2, 5]),
    vars: { kernel: tensor([2, 3]) },
  });
  assert.equal(layerEbops(L), 3 * (1 + 2 + 3) + 5 * (4 + 0 + 1) + 3 * 3);
});

test('QEinsumDense(Batchnorm) bnc,cC->bnC: input bits shared over n count once per position', () => {
  const L = layer('QEinsumDenseBatchnorm', { equation: 'bnc,cC->bnC', output_shape: [2, 2] }, [[null, 2, 2]], {
    iq: kif([1, 1, 2], [1, 1], [0, 0], [2, 4]), // per channel: 2, 4
    kq: kbi([2, 2], [1, 3, 2, 0]),
    bq: kbi([2], [1, 3]),
    vars: { kernel: tensor([2, 2]) },
  });
  assert.equal(layerEbops(L), 2 * (2 * 4 + 4 * 2) + 2 * 4);
});

test('QConv1D same padding: edge taps see zero-padded bits', () => {
  const L = layer('QConv1D', { kernel_size: [3], strides: [1], dilation_rate: [1], padding: 'same', parallelization_factor: -1 }, [[null, 4, 1]], {
    iq: kif([1, 4, 1], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]), // 1 bit everywhere
    kq: kbi([3, 1, 1], [1, 2, 3]),
    vars: { kernel: tensor([3, 1, 1]) },
  });
  assert.equal(layerEbops(L), (2 + 3) + 6 + 6 + (1 + 2));
});

test('QAdd EBOPs = 0.65·Σ max over broadcast inputs; QSum = 0.65·(Σ bits − Σ min over the axes)', () => {
  const add = layer('QAdd', {}, [[null, 2, 2], [null, 1, 2]], {
    iqs: [kif([1, 2, 2], [1, 1, 1, 1], [1, 4, 2, 0], [0, 0, 0, 0]), kif([1, 1, 2], [1, 1], [3, 1], [0, 0])],
  });
  assert.ok(Math.abs(layerEbops(add)! - 0.65 * (3 + 4 + 3 + 1)) < 1e-12);
  const sum = layer('QSum', { axes: [1], scale: 1, keepdims: false }, [[null, 2, 3]], {
    iq: kif([1, 2, 3], [1, 1, 1, 1, 1, 1], [1, 2, 3, 4, 0, 6], [0, 0, 0, 0, 0, 0]),
  });
  assert.ok(Math.abs(layerEbops(sum)! - 0.65 * (16 - (1 + 0 + 3))) < 1e-12);
});
