import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  hgq2ModelFromArchive,
  loadHgq2Model,
  quantizerBits,
  type HgqLayer,
  type HgqModel,
  type HgqQuantizer,
} from '../src/import/hgq2-model.ts';
import { readKerasArchive } from '../src/import/keras-archive.ts';
import { ebopsFromFileName, hgq2BiasCount, layerEbops, modelEbops } from '../src/import/ebops.ts';
import { undoLastOptimizerStep } from '../src/import/last-step.ts';
import { hgq2Fixtures, fixturesMissing, HGQ2_FIXTURE_DIR } from './util/hgq2-fixtures.ts';

const fixtures = hgq2Fixtures();
const missing = fixturesMissing();

if (missing.skip) test('HGQ2 fixture tests', { skip: missing.skip }, () => {});
if (missing.failInCi) {
  test('HGQ2 fixtures are present in CI', () => {
    assert.fail(`CI=true but no .keras fixtures in ${HGQ2_FIXTURE_DIR}`);
  });
}

/*
 * Per-layer EBOPs against the values HGQ2 stored in each layer's `ebops` variable. Our number (`ebops`:
 * HGQ2's current formulas on the saved state) differs from the stored one for exactly two reasons, and
 * the tests below reproduce every stored value (all 43 layers of the five checkpoints) once both are
 * accounted for:
 *
 * 1. Bias count. The HGQ2 that wrote these checkpoints (hgq-ae, mid-2025; its layer configs carry no
 *    `ebops_factor`) counted a dense/einsum layer's bias additions as mean(bias bits) × number of
 *    *input* elements (dense.py @e29ad7f2: `ops.prod(shape)`); HGQ2 now counts one per output, which is
 *    what the hardware does, so that is what we report. The gap is mean(bias bits)·(inputs − outputs):
 *    the muon model's QDense(100) on 50 inputs is above the stored value, its QDense(1) on 8 inputs
 *    ('theta_out', 229 vs 278 = 222 + 7·8) and the batch-norm einsum layers 50→32→16→8 below, the jet
 *    models' t1 (16→64) above — the pattern issue 15 reports (it is not batch statistics: bit widths do
 *    not depend on values, and the layers whose input and output sizes are equal match).
 * 2. Last optimizer step. HGQ2 stores EBOPs in the forward pass of a training step; Adam then moves every
 *    bit variable once more before saving, and many sit at x.5 ± 1e-6, so some rounded widths flip
 *    (3–103 elements per checkpoint). Undoing that step from the saved Adam moments (last-step.ts)
 *    gives the state HGQ2 measured.
 *
 * What remains is HGQ2's float→uint32 truncation: stored = floor(formula), which is asserted exactly.
 */
for (const path of fixtures) {
  test(`${basename(path)}: every stored per-layer EBOPs value = floor(HGQ2's formula of that version, on the state before the last Adam step)`, {
    skip: missing.skip,
  }, async () => {
    const model = await loadHgq2Model(path);
    const e = modelEbops(model);
    assert.equal(e.writtenBiasCount, 'inputs', 'the hgq-ae checkpoints predate ebops_factor');
    assert.equal(e.lastStepUnavailable, null);
    const undone = undoLastOptimizerStep(model);
    assert.ok('model' in undone);
    assert.equal(undone.ambiguous, 0, 'float32 rounding never leaves two candidate previous values');
    assert.ok(undone.flipped > 0, 'the last step flipped some rounded bit widths');
    for (const l of e.layers) {
      assert.ok(l.stored !== null && l.atLastStep !== null);
      assert.equal(
        Math.floor(l.atLastStep + 1e-6),
        l.stored,
        `${l.name} (${l.className}): formula ${l.atLastStep} vs stored ${l.stored}`,
      );
    }
    // Σ stored per layer is the logged number in the file name: no layer computing EBOPs is missing
    assert.equal(e.storedTotal, ebopsFromFileName(path));
  });

  test(`${basename(path)}: our EBOPs (current formula, saved state) are within 2% of the logged value`, {
    skip: missing.skip,
  }, async () => {
    const logged = ebopsFromFileName(path)!;
    const decoded = await loadHgq2Model(path);
    const e = modelEbops(decoded);
    const rel = Math.abs(e.totalFloored - logged) / logged;
    assert.ok(rel < 0.02, `ours ${e.totalFloored} vs logged ${logged}: ${(rel * 100).toFixed(2)}%`);
    for (const l of e.layers) {
      // where inputs and outputs are equally many the two bias counts agree; elsewhere they differ
      // exactly by mean(bias bits)·(inputs − outputs)
      const L = decoded.byName.get(l.name)!;
      const inputs = L.inbound[0]!.shape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1);
      const outputs =
        L.className === 'QDense'
          ? (inputs / L.vars.kernel!.shape[0]!) * L.config.units
          : (L.config.output_shape as number[] | undefined)?.reduce((a, b) => a * b, 1);
      const biasBits = L.bq ? quantizerBits(L.bq).reduce((a, b) => a + b, 0) / L.bq.k.length : 0;
      const gap =
        L.bq && (L.className === 'QDense' || L.className.startsWith('QEinsumDense')) ? biasBits * (inputs - outputs!) : 0;
      assert.ok(Math.abs(l.asWritten - l.ebops - gap) < 1e-6, `${l.name}: written ${l.asWritten} − ours ${l.ebops} ≠ ${gap}`);
    }
  });
}

// ---- formulas on small hand-computed layers -------------------------------------------------------------

function kif(shape: number[], k: number[], i: number[], f: number[], overflow: 'WRAP' | 'SAT' = 'WRAP'): HgqQuantizer {
  return {
    group: 'test',
    qType: 'kif',
    place: 'datalane',
    roundMode: 'RND',
    overflowMode: overflow,
    trainable: true,
    isWeight: false,
    shape,
    k: Uint8Array.from(k),
    iRaw: Float32Array.from(i),
    bRaw: null,
    fRaw: Float32Array.from(f),
    iDecaySpeed: null,
    bounds: {},
    config: {},
  };
}
function kbi(shape: number[], b: number[], overflow: 'SAT_SYM' | 'WRAP' = 'SAT_SYM'): HgqQuantizer {
  return {
    group: 'test',
    qType: 'kbi',
    place: 'weight',
    roundMode: 'RND',
    overflowMode: overflow,
    trainable: true,
    isWeight: true,
    shape,
    k: new Uint8Array(b.length).fill(1),
    iRaw: new Float32Array(b.length),
    bRaw: Float32Array.from(b),
    fRaw: null,
    iDecaySpeed: null,
    bounds: {},
    config: {},
  };
}
function layer(className: string, config: any, inShapes: (number | null)[][], parts: Partial<HgqLayer>): HgqLayer {
  return {
    name: 't',
    className,
    group: null,
    config,
    inbound: inShapes.map((shape) => ({ layer: 'x', node: 0, tensor: 0, shape })),
    callArgs: [],
    vars: {},
    iq: null,
    iqs: null,
    kq: null,
    bq: null,
    ...parts,
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
  const L = layer(
    'QConv1D',
    { kernel_size: [3], strides: [1], dilation_rate: [1], padding: 'same', parallelization_factor: -1 },
    [[null, 4, 1]],
    {
      iq: kif([1, 4, 1], [0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]), // 1 bit everywhere
      kq: kbi([3, 1, 1], [1, 2, 3]),
      vars: { kernel: tensor([3, 1, 1]) },
    },
  );
  assert.equal(layerEbops(L), 2 + 3 + 6 + 6 + (1 + 2));
});

test('QAdd EBOPs = 0.65·Σ max over broadcast inputs; QSum = 0.65·(Σ bits − Σ min over the axes)', () => {
  const add = layer(
    'QAdd',
    {},
    [
      [null, 2, 2],
      [null, 1, 2],
    ],
    {
      iqs: [kif([1, 2, 2], [1, 1, 1, 1], [1, 4, 2, 0], [0, 0, 0, 0]), kif([1, 1, 2], [1, 1], [3, 1], [0, 0])],
    },
  );
  assert.ok(Math.abs(layerEbops(add)! - 0.65 * (3 + 4 + 3 + 1)) < 1e-12);
  const sum = layer('QSum', { axes: [1], scale: 1, keepdims: false }, [[null, 2, 3]], {
    iq: kif([1, 2, 3], [1, 1, 1, 1, 1, 1], [1, 2, 3, 4, 0, 6], [0, 0, 0, 0, 0, 0]),
  });
  assert.ok(Math.abs(layerEbops(sum)! - 0.65 * (16 - (1 + 0 + 3))) < 1e-12);
});

test('bias count: HGQ2 now adds mean(bias bits) once per output; the hgq-ae version once per input element', () => {
  const dense = layer('QDense', { units: 3 }, [[null, 2]], {
    iq: kif([1, 2], [1, 1], [1, 2], [2, 3]), // bits 3, 5
    kq: kbi([2, 3], [1, 2, 3, 4, 0, 1]),
    bq: kbi([3], [2, 2, 5]), // mean 3
    vars: { kernel: tensor([2, 3]) },
  });
  const products = 3 * (1 + 2 + 3) + 5 * (4 + 0 + 1);
  assert.equal(layerEbops(dense, 'outputs'), products + 3 * 3);
  assert.equal(layerEbops(dense, 'inputs'), products + 3 * 2);
  const ebn = layer('QEinsumDenseBatchnorm', { equation: 'bc,cC->bC', output_shape: [1] }, [[null, 4]], {
    iq: kif([1, 4], [1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]), // 1 bit each
    kq: kbi([4, 1], [1, 2, 3, 4]),
    bq: kbi([1], [6]),
    vars: { kernel: tensor([4, 1]) },
  });
  assert.equal(layerEbops(ebn, 'outputs'), 10 + 6 * 1);
  assert.equal(layerEbops(ebn, 'inputs'), 10 + 6 * 4);
});

// ---- undoing the last Adam step ----------------------------------------------------------------------

/** A one-QDense model whose kernel quantizer b is `bRaw`, saved with Adam moments m, v for every variable. */
function adamModel(
  bRaw: number[],
  m: number[],
  v: number[],
  opts: { lr?: number; iterations?: number; className?: string } = {},
): HgqModel {
  const n = bRaw.length;
  const L = layer('QDense', { units: n }, [[null, 1]], {
    name: 'd',
    iq: kif([1, 1], [1], [0], [3]),
    kq: { ...kbi([1, n], bRaw), bounds: { b: [0, 23] } },
    vars: { kernel: tensor([1, n]) },
  });
  const f32 = (shape: number[], xs: number[]) => ({ shape, dtype: 'float32', data: Float32Array.from(xs) });
  const zeros = (k: number) => new Array<number>(k).fill(0);
  // trainable variables in Keras order: kernel; iq: f (KIF WRAP); kq: b, i (KBI SAT_SYM)
  const slots = [zeros(n), zeros(n), [0], [0], m, v, zeros(n), zeros(n)];
  const shapes = [
    [1, n],
    [1, n],
    [1, 1],
    [1, 1],
    [1, n],
    [1, n],
    [1, n],
    [1, n],
  ];
  return {
    path: 'synthetic',
    kerasVersion: null,
    layers: [L],
    byName: new Map([['d', L]]),
    inputs: [],
    outputs: ['d'],
    optimizer: {
      className: opts.className ?? 'Adam',
      config: { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false, weight_decay: null },
      vars: [
        { shape: [], dtype: 'int64', data: new BigInt64Array([BigInt(opts.iterations ?? 1_000_000)]) },
        f32([], [opts.lr ?? 1e-3]),
        ...slots.map((s, j) => f32(shapes[j]!, s.length ? s : [0])),
      ],
    },
  };
}

test('undoLastOptimizerStep: θ_before = θ_saved + lr·m/(√v + ε), rounded widths flip back, bounds hold', () => {
  // m/√v = ±1 → the step moved each b by lr = 1e-3 (iterations large: no bias correction)
  const saved = [2.4995, 3.5004, 0, 4.2];
  const m = [1e-4, -1e-4, 1e-4, 1e-4];
  const v = [1e-8, 1e-8, 1e-8, 1e-8];
  const model = adamModel(saved, m, v);
  const r = undoLastOptimizerStep(model);
  assert.ok('model' in r, 'reason' in r ? r.reason : '');
  const b = [...r.model.byName.get('d')!.kq!.bRaw!];
  const want = [2.5005, 3.4994, 0.001, 4.201];
  b.forEach((x, j) => {
    assert.ok(Math.abs(x - want[j]!) < 2e-6, `b[${j}] = ${x}, want ${want[j]}`);
  });
  // 2.4995 → 2.5005 rounds 2 → 3; 3.5004 → 3.4994 rounds 4 → 3; the others keep their width
  assert.equal(r.flipped, 2);
  assert.equal(r.ambiguous, 0);
  assert.deepEqual([...quantizerBits(r.model.byName.get('d')!.kq!)], [3, 3, 0, 4]);
  // the input model is untouched
  assert.deepEqual([...model.byName.get('d')!.kq!.bRaw!], saved.map(Math.fround));
  // EBOPs follow: input 3 bits × Σ kernel bits
  assert.equal(layerEbops(r.model.byName.get('d')!), 3 * (3 + 3 + 0 + 4));
  assert.equal(layerEbops(model.byName.get('d')!), 3 * (2 + 4 + 0 + 4));
});

test('undoLastOptimizerStep: refuses what it cannot undo, saying why', () => {
  const ok = adamModel([1], [0], [1]);
  assert.match((undoLastOptimizerStep({ ...ok, optimizer: null }) as { reason: string }).reason, /no optimizer state/);
  assert.match((undoLastOptimizerStep(adamModel([1], [0], [1], { className: 'SGD' })) as { reason: string }).reason, /SGD/);
  const amsgrad = { ...ok, optimizer: { ...ok.optimizer!, config: { ...ok.optimizer!.config, amsgrad: true } } };
  assert.match((undoLastOptimizerStep(amsgrad) as { reason: string }).reason, /amsgrad/);
  const short = { ...ok, optimizer: { ...ok.optimizer!, vars: ok.optimizer!.vars.slice(0, -2) } };
  assert.match(
    (undoLastOptimizerStep(short) as { reason: string }).reason,
    /holds 8 variables; Adam over 4 trainable variables holds 10/,
  );
  assert.equal(modelEbops(short).lastStepUnavailable !== null, true);
  assert.equal(modelEbops(short).layers[0]!.atLastStep, null);
});

// ---- files written by HGQ2 0.1.10 (../shared/fixtures/hgq2-lut): one bias addition per output ---------
// Their table layers (QDenseT, QConvT1D/2D) are not importable (hgq2-model.ts SUPPORTED_CLASSES), so only
// their QDense layers are compared (hybrid d1, d3; lut_conv2d d2); lut_dense, lut_dense_nhl2 and
// lut_conv1d hold table layers only.

const LUT_DIR = fileURLToPath(new URL('../../shared/fixtures/hgq2-lut/', import.meta.url));
const lutMissing = existsSync(LUT_DIR) ? false : `HGQ2 HGQ-LUT fixtures absent (${LUT_DIR})`;
if (lutMissing && process.env.CI === 'true') {
  test('HGQ2 HGQ-LUT fixtures are present in CI', () => assert.fail(`CI=true but ${LUT_DIR} is missing`));
}

/**
 * The QDense layers of an HGQ2 file whose other layers (table layers) we do not import: the config is
 * cut down to its inputs and QDense layers, each fed from the input (only the recorded input shapes
 * matter for EBOPs; HDF5 groups keep their names because QDense's counter is per class).
 */
async function qdenseOnly(path: string): Promise<HgqModel> {
  const ar = await readKerasArchive(path);
  const cfg = structuredClone(ar.config);
  const layers = cfg.config.layers.filter((l: any) => l.class_name === 'InputLayer' || l.class_name === 'QDense');
  const input = layers.find((l: any) => l.class_name === 'InputLayer').config.name;
  for (const l of layers)
    for (const node of l.inbound_nodes ?? [])
      for (const a of node.args) if (a?.config?.keras_history) a.config.keras_history = [input, 0, 0];
  cfg.config.layers = layers;
  cfg.config.input_layers = [[input, 0, 0]];
  cfg.config.output_layers = [[layers.at(-1).config.name, 0, 0]];
  return hgq2ModelFromArchive({ ...ar, config: cfg });
}

for (const stem of ['hybrid', 'lut_conv2d']) {
  test(`${stem} (HGQ2 0.1.10): QDense EBOPs = HGQ2's stored and recomputed values, counting one bias addition per output`, {
    skip: lutMissing,
  }, async () => {
    const model = await qdenseOnly(`${LUT_DIR}${stem}.keras`);
    const ref = JSON.parse(readFileSync(`${LUT_DIR}${stem}.json`, 'utf8')).ebops.per_layer;
    assert.equal(hgq2BiasCount(model), 'outputs', 'files from HGQ2 0.1.10 carry ebops_factor');
    const e = modelEbops(model);
    assert.ok(e.layers.length >= 1);
    let legacyDiffers = false;
    for (const l of e.layers) {
      // saved after trace_minmax (training='tracing'): the stored value is the formula on the saved state
      assert.equal(l.ebops, ref[l.name].ebops_float_recomputed, l.name);
      assert.equal(l.stored, ref[l.name].ebops_uint32_var, l.name);
      assert.equal(Math.floor(l.ebops), l.stored, l.name);
      if (layerEbops(model.byName.get(l.name)!, 'inputs') !== l.ebops) legacyDiffers = true;
    }
    assert.ok(legacyDiffers, 'the per-input bias count would not reproduce these files');
  });
}
