/**
 * Sweep files → trials: grid × seeds, random axes drawn from a seed, a budget that subsamples, field paths
 * into lists, stable ids, and bad files refused naming the field.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  hashOf,
  parseFieldPath,
  planSweep,
  readSweepFile,
  setField,
  SweepFileError,
  type SweepFile,
} from '../src/app/sweep/plan.ts';
import { parseRedisUrl, redactUrl, RedisUrlError } from '../src/app/sweep/queue.ts';
import { mergeFronts } from '../src/app/sweep/results.ts';
import type { TrialResult } from '../src/app/sweep/trial.ts';

const BASE = {
  data: { train: { path: '/data/x.csv', label: 'y' } },
  model: {
    layers: [
      { type: 'QDense', units: 8 },
      { type: 'QDense', units: 3 },
    ],
  },
  training: { epochs: 3 },
};
const plan = (s: Omit<SweepFile, 'base'>) => planSweep({ base: BASE, ...s }, BASE, { out: '/tmp/sweep-out', dir: '/tmp' });

describe('sweep plans', () => {
  test('grid axes × seeds: every combination once, values set at their paths, seed and threads in training', () => {
    const p = plan({ axes: { 'training.optimizer.lr': [1e-3, 3e-3], 'model.layers[0].units': [8, 16, 32] }, seeds: [1, 2] });
    assert.equal(p.trials.length, 12);
    const combos = new Set(
      p.trials.map((t) => JSON.stringify([t.overrides['training.optimizer.lr'], t.overrides['model.layers[0].units'], t.seed])),
    );
    assert.equal(combos.size, 12);
    for (const t of p.trials) {
      const training = t.spec['training'] as Record<string, unknown>;
      assert.equal((training['optimizer'] as Record<string, unknown>)['lr'], t.overrides['training.optimizer.lr']);
      assert.equal(training['seed'], t.seed);
      assert.equal(training['threads'], 1);
      assert.equal(training['epochs'], 3);
      assert.equal((t.spec['model'] as { layers: { units: number }[] }).layers[0]!.units, t.overrides['model.layers[0].units']);
    }
    assert.equal(BASE.model.layers[0]!.units, 8, 'the base spec is not modified');
    assert.equal(p.store, '/tmp/sweep-out/trials');
  });

  test('ids and plans are stable: the same file gives the same trials; a changed value changes only its trials', () => {
    const a = plan({ axes: { 'training.optimizer.lr': [1e-3, 3e-3] }, seeds: [0, 1] });
    const b = plan({ axes: { 'training.optimizer.lr': [1e-3, 3e-3] }, seeds: [0, 1] });
    assert.deepEqual(a, b);
    const c = plan({ axes: { 'training.optimizer.lr': [1e-3, 5e-3] }, seeds: [0, 1] });
    const shared = a.trials.filter((t) => c.trials.some((u) => u.id === t.id));
    assert.equal(shared.length, 2); // lr 1e-3 × both seeds
    assert.notEqual(a.id, c.id);
    assert.match(a.trials[0]!.id, /^t[0-9a-f]{12}$/);
    assert.equal(hashOf({ b: 1, a: [1, 2] }), hashOf({ a: [1, 2], b: 1 }), 'key order does not matter');
  });

  test('random axes: the budget says how many draws, values lie in their ranges, draws repeat with the sample seed', () => {
    const s = {
      axes: {
        'training.optimizer.lr': { loguniform: [1e-4, 1e-2] as [number, number] },
        'training.batch_size': { choice: [64, 128] },
        'model.layers[0].units': { int: [4, 9] as [number, number] },
      },
      budget: 20,
      sample_seed: 3,
    };
    const p = plan(s);
    assert.equal(p.trials.length, 20);
    for (const t of p.trials) {
      const lr = t.overrides['training.optimizer.lr'] as number;
      assert.ok(lr >= 1e-4 && lr <= 1e-2, String(lr));
      assert.ok([64, 128].includes(t.overrides['training.batch_size'] as number));
      const u = t.overrides['model.layers[0].units'] as number;
      assert.ok(Number.isInteger(u) && u >= 4 && u <= 9);
    }
    assert.deepEqual(
      plan(s).trials.map((t) => t.id),
      p.trials.map((t) => t.id),
    );
    assert.notDeepEqual(
      plan({ ...s, sample_seed: 4 }).trials.map((t) => t.id),
      p.trials.map((t) => t.id),
    );
  });

  test('a grid larger than the budget is subsampled without repeats, in grid order', () => {
    const p = plan({ axes: { 'training.optimizer.lr': [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, seeds: [0, 1], budget: 7 });
    assert.equal(p.trials.length, 7);
    assert.equal(new Set(p.trials.map((t) => t.id)).size, 7);
  });

  test('field paths: names, dots and list indices; anything else is refused', () => {
    assert.deepEqual(parseFieldPath('model.layers[12].units'), ['model', 'layers', 12, 'units']);
    for (const bad of ['', '.a', 'a.', 'a..b', 'a[x]', 'a[1', '[0]', 'a b', 'a.[0]'])
      assert.throws(() => parseFieldPath(bad), SweepFileError, bad);
    const spec = structuredClone(BASE) as Record<string, unknown>;
    setField(spec, 'training.optimizer.lr', 0.1);
    assert.equal((spec['training'] as Record<string, Record<string, unknown>>)['optimizer']!['lr'], 0.1);
    assert.throws(() => setField(spec, 'model.layers[5].units', 1), /no element 5/);
    assert.throws(() => setField(spec, 'training.epochs.x', 1), /is a value, not a mapping/);
  });
});

describe('sweep files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-sweepfile-'));
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  test('YAML with a base spec file: relative data paths resolve against the spec file', () => {
    write('spec.yaml', 'data:\n  train: {path: ./train.csv, label: y}\nmodel:\n  layers: [{type: QDense, units: 4}]\n');
    const f = write('sweep.yaml', 'base: ./spec.yaml\naxes:\n  training.optimizer.lr: [0.001, 0.003]\nseeds: [5]\n');
    const { sweep, base, dir: d } = readSweepFile(f);
    assert.equal((base['data'] as Record<string, Record<string, string>>)['train']!['path'], join(dir, 'train.csv'));
    const p = planSweep(sweep, base, { out: join(dir, 'out'), dir: d });
    assert.equal(p.trials.length, 2);
    assert.ok(p.trials.every((t) => t.seed === 5));
  });
  test('bad files name the field and what is allowed', () => {
    assert.throws(() => readSweepFile(join(dir, 'none.yaml')), /no such file/);
    assert.throws(() => readSweepFile(write('b1.yaml', 'base: ./spec.yaml\nseedz: [1]\n')), /'seedz' \(allowed: base, axes/);
    assert.throws(() => readSweepFile(write('b2.yaml', 'base: ./missing.yaml\n')), /base: .*missing\.yaml: no such spec file/);
    assert.throws(
      () => readSweepFile(write('b3.yaml', 'base: ./spec.yaml\naxes:\n  training.lr: {uniform: [1, 0]}\n')),
      /axes\.training\.lr: the range \[1, 0\] is empty/,
    );
    assert.throws(
      () => readSweepFile(write('b4.yaml', 'base: ./spec.yaml\naxes:\n  "a..b": [1]\n')),
      /'a\.\.b' is not a spec field path/,
    );
    assert.throws(() => readSweepFile(write('b5.yaml', 'base: ./spec.yaml\nbudget: 0\n')), /budget: must be >= 1/);
    assert.throws(() => readSweepFile(write('b6.yaml', 'base: [\n')), /not valid YAML/);
    assert.throws(
      () => readSweepFile(write('b7.yaml', 'base: ./spec.yaml\naxes:\n  training.lr: {loguniform: [0, 1]}\n')),
      /positive low end/,
    );
    const { sweep, base, dir: d } = readSweepFile(write('b8.yaml', 'base: ./spec.yaml\naxes:\n  training.lr: [0.1]\n'));
    assert.throws(
      () => planSweep(sweep, base, { out: join(dir, 'o'), dir: d }),
      /trial t[0-9a-f]+ \(training\.lr=0\.1, seed 0\): training\.lr: unknown key/,
    );
  });
});

describe('merged fronts and Redis URLs', () => {
  const result = (trial: string, points: [number, number][]): TrialResult => ({
    trial,
    status: 'complete',
    dir: `/store/${trial}`,
    overrides: {},
    seed: 0,
    metric: 'accuracy',
    checkpoints: points.map(([acc, ebops], j) => ({
      path: `checkpoints/epoch-000${j}`,
      epoch: j,
      ebops,
      val: { accuracy: acc },
    })),
  });
  test('the merged front keeps only undominated checkpoints over all trials, each marked with its trial, paths absolute', () => {
    const f = mergeFronts([
      result('tb', [
        [0.9, 100],
        [0.95, 300],
      ]),
      result('ta', [
        [0.92, 100],
        [0.94, 400],
        [0.97, 500],
      ]),
      { trial: 'tc', status: 'failed', dir: '', overrides: {}, seed: 0, error: 'x' },
    ]);
    assert.deepEqual(
      f.checkpoints.map((c) => [c.trial, c.ebops]),
      [
        ['ta', 100],
        ['tb', 300],
        ['ta', 500],
      ],
    );
    assert.equal(f.checkpoints[0]!.path, '/store/ta/checkpoints/epoch-0000');
    assert.deepEqual(
      mergeFronts([result('tb', [[0.9, 100]]), result('ta', [[0.9, 100]])]).checkpoints.map((c) => c.trial),
      ['ta'],
      'ties go to the smaller trial id, whatever the order',
    );
  });
  test('Redis URLs: redis:// and rediss:// with passwords accepted, others refused; passwords never shown', () => {
    assert.equal(parseRedisUrl('redis://:s3cret@h:6379').password, 's3cret');
    assert.equal(parseRedisUrl('rediss://u:p@h:6380/2').protocol, 'rediss:');
    assert.throws(() => parseRedisUrl('http://h:6379'), RedisUrlError);
    assert.throws(() => parseRedisUrl('nonsense'), RedisUrlError);
    assert.equal(redactUrl('redis://:s3cret@h:6379'), 'redis://:***@h:6379');
    assert.equal(redactUrl('rediss://user:pw@h:1'), 'rediss://user:***@h:1');
  });
});

test('the example sweep (examples/sweeps/jets.yaml) plans 16 trials that all satisfy the spec schema', () => {
  const file = new URL('../examples/sweeps/jets.yaml', import.meta.url).pathname;
  const { sweep, base, dir } = readSweepFile(file);
  const p = planSweep(sweep, base, { out: '/tmp/jets-sweep', dir });
  assert.equal(p.trials.length, 16);
  assert.ok(p.trials.every((t) => (t.spec['training'] as Record<string, unknown>)['threads'] === 1));
  assert.deepEqual(
    [...new Set(p.trials.map((t) => (t.spec['model'] as { layers: { units: number }[] }).layers[0]!.units))].sort(),
    [32, 64],
  );
});
