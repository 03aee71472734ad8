/**
 * `hgq train`: the flags path (classification and regression), the spec path for every data format, bad
 * specs and data refused with exit 2 before any work and nothing written, the run folder contract
 * (docs/run-folder.md), resume after SIGKILL, foreign-folder refusal, preprocessing stored and applied.
 * Small synthetic data, few epochs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import JSZip from 'jszip';
import * as h5wasm from 'h5wasm';
import { formatNpy } from '../src/data/npy.ts';
import { formatDyadic } from '../src/fixed/format.ts';
import { MARKER, listFiles, readMarker, whyNotReplaceable } from '../src/util/fs.ts';
import { main } from '../src/cli/main.ts';
import { resolveSpec } from '../src/app/spec.ts';
import { loadRunData } from '../src/app/data.ts';
import { applyPreprocess, preprocessOf, preprocessRawData } from '../src/app/preprocess.ts';
import { mulberry32 } from '../src/util/random.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hgq-train-'));

function hgq(
  args: string[],
  onStart?: (p: ReturnType<typeof spawn>) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/hgq.js', ...args], { cwd: ROOT });
    let stdout = '',
      stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onStart?.(p);
  });
}

/** In-process CLI run capturing stderr (fast: for refusals that must happen before any training). */
async function hgqIn(args: string[]): Promise<{ code: number; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}

const FEATURES = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'];
/** A learnable 3-class table: the class is a band of a linear score; features have large offsets and scales. */
function table(n: number, seed: number): { x: number[][]; cls: number[]; target: number[] } {
  const rng = mulberry32(seed);
  const g = () => Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());
  const x: number[][] = [],
    cls: number[] = [],
    target: number[] = [];
  for (let r = 0; r < n; r++) {
    const z = FEATURES.map(() => g());
    const s = 1.5 * z[0]! - z[1]! + 0.5 * z[2]!;
    cls.push(s < -0.6 ? 0 : s < 0.6 ? 1 : 2);
    target.push(s + 0.3 * z[3]! * z[4]!);
    x.push(z.map((v, j) => 1000 * j + (j + 1) * 10 * v)); // raw units far from standardized
  }
  return { x, cls, target };
}

function writeCsv(path: string, n: number, seed: number, mutate?: (row: string[], r: number) => void): void {
  const t = table(n, seed);
  const lines = [[...FEATURES, 'cls', 'y'].join(',')];
  for (let r = 0; r < n; r++) {
    const row = [...t.x[r]!.map((v) => v.toFixed(4)), String(t.cls[r]), t.target[r]!.toFixed(5)];
    mutate?.(row, r);
    lines.push(row.join(','));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

const trainCsv = join(dir, 'train.csv');
writeCsv(trainCsv, 900, 1);
const testCsv = join(dir, 'test.csv');
writeCsv(testCsv, 300, 2);

function readJson(p: string): any {
  return JSON.parse(readFileSync(p, 'utf8'));
}

/** The run folder contract: complete marker listing exactly the files present; front.json; checkpoints as model folders. */
function assertCompleteRun(run: string, epochs: number): any {
  const marker = readMarker(run)!;
  assert.equal(marker.kind, 'run');
  assert.equal(marker['status'], 'complete');
  assert.deepEqual(
    [...marker.files].sort(),
    listFiles(run).filter((f) => f !== MARKER),
    'the marker lists exactly the files present',
  );
  assert.equal(whyNotReplaceable(run, ['run']), null);
  const front = readJson(join(run, 'front.json'));
  assert.equal(front.format, 'hgq-front');
  assert.ok(front.checkpoints.length >= 1);
  for (let j = 1; j < front.checkpoints.length; j++)
    assert.ok(front.checkpoints[j - 1].ebops <= front.checkpoints[j].ebops, 'sorted by EBOPs');
  for (const c of front.checkpoints) {
    for (const f of ['model.json', 'weights.bin', 'preprocess.json'])
      assert.ok(existsSync(join(run, c.path, f)), `${c.path}/${f}`);
    assert.equal(readMarker(join(run, c.path))!.kind, 'model');
    assert.ok(Number.isFinite(c.ebops) && Number.isFinite(c.train_ebops));
  }
  const hist = readFileSync(join(run, 'history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    hist.map((h) => h.epoch),
    Array.from({ length: epochs }, (_, j) => j),
    'one history line per epoch, in order',
  );
  for (const h of hist) assert.ok(Number.isFinite(h.loss) && Number.isFinite(h.ebops) && Number.isFinite(h.beta));
  assert.ok(!existsSync(join(run, 'state')), 'no resume state left in a complete run');
  return front;
}

describe('hgq train', { concurrency: 2 }, () => {
  test('flags, classification: a complete run whose checkpoints beat chance on the test file', async () => {
    const run = join(dir, 'cls');
    const r = await hgq([
      'train',
      '--data',
      trainCsv,
      '--test',
      testCsv,
      '--label',
      'cls',
      '--features',
      FEATURES.join(','),
      '--task',
      'classification',
      '--hidden',
      '16,8',
      '--epochs',
      '8',
      '--batch-size',
      '32',
      '--seed',
      '3',
      '--beta-end',
      '1e-5',
      '--out',
      run,
      '--no-progress',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const front = assertCompleteRun(run, 8);
    assert.equal(front.metric, 'accuracy');
    const best = Math.max(...front.checkpoints.map((c: any) => c.test.accuracy));
    assert.ok(best > 0.7, `best test accuracy ${best} (chance ≈ 0.33)`);
    const spec = readJson(join(run, 'spec.json'));
    assert.deepEqual(spec.model.hidden, [16, 8]);
    assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).front.checkpoints.length, front.checkpoints.length);
  });

  test('flags, regression: mse front, better than predicting the mean', async () => {
    const run = join(dir, 'reg');
    const r = await hgq([
      'train',
      '--data',
      trainCsv,
      '--label',
      'y',
      '--features',
      FEATURES.join(','),
      '--task',
      'regression',
      '--hidden',
      '16',
      '--epochs',
      '8',
      '--batch-size',
      '32',
      '--val-split',
      '0.25',
      '--beta-end',
      '1e-5',
      '--out',
      run,
      '--no-progress',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const front = assertCompleteRun(run, 8);
    assert.equal(front.metric, 'mse');
    const t = table(900, 1).target;
    const mean = t.reduce((a, b) => a + b, 0) / t.length;
    const variance = t.reduce((a, b) => a + (b - mean) ** 2, 0) / t.length;
    const best = Math.min(...front.checkpoints.map((c: any) => c.test.mse));
    assert.ok(best < 0.5 * variance, `test mse ${best} vs target variance ${variance}`);
  });

  test('--quantize false trains the float reference (plain Dense, EBOPs 0); --engine tfjs trains the HGQ model with model.fit', async () => {
    const common = [
      'train',
      '--data',
      trainCsv,
      '--label',
      'cls',
      '--features',
      FEATURES.join(','),
      '--task',
      'classification',
      '--hidden',
      '8',
      '--epochs',
      '3',
      '--batch-size',
      '64',
      '--no-progress',
    ];
    const float = join(dir, 'float');
    const f = await hgq([...common, '--quantize', 'false', '--out', float]);
    assert.equal(f.code, 0, f.stderr);
    const front = assertCompleteRun(float, 3);
    assert.equal(front.checkpoints.length, 1, 'one checkpoint: the best validation accuracy');
    assert.equal(front.checkpoints[0].ebops, 0);
    const topo = readFileSync(join(float, front.checkpoints[0].path, 'model.json'), 'utf8');
    assert.match(topo, /"class_name":"Dense"/);
    assert.doesNotMatch(topo, /QDense/);
    const tfjs = join(dir, 'tfjs');
    const t = await hgq([...common, '--engine', 'tfjs', '--out', tfjs]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /on the tfjs backend/);
    for (const c of assertCompleteRun(tfjs, 3).checkpoints) assert.ok(c.ebops > 0);
  });

  test('preprocessing: fitted on the training split, stored in the run and every checkpoint, applied by the convert/emulate hook', async () => {
    const run = join(dir, 'cls');
    while (!existsSync(join(run, 'front.json'))) await new Promise((r) => setTimeout(r, 500)); // written by the first test
    const p = preprocessOf(run)!;
    assert.equal(p.method, 'standardize');
    assert.deepEqual(p.features, FEATURES);
    // shift = mean of the training split (≈ the 1000·j offsets), scale = 1/std (≈ 1/(10(j+1)))
    p.shift.forEach((m, j) => assert.ok(Math.abs(m - 1000 * j) < 5 * (j + 1), `mean of f${j}: ${m}`));
    p.scale.forEach((s, j) => assert.ok(Math.abs(1 / s / (10 * (j + 1)) - 1) < 0.15, `std of f${j}: ${1 / s}`));
    for (const c of readJson(join(run, 'front.json')).checkpoints) assert.deepEqual(preprocessOf(join(run, c.path)), p);
    const raw = Float64Array.from([5000, 1000, 2000, 3000, 4000, 5000]);
    const want = raw.map((v, j) => (v - p.shift[j]!) * p.scale[j]!);
    const got = raw.slice();
    assert.match(preprocessRawData(join(run, readJson(join(run, 'front.json')).checkpoints[0].path), got)!, /standardize/);
    assert.deepEqual(got, want);
    const none = raw.slice();
    assert.equal(preprocessRawData(dir, none), null, 'a folder without preprocess.json leaves data alone');
    assert.deepEqual(none, raw);
  });

  test('emulate --preprocess CKPT on raw rows equals emulate on the rows preprocessed by hand', async () => {
    const run = join(dir, 'cls');
    while (!existsSync(join(run, 'front.json'))) await new Promise((r) => setTimeout(r, 500));
    const ckpt = join(run, readJson(join(run, 'front.json')).checkpoints[0].path);
    const prog = join(dir, 'cls.program.json');
    const tr = await hgq(['trace', ckpt, '-o', prog]);
    assert.equal(tr.code, 0, tr.stderr);
    const p = preprocessOf(ckpt)!;
    const t = table(40, 11);
    const rawCsv = join(dir, 'raw.csv'),
      stdCsv = join(dir, 'std.csv');
    writeFileSync(rawCsv, t.x.map((r) => r.join(',')).join('\n') + '\n');
    const std = Float64Array.from(t.x.flat());
    applyPreprocess(p, std);
    writeFileSync(
      stdCsv,
      Array.from({ length: 40 }, (_, r) => Array.from(std.subarray(r * 6, r * 6 + 6), (v) => formatDyadic(v)).join(',')).join(
        '\n',
      ) + '\n',
    );
    const a = await hgq(['emulate', prog, '-i', rawCsv, '--preprocess', ckpt]);
    const b = await hgq(['emulate', prog, '-i', stdCsv]);
    const c = await hgq(['emulate', prog, '-i', rawCsv]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    assert.notEqual(a.stdout, c.stdout, 'raw rows without the preprocessing give other outputs');
  });

  test('the table a run was trained from (label and extra columns, shuffled order) is read by its feature names', async () => {
    const run = join(dir, 'cls');
    while (!existsSync(join(run, 'front.json'))) await new Promise((r) => setTimeout(r, 500));
    const ckpt = join(run, readJson(join(run, 'front.json')).checkpoints[0].path);
    const prog = join(dir, 'cls-cols.program.json');
    assert.equal((await hgq(['trace', ckpt, '-o', prog])).code, 0);
    const t = table(30, 12);
    const featuresOnly = join(dir, 'features-only.csv');
    writeFileSync(featuresOnly, [FEATURES.join(','), ...t.x.map((r) => r.join(','))].join('\n') + '\n');
    // the same rows with the label first, the features reversed and an unused column
    const wide = join(dir, 'wide.csv');
    const rev = [...FEATURES].reverse();
    writeFileSync(
      wide,
      [['cls', ...rev, 'note'].join(','), ...t.x.map((r, i) => [t.cls[i], ...[...r].reverse(), 7].join(','))].join('\n') + '\n',
    );
    const a = await hgq(['emulate', prog, '-i', featuresOnly, '--preprocess', ckpt]);
    const b = await hgq(['emulate', prog, '-i', wide, '--preprocess', ckpt]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.stdout, a.stdout, 'columns picked by name give the same outputs');

    const lacking = join(dir, 'lacking.csv');
    writeFileSync(lacking, [['f0', 'f1', 'f2', 'cls'].join(','), '1,2,3,0'].join('\n') + '\n');
    const c = await hgq(['emulate', prog, '-i', lacking, '--preprocess', ckpt]);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /lacking\.csv: the header lacks the model's feature columns "f3", "f4", "f5"/);

    const prj = join(dir, 'cols-prj');
    const d = await hgq(['convert', ckpt, prj, '--data', wide, '--vectors', '10']);
    assert.equal(d.code, 0, d.stderr);
    assert.ok(existsSync(join(prj, 'summary.json')));
    const e = await hgq(['convert', ckpt, join(dir, 'cols-prj2'), '--data', lacking]);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /the header lacks the model's feature columns/);
    assert.ok(!existsSync(join(dir, 'cols-prj2')), 'nothing written on bad data');
  });
});

// ---------------------------------------------------------------------------------------------------------
// data formats: the same samples through every reader give the same split

function npyBytes(data: number[], shape: number[]): Uint8Array {
  return formatNpy({ data: Float64Array.from(data), shape });
}

async function writeFormats(): Promise<Record<string, unknown>> {
  const t = table(200, 7);
  const xs = t.x.flat();
  const f = join(dir, 'fmt');
  mkdirSync(f, { recursive: true });
  writeFileSync(join(f, 'x.npy'), npyBytes(xs, [200, 6]));
  writeFileSync(join(f, 'y.npy'), npyBytes(t.cls, [200]));
  const zip = new JSZip();
  zip.file('features.npy', npyBytes(xs, [200, 6]));
  zip.file('labels.npy', npyBytes(t.cls, [200]));
  writeFileSync(join(f, 'd.npz'), await zip.generateAsync({ type: 'uint8array' }));
  const m = await h5wasm.ready;
  const mem = `/hgq-test-${process.pid}.h5`;
  const h = new h5wasm.File(mem, 'w');
  const g = h.create_group('train');
  g.create_dataset({ name: 'x', data: Float32Array.from(xs), shape: [200, 6] });
  g.create_dataset({ name: 'y', data: Int32Array.from(t.cls), shape: [200] });
  h.close();
  writeFileSync(join(f, 'd.h5'), m.FS.readFile(mem));
  m.FS.unlink(mem);
  // IDX: uint8 features (IDX images are bytes), labels as uint8
  const idx = (dims: number[], data: number[]) => {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head.writeUInt8(0x08, 2);
    head.writeUInt8(dims.length, 3);
    dims.forEach((d, j) => head.writeUInt32BE(d, 4 + 4 * j));
    return Buffer.concat([head, Buffer.from(data)]);
  };
  writeFileSync(
    join(f, 'x.idx'),
    idx(
      [200, 2, 3],
      xs.map((v) => Math.max(0, Math.min(255, Math.round(v / 25)))),
    ),
  );
  writeFileSync(join(f, 'y.idx'), idx([200], t.cls));
  writeCsv(join(f, 'd.csv'), 200, 7);
  return { xs, cls: t.cls };
}

describe('hgq train data formats', () => {
  test('CSV (by column name), NPY, NPZ and HDF5 specs read the same samples and labels; IDX reads its bytes', async () => {
    const { xs, cls } = (await writeFormats()) as { xs: number[]; cls: number[] };
    const f = join(dir, 'fmt');
    const sources: Record<string, object> = {
      csv: { path: 'd.csv', label: 'cls', features: FEATURES },
      npy: { x: 'x.npy', y: 'y.npy' },
      npz: { path: 'd.npz', x: 'features', y: 'labels' },
      hdf5: { path: 'd.h5', x: 'train/x', y: 'train/y' },
    };
    let first: Awaited<ReturnType<typeof loadRunData>> | undefined;
    for (const [name, source] of Object.entries(sources)) {
      const spec = resolveSpec({ data: { train: source, preprocess: 'none' }, model: { hidden: [4] } }, f, name);
      const d = await loadRunData(spec);
      assert.deepEqual(d.inputShape, [6], name);
      assert.equal(d.outputs, 3, name);
      assert.equal(d.train.n + d.val.n + d.test.n, 200, name);
      first ??= d;
      // same seed, same split: the same rows land in the same places, equal up to the CSV's 4 decimals
      for (const part of ['train', 'val', 'test'] as const) {
        assert.deepEqual(d[part].labels, first[part].labels, `${name} ${part} labels`);
        d[part].x.forEach((v, j) =>
          assert.ok(Math.abs(v - first![part].x[j]!) <= 1e-3 * Math.max(1, Math.abs(v)), `${name} ${part} x[${j}]`),
        );
      }
    }
    const all = new Set(xs.map((v) => Math.fround(v)));
    for (const v of first!.train.x.subarray(0, 50)) assert.ok([...all].some((w) => Math.abs(w - v) <= 1e-3 * Math.abs(v) + 1e-3));
    assert.equal(cls.length, 200);
    const idx = await loadRunData(
      resolveSpec(
        { data: { train: { x: 'x.idx', y: 'y.idx' }, preprocess: 'none' }, model: { input_shape: [6], hidden: [4] } },
        f,
        'idx',
      ),
    );
    assert.deepEqual(idx.inputShape, [6]);
    assert.equal(idx.train.n + idx.val.n + idx.test.n, 200);
    assert.ok(
      idx.train.x.every((v) => Number.isInteger(v) && v >= 0 && v <= 255),
      'IDX bytes as read',
    );
  });

  test('a YAML spec with an NPZ source, a layer list and quantizer defaults trains to a complete run', async () => {
    await writeFormats();
    const f = join(dir, 'fmt');
    writeFileSync(
      join(f, 'spec.yaml'),
      `# test spec
data:
  task: classification
  train: {path: d.npz, x: features, y: labels}
  preprocess: minmax
model:
  quantizer:
    weight: {b0: 6}
    datalane: {round_mode: RND}
  layers:
    - {type: QDense, units: 8, activation: relu}
    - {type: QDense, units: 3}
training:
  epochs: 3
  batch_size: 32
  optimizer: {lr: 0.005, schedule: {type: cosine}}
  beta: {schedule: "0:1e-6:log,2:1e-4"}
out: run-npz
`,
    );
    const r = await hgq(['train', join(f, 'spec.yaml'), '--no-progress']);
    assert.equal(r.code, 0, r.stderr);
    assertCompleteRun(join(f, 'run-npz'), 3);
    assert.equal(preprocessOf(join(f, 'run-npz'))!.method, 'minmax');
  });
});

// ---------------------------------------------------------------------------------------------------------
// refusals: exit 2, the problem named, nothing written

describe('hgq train refuses bad input with exit 2 before any work', { concurrency: false }, () => {
  const flags = (out: string, ...extra: string[]) => [
    'train',
    '--data',
    trainCsv,
    '--label',
    'cls',
    '--task',
    'classification',
    '--hidden',
    '8',
    '--epochs',
    '2',
    '--out',
    out,
    '--no-progress',
    ...extra,
  ];
  const spec = (name: string, body: object): string => {
    const p = join(dir, `${name}.json`);
    writeFileSync(p, JSON.stringify({ out: `out-${name}`, ...body }));
    return p;
  };
  const base = { data: { train: { path: trainCsv, label: 'cls' } } };
  const cases: [string, () => string[], RegExp][] = [
    [
      'unknown layer',
      () => [
        'train',
        spec('unknown-layer', {
          ...base,
          model: {
            layers: [
              { type: 'QDense', units: 8 },
              { type: 'QDanse', units: 3 },
            ],
          },
        }),
        '--no-progress',
      ],
      /model\.layers\[1\]\.type: must be one of .*"QDense"/,
    ],
    [
      'unknown layer argument',
      () => [
        'train',
        spec('unknown-arg', {
          ...base,
          model: {
            layers: [
              { type: 'QDense', units: 8, kernel_sise: 3 },
              { type: 'QDense', units: 3 },
            ],
          },
        }),
        '--no-progress',
      ],
      /model\.layers\[0\] \(QDense\): unknown option 'kernelSise'; valid options: .*units/,
    ],
    [
      'bad argument value',
      () => [
        'train',
        spec('bad-units', {
          ...base,
          model: {
            layers: [
              { type: 'QDense', units: 8 },
              { type: 'QDense', units: 8 },
              { type: 'QDense', units: -3 },
            ],
          },
        }),
        '--no-progress',
      ],
      /model\.layers\[2\] \(QDense\): units must be a positive integer/,
    ],
    [
      'unknown spec key',
      () => ['train', spec('unknown-key', { ...base, model: { hidden: [8] }, training: { epoch: 3 } }), '--no-progress'],
      /training\.epoch: unknown key; allowed keys here: epochs, batch_size/,
    ],
    [
      'wrong type',
      () => ['train', spec('wrong-type', { ...base, model: { hidden: [8] }, training: { batch_size: 'big' } }), '--no-progress'],
      /training\.batch_size: must be an integer/,
    ],
    [
      'output shape mismatch',
      () => [
        'train',
        spec('out-shape', {
          ...base,
          model: {
            layers: [
              { type: 'QDense', units: 8 },
              { type: 'QDense', units: 2 },
            ],
          },
        }),
        '--no-progress',
      ],
      /output has shape \[2\].*needs 3 class scores/,
    ],
    [
      'input shape mismatch',
      () => ['train', spec('in-shape', { ...base, model: { input_shape: [2, 5], hidden: [8] } }), '--no-progress'],
      /model\.input_shape: \[2,5\] holds 10 values, but each sample has 7/,
    ],
    [
      'missing file',
      () => flags(join(dir, 'o1'), '--test', join(dir, 'nope.csv')),
      /data\.test\.path: .*nope\.csv: no such file/,
    ],
    [
      'missing column',
      () => [
        'train',
        '--data',
        trainCsv,
        '--label',
        'klass',
        '--task',
        'classification',
        '--hidden',
        '8',
        '--out',
        join(dir, 'o2'),
      ],
      /no column 'klass' in .*columns: f0, f1/,
    ],
    [
      'missing dataset',
      () => [
        'train',
        spec('no-dataset', {
          data: { train: { path: join(dir, 'fmt', 'd.h5'), x: 'train/x', y: 'train/labels' } },
          model: { hidden: [4] },
        }),
        '--no-progress',
      ],
      /no dataset 'train\/labels' \(the file holds: train\/x, train\/y\)/,
    ],
    [
      'NaN in the data',
      () => {
        const p = join(dir, 'nan.csv');
        writeCsv(p, 50, 3, (row, r) => {
          if (r === 17) row[2] = 'nan';
        });
        return flags(join(dir, 'o3')).map((a) => (a === trainCsv ? p : a));
      },
      /features of sample 17 \(0-based\), value 2 \('f2'\), is NaN/,
    ],
    [
      'label out of range',
      () => {
        const p = join(dir, 'lbl.csv');
        writeCsv(p, 50, 4, (row, r) => {
          if (r === 9) row[6] = '7';
        });
        return flags(join(dir, 'o4'), '--test', p);
      },
      /data\.test: .*label of sample 9 is 7, out of range: the training labels are 0\.\.2/,
    ],
    [
      'non-integer label',
      () => flags(join(dir, 'o5')).map((a) => (a === 'cls' ? 'y' : a)),
      /label of sample \d+ is -?[\d.]+; classification labels must be integers/,
    ],
    [
      'model beyond memory',
      () => flags(join(dir, 'o6')).map((a) => (a === '8' ? '100000,100000' : a)),
      /too large to train here: .*use fewer units/,
    ],
    ['--out is a file', () => flags(trainCsv), /exists and is a file/],
    ['--out under a file', () => flags(join(trainCsv, 'run')), /is a file, not a folder/],
    ['bad flag value', () => flags(join(dir, 'o7'), '--val-split', '1.5'), /--val-split must be a fraction/],
    ['spec file missing', () => ['train', join(dir, 'nospec.yaml')], /nospec\.yaml: no such spec file/],
  ];
  for (const [name, args, message] of cases) {
    test(name, async () => {
      if (name === 'missing dataset') await writeFormats();
      const before = new Set(readdirSync(dir));
      const r = await hgqIn(args());
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      assert.match(r.stderr, message);
      const after = readdirSync(dir).filter((f) => !before.has(f));
      assert.deepEqual(
        after.filter((f) => !f.endsWith('.csv') && !f.endsWith('.json')),
        [],
        'nothing written',
      );
    });
  }

  test('--out into a folder that is not an hgq run (or holds foreign files) is refused and left untouched', async () => {
    const foreign = join(dir, 'foreign');
    mkdirSync(join(foreign, 'epoch-0001'), { recursive: true });
    writeFileSync(join(foreign, 'front.json'), '[]');
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const snapshot = () =>
      listFiles(foreign).map((f) => [f, readFileSync(join(foreign, f), 'utf8'), statSync(join(foreign, f)).mtimeMs]);
    const before = snapshot();
    const r = await hgqIn(flags(foreign));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /was not written by hgq/);
    assert.deepEqual(snapshot(), before);
    // a finished run plus a file of the user's: refused too
    const run = join(dir, 'cls');
    while (!existsSync(join(run, 'front.json'))) await new Promise((res) => setTimeout(res, 500));
    writeFileSync(join(run, 'mine.txt'), 'keep me');
    const r2 = await hgqIn(flags(run));
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /holds files hgq did not write \(mine\.txt\)/);
    assert.equal(readFileSync(join(run, 'mine.txt'), 'utf8'), 'keep me');
    assert.ok(existsSync(join(run, 'front.json')));
  });

  test('hgq demo --out into a folder holding front.json and epoch-NNNN/ of its own making is refused and left untouched', async () => {
    const old = join(dir, 'old-demo');
    mkdirSync(join(old, 'epoch-0003'), { recursive: true });
    writeFileSync(join(old, 'front.json'), '[{"path":"epoch-0003"}]');
    writeFileSync(join(old, 'epoch-0003', 'model.json'), '{}');
    writeFileSync(join(old, 'thesis.tex'), 'months of work');
    const before = listFiles(old).map((f) => [f, readFileSync(join(old, f), 'utf8')]);
    const r = await hgqIn(['demo', '--quick', '--out', old, '--no-progress']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /was not written by hgq/);
    assert.deepEqual(
      listFiles(old).map((f) => [f, readFileSync(join(old, f), 'utf8')]),
      before,
    );
    const file = await hgqIn(['demo', '--quick', '--out', trainCsv, '--no-progress']);
    assert.equal(file.code, 2, 'demo --out FILE fails before training');
    assert.match(file.stderr, /exists and is a file/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// resume

test('SIGKILL mid-run leaves a partial run (status running, no front.json) that --resume completes', async () => {
  const run = join(dir, 'killed');
  const big = join(dir, 'big.csv');
  writeCsv(big, 4000, 9);
  const args = [
    'train',
    '--data',
    big,
    '--label',
    'cls',
    '--features',
    FEATURES.join(','),
    '--task',
    'classification',
    '--hidden',
    '32,16',
    '--epochs',
    '14',
    '--batch-size',
    '32',
    '--out',
    run,
    '--no-progress',
  ];
  const killed = await hgq(args, (p) => {
    const poll = setInterval(() => {
      const h = join(run, 'history.jsonl');
      if (existsSync(h) && readFileSync(h, 'utf8').trim().split('\n').length >= 3) {
        clearInterval(poll);
        p.kill('SIGKILL');
      }
    }, 50);
    p.on('close', () => clearInterval(poll));
  });
  assert.equal(killed.signal, 'SIGKILL', `the run finished before it could be killed: ${killed.stderr}`);
  const marker = readMarker(run)!;
  assert.equal(marker['status'], 'running');
  assert.ok(!existsSync(join(run, 'front.json')), 'no front.json in a partial run');
  assert.ok(existsSync(join(run, 'state', 'front-partial.json')));
  assert.equal(whyNotReplaceable(run, ['run']), null, 'the partial run holds only files its marker lists');
  const again = await hgqIn(args);
  assert.equal(again.code, 2, 'a partial run is not replaced without --resume');
  assert.match(again.stderr, /partial run.*--resume/);
  // another live process holding the run's lock: busy (exit 75, retry later), nothing touched
  const snapshot = () => listFiles(run).map((f) => [f, statSync(join(run, f)).mtimeMs]);
  const partial = snapshot();
  const lock = join(dir, '.killed.hgq-lock');
  writeFileSync(lock, `${process.pid}\n`);
  const busy = await hgqIn(['train', '--resume', '--out', run, '--no-progress']);
  assert.equal(busy.code, 75, busy.stderr);
  assert.match(busy.stderr, new RegExp(`being written by another hgq process \\(pid ${process.pid}\\)`));
  assert.deepEqual(snapshot(), partial);
  assert.equal(readFileSync(lock, 'utf8'), `${process.pid}\n`, 'the live lock is left alone');
  rmSync(lock);
  const resumed = await hgq(['train', '--resume', '--out', run, '--no-progress']); // the run's own spec.json
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .* after epoch \d+ of 14/);
  assertCompleteRun(run, 14);
  // resuming a complete run is refused and leaves it as it is (it is not trained again from scratch)
  const complete = snapshot();
  const again2 = await hgqIn(['train', '--resume', '--out', run, '--no-progress']);
  assert.equal(again2.code, 2, again2.stderr);
  assert.match(again2.stderr, /the run is complete; nothing to resume/);
  assert.deepEqual(snapshot(), complete);
});

test('model.quantizer scopes set defaults per place; a layer argument (HGQ2 snake_case) overrides them', async () => {
  const { buildModel } = await import('../src/app/model.ts');
  const spec = resolveSpec(
    {
      data: { train: { path: 'x.csv', label: 'y' } },
      model: {
        quantizer: { weight: { b0: 5 }, datalane: { round_mode: 'TRN' } },
        layers: [
          { type: 'QDense', units: 4, kq_conf: { b0: 3 } },
          { type: 'QDense', units: 2 },
        ],
      },
    },
    dir,
  );
  const m = await buildModel(spec, [3], 2);
  const kq = m.layers.map((l) => (l as unknown as { kq: { getConfig(): { b0: number } } }).kq.getConfig().b0);
  assert.deepEqual(kq, [3, 5]);
  const iq = m.layers.map(
    (l) => (l as unknown as { iqs: { getConfig(): { roundMode: string } }[] }).iqs[0]!.getConfig().roundMode,
  );
  assert.deepEqual(iq, ['TRN', 'TRN']);
  m.dispose();
});

test('training.quantize: false builds the plain tfjs counterpart of every layer, pooling options kept', async () => {
  const { buildModel } = await import('../src/app/model.ts');
  const spec = resolveSpec(
    {
      data: { train: { path: 'x.csv', label: 'y' } },
      training: { quantize: false },
      model: {
        layers: [
          { type: 'QConv2D', filters: 2, kernel_size: 3 },
          { type: 'QMaxPooling2D', pool_size: 2, strides: 1 },
          { type: 'QAveragePooling2D', pool_size: 2 },
          { type: 'QGlobalMaxPooling2D' },
          { type: 'QDense', units: 2 },
          { type: 'QSoftmax' },
        ],
      },
    },
    dir,
  );
  const m = await buildModel(spec, [8, 8, 1], 2);
  assert.deepEqual(
    m.layers.map((l) => l.getClassName()),
    ['Conv2D', 'MaxPooling2D', 'AveragePooling2D', 'GlobalMaxPooling2D', 'Dense', 'Softmax'],
  );
  // 8 → conv 3 (valid) → 6 → max 2 stride 1 → 5 → avg 2 (stride 2) → 2
  assert.deepEqual(m.layers[2]!.outputShape, [null, 2, 2, 2]);
  m.dispose();
});

test('raw data given with a program.json or .keras input is left as it is (only a model folder carries preprocess.json)', () => {
  const prog = join(dir, 'program.json');
  writeFileSync(prog, '{"version":1,"name":"p"}');
  const data = new Float64Array([1, 2, 3]);
  assert.equal(preprocessRawData(prog, data), null);
  assert.deepEqual([...data], [1, 2, 3]);
});
