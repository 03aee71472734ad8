/**
 * A careless user against the CLI, the cases issue #15's list did not name: every refusal is exit 2 naming
 * what is wrong (no internal error), before any long work, and leaves the user's files as they were.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunData } from '../src/app/report-data.ts';
import { reportFigures } from '../src/app/report.ts';
import { writeProgram } from '../src/ir/serialize.ts';
import { coveringProgram } from './backends-fixtures.ts';
import { hgq, hgqInProcess, startHgq } from './util/cli.ts';

/** A small 3-class table: four features, a class column. */
function tinyCsv(path: string, rows = 120): void {
  const lines = ['a,b,c,d,class'];
  for (let i = 0; i < rows; i++) {
    const v = [Math.sin(i), Math.cos(3 * i), Math.sin(7 * i + 1), Math.cos(i / 3)];
    lines.push(`${v.map((x) => x.toFixed(4)).join(',')},${i % 3}`);
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

/** `hgq train` of the tiny table from flags (a 4-wide hidden layer), into `out`. */
function quickTrainArgs(csv: string, out: string, epochs = 1): string[] {
  return [
    'train',
    '--data',
    csv,
    '--label',
    'class',
    '--task',
    'classification',
    '--hidden',
    '4',
    '--epochs',
    String(epochs),
    '--out',
    out,
  ];
}

/** One trained run folder shared by the tests that need one (1 epoch, a 4-wide hidden layer). */
async function tinyRun(root: string): Promise<string> {
  const csv = join(root, 'tiny.csv');
  tinyCsv(csv);
  const run = join(root, 'run');
  const r = await hgq([...quickTrainArgs(csv, run, 2), '--no-progress']);
  assert.equal(r.status, 0, r.stderr);
  return run;
}

test('report -o never replaces a file hgq did not write (its own page it replaces)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const run = await tinyRun(root);
    const user = join(root, 'notes.txt');
    writeFileSync(user, 'precious');
    const r = await hgq(['report', run, '-o', user, '--no-luts']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /notes\.txt exists and is not a report page written by hgq/);
    assert.equal(readFileSync(user, 'utf8'), 'precious');
    // a user's report.html in the run folder (the default output) is kept too
    const own = join(run, 'report.html');
    writeFileSync(own, '<html>my own notes</html>');
    const d = await hgq(['report', run, '--no-luts']);
    assert.equal(d.status, 2, d.stderr);
    assert.equal(readFileSync(own, 'utf8'), '<html>my own notes</html>');
    // a page hgq wrote is replaced
    const page = join(root, 'page.html');
    assert.equal((await hgq(['report', run, '-o', page, '--no-luts'])).status, 0);
    assert.equal((await hgq(['report', run, '-o', page, '--no-luts'])).status, 0);
    assert.match(readFileSync(page, 'utf8'), /<title>hgq report: run<\/title>/);
    assert.deepEqual(readdirSync(root).sort(), ['notes.txt', 'page.html', 'run', 'tiny.csv'], 'no temporaries');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('Ctrl-C or SIGTERM during training stops it within seconds, leaving no lock or temporary', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const csv = join(root, 'tiny.csv');
    tinyCsv(csv);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const run = join(root, `run-${sig}`);
      const args = ['train', '--data', csv, '--label', 'class', '--task', 'classification', '--hidden', '4'];
      const { child, done } = startHgq([...args, '--epochs', '100000', '--out', run, '--no-progress']);
      // the run's history grows once training is under way
      const t0 = Date.now();
      while (!existsSync(join(run, 'history.jsonl')) && Date.now() - t0 < 60_000) await sleep(100);
      assert.ok(existsSync(join(run, 'history.jsonl')), 'training started');
      const sent = Date.now();
      child.kill(sig);
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000); // a run that ignores the signal fails, not hangs
      const r = await done;
      clearTimeout(killer);
      assert.ok(Date.now() - sent < 10_000, `${sig}: stopped after ${Date.now() - sent} ms`);
      assert.ok(r.status === 128 + (sig === 'SIGINT' ? 2 : 15) || r.signal === sig, `${sig}: ${r.status} ${r.signal}`);
      const leftovers = readdirSync(root).filter((f) => f.startsWith('.'));
      assert.deepEqual(leftovers, [], `${sig}: no lock or temporary beside the run folder`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('numbers the engine cannot take are refused up front, naming the flag or field (never an internal error)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const csv = join(root, 'tiny.csv');
    tinyCsv(csv);
    const out = join(root, 'run');
    const quick = ['train', '--data', csv, '--label', 'class', '--task', 'classification', '--epochs', '1', '--out', out];
    const cases: [string[], RegExp][] = [
      [[...quick, '--hidden', '0x10'], /--hidden must be comma-separated positive integers, got "0x10"/],
      [[...quick, '--hidden', '4', '--threads', '1000'], /--threads must be at most 256/],
      [[...quick, '--hidden', '4', '--beta-start', '1e308'], /--beta-start must be at most 3\.4e\+38/],
      [[...quick, '--hidden', '4', '--beta-end', '1e39'], /--beta-end must be at most/],
      [[...quick, '--hidden', '4', '--lr', '1e308'], /--lr must be at most 3\.4e\+38/],
      [[...quick, '--hidden', '4', '--beta', '0:1e308'], /bad key point '0:1e308'/],
      [[...quick, '--hidden', '4', '--beta', '0:-1'], /bad key point '0:-1'/],
      [[...quick, '--hidden', '4', '--beta', '0x2:1e-3'], /bad key point '0x2:1e-3'/],
      [['demo', '--hidden', '0x10', '--epochs', '1'], /--hidden must be comma-separated positive integers/],
      [['demo', '--threads', '300', '--epochs', '1'], /--threads must be at most 256/],
    ];
    const spec = (training: string) => {
      const p = join(root, 'spec.yaml');
      writeFileSync(
        p,
        `data: {task: classification, train: {path: tiny.csv, label: class}}\nmodel: {hidden: [4]}\ntraining: {epochs: 1, ${training}}\nout: run\n`,
      );
      return p;
    };
    for (const [args, msg] of cases) {
      const r = await hgqInProcess(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg, args.join(' '));
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    for (const [training, msg] of [
      ['threads: 1000', /training\.threads: must be a positive integer <= 256/],
      ['optimizer: {lr: 1.0e+300}', /training\.optimizer\.lr: must be <= 3\.4e\+38/],
      ['beta: {start: 1.0e+308}', /training\.beta\.start: must be <= 3\.4e\+38/],
      ['beta: {pid: {target_ebops: 100, max_beta: 1.0e+300}}', /training\.beta\.pid\.max_beta: must be <= /],
    ] as const) {
      const r = await hgqInProcess(['train', spec(training)]);
      assert.equal(r.status, 2, `${training}: ${r.stderr}`);
      assert.match(r.stderr, msg, training);
    }
    assert.deepEqual(readdirSync(root).sort(), ['spec.yaml', 'tiny.csv'], 'nothing written');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the report draws a layer of 400k weights (its bit-width range is found without a spread that overflows the stack)', () => {
  const checkpoint = {
    path: 'checkpoints/epoch-0001',
    dir: '/nonexistent',
    epoch: 1,
    ebops: 1,
    val: {},
    test: { accuracy: 0.5 },
  };
  const run: RunData = {
    dir: '/nonexistent',
    name: 'wide',
    complete: true,
    task: 'classification',
    metric: 'accuracy',
    higherIsBetter: true,
    checkpoints: [checkpoint],
    history: [],
    sweep: false,
  };
  const rows = 2;
  const cols = 200_000;
  const bits = Array.from({ length: rows * cols }, (_, j) => j % 9);
  const weights = { rows, cols, bits, rowLabel: 'input', colLabel: 'output' };
  const layer = { name: 'wide', className: 'QDense', ebops: 1, weights, weightCount: bits.length, prunedWeights: 0 };
  const figs = reportFigures(run, { checkpoint, layers: [layer], lutMethod: '' });
  const heat = figs.find((f) => f.id === 'bits-wide-weights')!.data[0]!;
  assert.equal(heat['zmax'], 8.5, 'the colour range ends at the widest element');
});

test('a class label of 10^9 is exit 2 naming the sample and the class limit (it was a huge typed array)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const csv = join(root, 'labels.csv');
    const rows = Array.from({ length: 40 }, (_, i) => `${i / 40},${(i * 7) % 5},${i === 3 ? 1_000_000_000 : i % 2}`);
    writeFileSync(csv, ['a,b,class', ...rows].join('\n') + '\n');
    const out = join(root, 'run');
    const r = await hgqInProcess(quickTrainArgs(csv, out));
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /label of sample 3 is 1000000000; classification labels are class indices below 65536/);
    assert.deepEqual(readdirSync(root), ['labels.csv'], 'nothing written');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every numeric flag reads plain decimals only: hex, empty and blank values are refused (they were read as numbers)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const csv = join(root, 'tiny.csv');
    tinyCsv(csv);
    const prj = join(root, 'prj');
    const model = join(root, 'no-model'); // options are checked before the model is read
    const quick = quickTrainArgs(csv, join(root, 'run'));
    const cases: [string[], RegExp][] = [
      [['convert', model, prj, '--clock-period', '0x5'], /--clock-period "0x5" must be a positive number/],
      [['convert', model, prj, '--latency-cutoff', ''], /--latency-cutoff "" must be a number >= 0/],
      [['convert', model, prj, '--latency-cutoff', '0x2'], /--latency-cutoff "0x2" must be a number >= 0/],
      [['convert', model, prj, '--vectors', '0x10'], /--vectors "0x10" must be an integer >= 1/],
      [['convert', model, prj, '--validate', ' '], /--validate " " must be an integer >= 1/],
      [[...quick, '--seed', '0x10'], /--seed must be an integer, got "0x10"/],
      [[...quick, '--seed', ''], /--seed must be an integer, got ""/],
      [[...quick, '--val-split', '0x0'], /--val-split must be a fraction between 0 and 1 \(exclusive\), got "0x0"/],
      [['worker', '--redis', 'redis://localhost:1', '--concurrency', '0x2'], /--concurrency "0x2" must be a whole number/],
      [
        ['sweep', join(root, 'no-sweep.yaml'), '--out', join(root, 'sw'), '--workers', '0x1'],
        /--workers "0x1" must be a whole number/,
      ],
    ];
    for (const [args, msg] of cases) {
      const r = await hgqInProcess(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg, args.join(' '));
    }
    assert.deepEqual(readdirSync(root), ['tiny.csv'], 'nothing written');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an output folder given as a symbolic link is written where the link points; the link itself stays', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const prog = join(root, 'p.json');
    writeProgram(prog, coveringProgram(100, 40, 4));
    mkdirSync(join(root, 'big-disk'));
    const link = join(root, 'prj');
    symlinkSync('big-disk', link);
    for (let round = 0; round < 2; round++) {
      // the first round fills the empty target, the second replaces the project hgq wrote there
      const r = await hgqInProcess(['convert', prog, link]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(lstatSync(link).isSymbolicLink(), `round ${round}: the link is still a link`);
      assert.equal(readlinkSync(link), 'big-disk');
      assert.ok(existsSync(join(root, 'big-disk', 'summary.json')), `round ${round}: the project is in the link's target`);
    }
    const csv = join(root, 'tiny.csv');
    tinyCsv(csv);
    mkdirSync(join(root, 'runs-disk'));
    symlinkSync('runs-disk', join(root, 'run'));
    const t = await hgq([...quickTrainArgs(csv, join(root, 'run')), '--no-progress']);
    assert.equal(t.status, 0, t.stderr);
    assert.ok(lstatSync(join(root, 'run')).isSymbolicLink());
    assert.ok(existsSync(join(root, 'runs-disk', 'front.json')));
    // a link to nowhere would have to be replaced: refused, left as it was
    symlinkSync('nowhere', join(root, 'dangling'));
    const d = await hgqInProcess(['convert', prog, join(root, 'dangling')]);
    assert.equal(d.status, 2, d.stderr);
    assert.match(d.stderr, /dangling is a symbolic link to nowhere, which does not exist/);
    assert.equal(readlinkSync(join(root, 'dangling')), 'nowhere');
    assert.deepEqual(readdirSync(root).sort(), ['big-disk', 'dangling', 'p.json', 'prj', 'run', 'runs-disk', 'tiny.csv']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a spec with Infinity or NaN (YAML .inf/.nan, JSON 1e400) or a pareto_start past the last epoch is refused before training', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    tinyCsv(join(root, 'tiny.csv'));
    const data = 'data: {task: classification, train: {path: tiny.csv, label: class}}\nmodel: {hidden: [4]}\n';
    const cases: [string, string, RegExp][] = [
      ['epochs.yaml', `${data}training: {epochs: 1e400}\n`, /training\.epochs: Infinity is not a finite number/],
      [
        'lr.yaml',
        `${data}training: {epochs: 1, optimizer: {lr: .inf}}\n`,
        /training\.optimizer\.lr: Infinity is not a finite number/,
      ],
      [
        'nan.yaml',
        `${data}training: {epochs: 1, optimizer: {lr: .nan}}\n`,
        /training\.optimizer\.lr: NaN is not a finite number/,
      ],
      [
        'pid.yaml',
        `${data}training: {epochs: 2, beta: {pid: {target_ebops: .inf}}}\n`,
        /training\.beta\.pid\.target_ebops: Infinity/,
      ],
      [
        'spec.json',
        '{"data": {"task": "classification", "train": {"path": "tiny.csv", "label": "class"}}, "model": {"hidden": [4]}, "training": {"epochs": 1e400}}',
        /training\.epochs: Infinity is not a finite number/,
      ],
      ['ps.yaml', `${data}training: {epochs: 2, pareto_start: 5}\n`, /training\.pareto_start 5 is not below training\.epochs 2/],
    ];
    for (const [name, text, msg] of cases) {
      writeFileSync(join(root, name), text);
      const r = await hgqInProcess(['train', join(root, name), '--out', join(root, 'run'), '--no-progress']);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, msg, name);
      assert.ok(!existsSync(join(root, 'run')), `${name}: refused before the run folder is made`);
    }
    // a sweep file names its own field (it named a trial 'training.optimizer.lr=null')
    writeFileSync(join(root, 'base.yaml'), `${data}training: {epochs: 1}\n`);
    writeFileSync(join(root, 'sweep.yaml'), 'base: base.yaml\naxes:\n  training.optimizer.lr: [.inf, 0.01]\nseeds: [1]\n');
    const sw = await hgqInProcess(['sweep', join(root, 'sweep.yaml'), '--out', join(root, 'sw'), '--no-report']);
    assert.equal(sw.status, 2, sw.stderr);
    assert.match(sw.stderr, /sweep\.yaml: axes\.training\.optimizer\.lr\[0\]: Infinity is not a finite number/);
    assert.ok(!existsSync(join(root, 'sw')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an output folder without a marker is refused without walking it (/ was walked whole, an internal error); empty names are named', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const prog = join(root, 'p.json');
    writeProgram(prog, coveringProgram(100, 40, 4));
    const t0 = performance.now();
    const r = await hgqInProcess(['convert', prog, '/']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\/ exists and was not written by hgq/);
    assert.ok(performance.now() - t0 < 10_000, 'refused at once');
    const cases: [string[], RegExp][] = [
      [['convert', prog, ''], /the output folder name is empty/],
      [['trace', join(root, 'no-model'), '-o', ''], /the output file name is empty/],
      [['emulate', prog, '-i', prog, '-o', ' '], /the output file name is empty/],
      [['cmvm', '--random', '3', '--emit', ''], /the output file name is empty/],
    ];
    for (const [args, msg] of cases) {
      const e = await hgqInProcess(args);
      assert.equal(e.status, 2, `${args.join(' ')}: ${e.stderr}`);
      assert.match(e.stderr, msg, args.join(' '));
    }
    assert.deepEqual(readdirSync(root), ['p.json']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('synth on a project a live convert is still creating is busy (exit 75), not "not a project"', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    // the first convert into a new folder: only its lock exists beside the (not yet created) project
    writeFileSync(join(root, '.prj.hgq-lock'), `${process.pid}\n`);
    const r = await hgqInProcess(['synth', join(root, 'prj')]);
    assert.equal(r.status, 75, r.stderr);
    assert.match(r.stderr, /being written by another hgq process/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a feature column listed twice (by name, or by name and index) is refused naming it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hgq-careless-'));
  try {
    const csv = join(root, 'tiny.csv');
    tinyCsv(csv);
    for (const features of ['a,a', 'b,1']) {
      const args = ['train', '--data', csv, '--label', 'class', '--features', features, '--task', 'classification'];
      const r = await hgqInProcess([...args, '--hidden', '4', '--epochs', '1', '--out', join(root, 'run')]);
      assert.equal(r.status, 2, `${features}: ${r.stderr}`);
      assert.match(r.stderr, /data\.train\.features: column '(a|b)' is listed twice/);
    }
    assert.deepEqual(readdirSync(root), ['tiny.csv']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
