/**
 * The pure parts of the MNIST QoR bench (bench/mnist-qor.ts) and the front benches' shared results cache
 * (bench/front-lib.ts): the quick spec, the bars, the final JSON line, and a cache that a rerun resumes from.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RowCache, spreadOrder } from '../bench/front-lib.ts';
import { barsMet, type QorRow, qorLine, quickSpec } from '../bench/mnist-qor.ts';

const row = (o: Partial<QorRow>): QorRow => ({
  checkpoint: 'c',
  epoch: 0,
  test_accuracy: 0.9,
  val_accuracy: 0.9,
  ebops: 100,
  ...o,
});
const yosys = (lut: number) => ({ lut, carry: 1, ff: 2, srl: 0, depth: 3, seconds: 1 });

test('quickSpec: a tenth of the epochs, β key points and warm-ups scaled along; the spec itself untouched', () => {
  const spec = { name: 's', training: { epochs: 300, beta: { schedule: '0:1e-6:log, 200:1e-4,300:1e-4', warmup: 30 } } };
  const q = quickSpec(spec);
  assert.equal(q.training.epochs, 30);
  assert.equal(q.training.beta.schedule, '0:1e-6:log,20:1e-4,30:1e-4');
  assert.equal(q.training.beta.warmup, 3);
  assert.equal(spec.training.epochs, 300);
  assert.equal(spec.training.beta.warmup, 30);
  const pid = quickSpec({ training: { epochs: 20, beta: { pid: { warmup: 10 } } } });
  assert.equal(pid.training.epochs, 4, 'at least 4 epochs');
  assert.equal(pid.training.beta.pid?.warmup, 1);
  const late = quickSpec({ training: { epochs: 700, pareto_start: 150, beta: {} } });
  assert.equal(late.training.pareto_start, 15, 'the Pareto start scales with the epochs');
  const last = quickSpec({ training: { epochs: 30, pareto_start: 29, beta: {} } });
  assert.ok(last.training.pareto_start! < last.training.epochs, 'and stays before the last epoch (train refuses it there)');
});

test('barsMet: a row meets a bar only synthesized, at or under its LUTs, ≥ 1,000 verified vectors, 0 mismatches', () => {
  const ok = { verified_vectors: 1000, mismatches: 0 };
  const good97 = row({ checkpoint: 'a', test_accuracy: 0.971, yosys: yosys(10_000), ...ok });
  const tooBig = row({ checkpoint: 'b', test_accuracy: 0.99, yosys: yosys(10_001), ...ok });
  const unverified = row({ checkpoint: 'c', test_accuracy: 0.96, yosys: yosys(2000), verified_vectors: 999, mismatches: 0 });
  const mismatching = row({ checkpoint: 'd', test_accuracy: 0.96, yosys: yosys(2000), verified_vectors: 2000, mismatches: 1 });
  const unsynthesized = row({ checkpoint: 'e', test_accuracy: 0.96, ...ok });
  const [b97, b95] = barsMet([tooBig, unverified, mismatching, unsynthesized, good97]);
  assert.equal(b97!.met?.checkpoint, 'a');
  assert.equal(b95!.met, null);
  const [, b95b] = barsMet([row({ checkpoint: 'f', test_accuracy: 0.95, yosys: yosys(3000), ...ok })]);
  assert.equal(b95b!.met?.checkpoint, 'f');
});

test("qorLine: one JSON object whose rows carry the issue's fields, null where a step did not run", () => {
  const line = qorLine([
    row({ ebops: 5, latency_cycles: 3, verified_vectors: 2000, mismatches: 0, yosys: yosys(700) }),
    row({ ebops: 9 }),
  ]);
  const parsed = JSON.parse(line) as { rows: Record<string, unknown>[] };
  assert.equal(parsed.rows.length, 2);
  const keys = ['test_accuracy', 'ebops', 'yosys_lut', 'ff', 'latency_cycles', 'verified_vectors', 'mismatches'];
  assert.deepEqual(Object.keys(parsed.rows[0]!).slice(0, keys.length), keys);
  assert.equal(parsed.rows[0]!['yosys_lut'], 700);
  assert.equal(parsed.rows[0]!['ff'], 2);
  assert.equal(parsed.rows[1]!['yosys_lut'], null);
  assert.equal(parsed.rows[1]!['verified_vectors'], 0);
  assert.ok(!line.includes('\n'));
});

test('RowCache: a cached row counts only for the same EBOPs; saving keeps fields another process wrote', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'hgq-rowcache-')), 'sub', 'results.json');
  const cache = new RowCache<QorRow>(file, { run: 'r' });
  const rows = new Map([['a', cache.row('a', row({ checkpoint: 'a', ebops: 10 }))]]);
  rows.get('a')!.ir_cost = 42;
  cache.save(rows);
  assert.equal(cache.row('a', row({ checkpoint: 'a', ebops: 10 })).ir_cost, 42);
  assert.equal(cache.row('a', row({ checkpoint: 'a', ebops: 11 })).ir_cost, undefined, 'another run: other EBOPs');
  // another process adds Yosys to the file; this one saves without it and keeps it
  const disk = JSON.parse(readFileSync(file, 'utf8'));
  disk.rows.a.yosys = yosys(77);
  writeFileSync(file, JSON.stringify(disk));
  cache.save(new Map([['a', row({ checkpoint: 'a', ebops: 10, ir_cost: 42 })]]));
  const again = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(again.run, 'r');
  assert.equal(again.rows.a.yosys.lut, 77);
});

test('spreadOrder: every index once, the ends first', () => {
  for (const n of [0, 1, 2, 5, 17]) {
    const o = spreadOrder(n);
    assert.deepEqual(
      [...o].sort((a, b) => a - b),
      Array.from({ length: n }, (_, k) => k),
    );
    if (n > 1) assert.deepEqual(o.slice(0, 2), [0, n - 1]);
  }
});
