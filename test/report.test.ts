/**
 * `hgq report`: reads run folders (docs/run-folder.md, and the demo's older front.json), picks and details a
 * checkpoint, draws it with Plotly in one offline page, and that page renders in a real headless Chromium
 * with no errors, the expected marks per plot and a screenshot that is not blank.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { QDense } from '../src/layers/index.ts';
import { calibrate } from '../src/train/calibrate.ts';
import { saveModel } from '../src/train/io.ts';
import { writeMarker } from '../src/util/fs.ts';
import { checkpointDetail, chooseCheckpoint, readRun, RunFolderError } from '../src/app/report-data.ts';
import { reportFigures, writeReport } from '../src/app/report.ts';
import { makeRng } from './util/rng.ts';
import { randomizeModel } from './util/trace-models.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const EPOCHS = 12;

/** A run folder as hgq train writes it: two calibrated checkpoints (with pruned weights), history, front, marker. */
async function makeRun(dir: string, o: { complete: boolean }): Promise<void> {
  const rng = makeRng(7);
  mkdirSync(dir, { recursive: true });
  const epochs = [4, 9];
  for (const [j, epoch] of epochs.entries()) {
    const m = tf.sequential({
      layers: [
        new QDense({ units: 16, activation: 'relu', inputShape: [8], name: 'hidden' }),
        new QDense({ units: 3, name: 'logits' }),
      ],
    });
    randomizeModel(m, rng, { pruneW: 0.15 + 0.2 * j });
    calibrate(m, tf.randomUniform([64, 8], -2, 2), { reset: true });
    await saveModel(m, join(dir, 'checkpoints', `epoch-${String(epoch).padStart(4, '0')}`));
    m.dispose();
  }
  const history = Array.from({ length: EPOCHS }, (_, e) =>
    JSON.stringify({
      epoch: e,
      loss: 1 / (e + 1),
      val_loss: 1.1 / (e + 1),
      metrics: { accuracy: 0.5 + e / 40, val_accuracy: 0.5 + e / 45 },
      ebops: 5000 / (e + 1),
      beta: 1e-6 * 2 ** e,
    }),
  );
  writeFileSync(join(dir, 'history.jsonl'), history.join('\n') + '\n');
  const checkpoints = epochs.map((epoch, j) => ({
    path: `checkpoints/epoch-${String(epoch).padStart(4, '0')}`,
    epoch,
    ebops: 800 - 300 * j,
    train_ebops: 820 - 300 * j,
    val: { loss: 0.3 + j / 10, accuracy: 0.9 - j / 20 },
    test: { loss: 0.31 + j / 10, accuracy: 0.91 - j / 20 },
    ...(j === 0 ? { yosys_lut: 400 } : {}),
  }));
  if (o.complete)
    writeFileSync(
      join(dir, 'front.json'),
      JSON.stringify({ format: 'hgq-front', version: 1, task: 'classification', metric: 'accuracy', checkpoints }),
    );
  else {
    mkdirSync(join(dir, 'state'), { recursive: true });
    writeFileSync(
      join(dir, 'state', 'front-partial.json'),
      JSON.stringify({
        format: 'hgq-front',
        version: 1,
        task: 'classification',
        metric: 'accuracy',
        checkpoints: checkpoints.map(({ test: _t, ...c }) => c),
      }),
    );
  }
  writeMarker(dir, 'run', { status: o.complete ? 'complete' : 'running' });
}

function hgq(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/hgq.js', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'hgq-report-'));
const runDir = join(tmp, 'run');
const partialDir = join(tmp, 'partial');

before(async () => {
  await initBackend();
  await makeRun(runDir, { complete: true });
  await makeRun(partialDir, { complete: false });
});

describe('reading run folders', () => {
  test('a complete run: front sorted by EBOPs, history rows, best checkpoint by test accuracy', () => {
    const run = readRun(runDir);
    assert.equal(run.complete, true);
    assert.deepEqual(
      run.checkpoints.map((c) => c.epoch),
      [9, 4],
    );
    assert.equal(run.history.length, EPOCHS);
    assert.equal(chooseCheckpoint(run).epoch, 4); // 0.91 beats 0.86
    assert.equal(chooseCheckpoint(run, '9').epoch, 9);
    assert.equal(chooseCheckpoint(run, 'checkpoints/epoch-0009').epoch, 9);
    assert.throws(
      () => chooseCheckpoint(run, '5'),
      (e: Error) => e instanceof RunFolderError && /epochs 9, 4/.test(e.message),
    );
  });

  test('a partial run is read from state/front-partial.json and marked partial', () => {
    const run = readRun(partialDir);
    assert.equal(run.complete, false);
    assert.equal(run.checkpoints.length, 2);
    assert.equal(chooseCheckpoint(run).epoch, 4); // by validation accuracy when there is no test split
  });

  test("the demo's older front.json (an array with absolute paths) still reads", () => {
    const old = join(tmp, 'old');
    mkdirSync(old);
    const front = [
      { path: join(runDir, 'checkpoints/epoch-0004'), val_accuracy: 0.9, test_accuracy: 0.91, ebops: 800, epoch: 4 },
      { path: join(runDir, 'checkpoints/epoch-0009'), val_accuracy: 0.85, test_accuracy: 0.86, ebops: 500, epoch: 9 },
    ];
    writeFileSync(join(old, 'front.json'), JSON.stringify(front));
    const run = readRun(old);
    assert.equal(run.complete, true);
    assert.deepEqual(
      run.checkpoints.map((c) => [c.epoch, c.test['accuracy']]),
      [
        [9, 0.86],
        [4, 0.91],
      ],
    );
  });

  test('a torn last history line (a killed run) is skipped; a bad line before it is an error naming the line', () => {
    const d = join(tmp, 'torn');
    mkdirSync(d);
    writeFileSync(join(d, 'front.json'), JSON.stringify({ checkpoints: [] }));
    writeFileSync(join(d, 'history.jsonl'), '{"epoch":0,"loss":1}\n{"epoch":1,"lo');
    assert.equal(readRun(d).history.length, 1);
    writeFileSync(join(d, 'history.jsonl'), '{"epoch":0,"loss":1}\nnot json\n{"epoch":2,"loss":1}\n');
    assert.throws(() => readRun(d), /history\.jsonl: line 2 is not JSON/);
  });

  test('not a run folder: clear errors', () => {
    assert.throws(() => readRun(join(tmp, 'nowhere')), /no such folder/);
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    assert.throws(() => readRun(empty), /no front\.json/);
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'front.json'), '{"checkpoints": [');
    assert.throws(() => readRun(bad), /front\.json: not valid JSON/);
    writeFileSync(join(bad, 'front.json'), '{"checkpoints": [{"path": "x"}]}');
    assert.throws(() => readRun(bad), /checkpoints\[0\]: ebops is missing/);
    const prj = join(tmp, 'prj');
    mkdirSync(prj);
    writeFileSync(join(prj, 'summary.json'), '{}');
    writeMarker(prj, 'project');
    assert.throws(() => readRun(prj), /holds an hgq project, not a training run/);
  });
});

describe('what the report draws', () => {
  test('per-layer bit maps have the kernel shape, count pruned weights, and the figures hold one mark per item', async () => {
    const run = readRun(runDir);
    const d = await checkpointDetail(chooseCheckpoint(run, '9'));
    assert.deepEqual(
      d.layers.map((l) => l.name),
      ['hidden', 'logits'],
    );
    const hidden = d.layers[0]!;
    assert.equal(hidden.weights!.rows, 8);
    assert.equal(hidden.weights!.cols, 16);
    const zeros = hidden.weights!.bits.filter((b) => b === 0).length;
    assert.equal(hidden.prunedWeights, zeros);
    assert.ok(zeros > 0 && zeros < 128, `randomizeModel prunes some weights, got ${zeros} of 128`);
    assert.ok(hidden.ebops > 0);
    assert.ok(
      d.layers.every((l) => l.estimatedLut !== undefined && l.estimatedLut >= 0),
      d.lutMethod,
    );
    const figs = reportFigures(run, d);
    const byId = new Map(figs.map((f) => [f.id, f]));
    assert.equal((byId.get('front-ebops')!.data[0]!['x'] as number[]).length, 2);
    assert.equal((byId.get('front-lut')!.data[0]!['x'] as number[]).length, 1); // only one checkpoint was synthesized
    assert.equal((byId.get('curves-loss')!.data[0]!['x'] as number[]).length, EPOCHS);
    const heat = byId.get('bits-hidden-weights')!.data[0]!['z'] as number[][];
    assert.equal(heat.length, 8);
    assert.equal(heat[0]!.length, 16);
  });

  test('the page is self-contained: Plotly inlined, no external URL, data cannot close the script element', async () => {
    const out = await writeReport(runDir);
    assert.equal(out, join(runDir, 'report.html'));
    const html = readFileSync(out, 'utf8');
    assert.ok(html.length > 1_000_000, 'Plotly is inlined');
    assert.doesNotMatch(html, /<script[^>]+src=/i);
    assert.doesNotMatch(html, /<link[^>]+href=/i);
    assert.equal((html.match(/<\/script>/g) ?? []).length, 2);
  });
});

describe('hgq report (CLI)', () => {
  test('writes the page where -o says; bad folders and options exit 2 with the reason', () => {
    const out = join(tmp, 'r.html');
    const ok = hgq(['report', runDir, '-o', out, '--no-luts', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout.trim().split('\n').at(-1)!), { report: out });
    assert.ok(existsSync(out));
    const missing = hgq(['report', join(tmp, 'nowhere')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no such folder/);
    const badOut = hgq(['report', runDir, '-o', join(tmp, 'no', 'such', 'dir', 'r.html')]);
    assert.equal(badOut.code, 2);
    assert.match(badOut.stderr, /does not exist/);
    const badCk = hgq(['report', runDir, '--checkpoint', '77']);
    assert.equal(badCk.code, 2);
    assert.match(badCk.stderr, /not in the front/);
  });
});

describe('the page in headless Chromium', () => {
  const haveChromium = existsSync(CHROMIUM);
  if (!haveChromium && process.env.CI === 'true')
    test('chromium is installed (CI)', () => assert.fail(`${CHROMIUM} missing: apt-get install chromium`));
  const skip = haveChromium ? false : `needs ${CHROMIUM} (apt-get install chromium)`;
  let browser: import('playwright-core').Browser | undefined;
  after(async () => browser?.close());

  for (const [label, dir, complete] of [
    ['complete', runDir, true],
    ['partial', partialDir, false],
  ] as const) {
    test(`a ${label} run: loads without errors, each plot holds its marks, the screenshot is not blank`, { skip }, async () => {
      const { chromium } = await import('playwright-core');
      browser ??= await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      });
      const out = await writeReport(dir, { out: join(tmp, `${label}.html`) });
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`file://${out}`);
      await page.waitForFunction(`document.querySelectorAll('.js-plotly-plot').length > 0 && document.readyState === 'complete'`);
      // (functions handed to page.evaluate as strings: tsx's transform would add helpers the page lacks)
      const marks = (await page.evaluate(`(() => {
        const count = (id, sel) => document.getElementById(id)?.querySelectorAll(sel).length ?? -1;
        return {
          plots: document.querySelectorAll('.js-plotly-plot').length,
          frontPoints: count('front-ebops', '.scatterlayer .trace:first-child .point'),
          lutPoints: count('front-lut', '.scatterlayer .point'),
          lossLines: count('curves-loss', '.scatterlayer .trace'),
          heatmaps: document.querySelectorAll('.js-plotly-plot .heatmaplayer image').length,
          bars: count('layers-cost', '.barlayer .point'),
          partialBanner: document.querySelectorAll('.partial').length,
        };
      })()`)) as Record<string, number>;
      assert.deepEqual(errors, []);
      // front, LUT front, loss, metrics, EBOPs/β, layer cost, pruning, 2 layers × (weights, activations)
      assert.equal(marks.plots, 11);
      assert.equal(marks.frontPoints, 2);
      assert.equal(marks.lutPoints, 1);
      assert.equal(marks.lossLines, 2);
      assert.equal(marks.heatmaps, 4);
      assert.equal(marks.bars, 4); // EBOPs and LUTs for 2 layers
      assert.equal(marks.partialBanner, complete ? 0 : 1);
      const png = await page.screenshot({ fullPage: true });
      const stats = (await page.evaluate(`(async () => {
        const img = new Image();
        img.src = 'data:image/png;base64,${png.toString('base64')}';
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width;
        c.height = img.height;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        const px = g.getImageData(0, 0, c.width, c.height).data;
        const colors = new Set();
        let nonWhite = 0;
        for (let j = 0; j < px.length; j += 4) {
          colors.add((px[j] << 16) | (px[j + 1] << 8) | px[j + 2]);
          if (px[j] < 240 || px[j + 1] < 240 || px[j + 2] < 240) nonWhite++;
        }
        return { colors: colors.size, nonWhite: nonWhite / (px.length / 4) };
      })()`)) as { colors: number; nonWhite: number };
      assert.ok(stats.colors > 50, `screenshot has ${stats.colors} colours`);
      assert.ok(stats.nonWhite > 0.03, `screenshot is ${(100 * stats.nonWhite).toFixed(1)} % non-white`);
      await page.close();
    });
  }
});
