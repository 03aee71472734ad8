/**
 * Shared multi-output tables (trace option shareTables): tables reading the same wire packed into one lut op
 * and read back by rewiring. Properties: on random signed / unsigned / fractional / wide tables, every field
 * read back equals its own table at every input value (compiled emulator and the BigInt reference
 * interpreter), with fewer lut ops, none wider than MAX_PACKED_BITS; identical tables on one wire become one op
 * even without sharing; HGQ2's QDenseT fixtures traced with sharing equal the model and HGQ2's outputs bit for
 * bit, and Verilator equals the emulator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend.ts';
import { ProgramBuilder } from '../src/ir/builder.ts';
import { compileProgram, interpretProgram } from '../src/ir/emulate.ts';
import { qiFromKif, qiWidth } from '../src/fixed/interval.ts';
import { emitLookups, MAX_PACKED_BITS, type PendingLookup } from '../src/trace/shared-tables.ts';
import { loadHgq2Model } from '../src/import/hgq2-model.ts';
import { buildHgqModel } from '../src/import/hgq2-build.ts';
import { trace } from '../src/trace/trace.ts';
import { checkAgainstModel } from '../src/trace/check.ts';
import { writeProject } from '../src/backends/project.ts';
import { verify } from '../src/eda/verify.ts';
import { needTool } from './backends-fixtures.ts';
import { makeRng } from './util/rng.ts';
import { HGQ2_LUT_DIR, lutFixturesSkip } from './util/hgq2-fixtures.ts';

await initBackend();
const skip = lutFixturesSkip(test);

function f32(a: { b64_f32le: string }): Float32Array {
  const b = Buffer.from(a.b64_f32le, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

test('packed tables read back every field exactly (signed, unsigned, fractional, wide), in fewer lut ops', () => {
  const rng = makeRng(17);
  for (let round = 0; round < 20; round++) {
    const b = new ProgramBuilder();
    const type = { k: rng.int(0, 1) as 0 | 1, i: rng.int(0, 3), f: rng.int(0, 3) };
    const x = b.input(0, type, 'TRN', 'WRAP');
    const q = qiFromKif(type);
    const n = Math.round((q.max - q.min) / q.step) + 1;
    const lookups: PendingLookup[] = Array.from({ length: rng.int(2, 9) }, () => {
      // values on a grid 2^-f with |v| < 2^i, signed or not; some tables are duplicated
      const f = rng.int(-2, 4);
      const i = rng.int(Math.max(-f, -1), 6);
      const signed = rng.chance(0.5);
      const table = Array.from({ length: n }, () => {
        const m = rng.int(signed ? -(2 ** (i + f)) : 0, 2 ** (i + f) - 1);
        return m * 2 ** -f + 0;
      });
      return { a: x, table };
    });
    lookups.push({ a: x, table: [...lookups[0]!.table] });
    const distinct = new Set(lookups.map((l) => l.table.join(','))).size;
    const wires = emitLookups(b, lookups, true);
    const p = b.build(
      't',
      [{ name: 'x', shape: [1] }],
      [{ name: 'y', shape: [wires.length] }],
      wires.map((w) => ({ wire: w, shift: 0, neg: false })),
    );
    const luts = p.ops.filter((o) => o.kind === 'lut');
    assert.ok(luts.length < distinct || distinct === 1, `round ${round}: ${luts.length} lut ops for ${distinct} tables`);
    for (const o of luts) assert.ok(qiWidth(o.qint) <= MAX_PACKED_BITS, `a packed table of ${qiWidth(o.qint)} bits`);
    const xs = Float64Array.from({ length: n }, (_, j) => q.min + j * q.step);
    const want = Float64Array.from(
      { length: n * wires.length },
      (_, k) => lookups[k % wires.length]!.table[Math.floor(k / wires.length)]!,
    );
    assert.deepEqual(compileProgram(p).run(xs, n), want, `round ${round}: compiled emulator`);
    assert.deepEqual(interpretProgram(p, xs, n), want, `round ${round}: reference interpreter`);
  }
});

test('identical tables on one wire become one lut op without sharing; distinct ones stay one op each', () => {
  const b = new ProgramBuilder();
  const x = b.input(0, { k: 1, i: 2, f: 1 }, 'TRN', 'WRAP');
  const t1 = Array.from({ length: 8 }, (_, j) => j - 3);
  const t2 = Array.from({ length: 8 }, (_, j) => (j * j) / 4);
  const w = emitLookups(
    b,
    [
      { a: x, table: t1 },
      { a: x, table: t2 },
      { a: x, table: [...t1] },
    ],
    false,
  );
  assert.equal(w[0], w[2]);
  assert.notEqual(w[0], w[1]);
  assert.equal(b.ops.filter((o) => o.kind === 'lut').length, 2);
});

for (const stem of ['lut_dense', 'hybrid'])
  test(`${stem} traced with shared tables equals the model and HGQ2's outputs bit for bit, in fewer lut ops`, {
    skip,
  }, async () => {
    const model = buildHgqModel(await loadHgq2Model(`${HGQ2_LUT_DIR}${stem}.keras`));
    const single = trace(model);
    const shared = trace(model, { shareTables: true });
    const count = (p: typeof single) => p.ops.filter((o) => o.kind === 'lut').length;
    assert.ok(count(shared) < count(single), `lut ops ${count(single)} → ${count(shared)}`);
    const chk = checkAgainstModel(model, shared, 1000);
    assert.equal(chk.mismatches, 0, `emulator vs model, first mismatch ${JSON.stringify(chk.first)}`);
    const ref = JSON.parse(readFileSync(`${HGQ2_LUT_DIR}${stem}.json`, 'utf8'));
    const z = compileProgram(shared).run(Float64Array.from(f32(ref.test_inputs)), ref.test_inputs.shape[0]);
    assert.deepEqual(Array.from(z), Array.from(f32(ref.outputs), Number));
  });

test('Verilator equals the emulator on a design with shared tables (lut_dense_nhl2, pipelined)', { skip }, async (t) => {
  if (!needTool(t, 'verilator')) return;
  const model = buildHgqModel(await loadHgq2Model(`${HGQ2_LUT_DIR}lut_dense_nhl2.keras`));
  const p = trace(model, { shareTables: true });
  const luts = (q: typeof p) => q.ops.filter((o) => o.kind === 'lut').length;
  assert.ok(luts(p) < luts(trace(model)), 'some lut ops hold several tables');
  const dir = mkdtempSync(join(tmpdir(), 'hgq-share-vl-'));
  try {
    writeProject(p, dir, { latencyCutoff: 1, vectors: 1 });
    const r = await verify(dir, { vectors: 2000, simulator: 'verilator', seed: 11 });
    assert.equal(r.vectors, 2000);
    assert.equal(r.mismatches, 0, `first mismatch ${JSON.stringify(r.first_mismatch)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
