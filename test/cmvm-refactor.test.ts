/**
 * The CMVM code was restructured (extraction state, pair selection and main loop apart, scratch passed in)
 * without changing a single greedy choice: at the baseline search (effort 1 and 0) the solver returns the
 * very programs it returned before, on matrices of every kind the solver distinguishes (8-bit, signed,
 * fractional, sparse; with and without delay constraint and arrival times). The fingerprint below is the
 * SHA-256 of those programs as computed by the code before the restructuring.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { solveCmvm, type CmvmInput, type CmvmOptions } from '../src/cmvm/solve.ts';
import { makeRng } from './util/rng.ts';

const BEFORE = '8190410744221f41bb9bd3e4a5ac18213d291fc57a522f8b3a49e8d6f2c436cc';

test('the baseline search returns the same programs as before the restructuring (63 matrices)', () => {
  const rng = makeRng(2024);
  const h = createHash('sha256');
  for (let k = 0; k < 60; k++) {
    const nOut = rng.int(1, 24);
    const nIn = rng.int(1, 24);
    const kind = rng.pick(['8bit', 'signed', 'fractional', 'sparse']);
    const W = Array.from({ length: nOut }, () =>
      Array.from({ length: nIn }, () => {
        if (kind === '8bit') return rng.int(129, 255);
        if (kind === 'signed') return rng.int(-255, 255);
        if (kind === 'fractional') return rng.int(-63, 63) / 2 ** rng.int(0, 5);
        return rng.chance(0.3) ? rng.int(-31, 31) : 0;
      }),
    );
    const inputs: CmvmInput[] = Array.from({ length: nIn }, () => ({
      qint: rng.chance(0.7) ? { min: -128, max: 127, step: 1 } : { min: 0, max: 15.75, step: 0.25 },
      ...(rng.chance(0.2) ? { latency: rng.int(0, 3) } : {}),
    }));
    const opts: CmvmOptions = {
      dc: rng.pick([-1, -1, 2, 0]),
      method: rng.chance(0.7) ? 'wmc' : 'mc',
      effort: rng.pick([0, 1, 1]),
    };
    const r = solveCmvm(W, inputs, opts);
    h.update(JSON.stringify([r.adders, r.depth, r.program.ops, r.program.out]));
  }
  // larger shapes: long rows (gathered substitutions) and tall ones
  for (const [nOut, nIn] of [
    [40, 40],
    [6, 300],
    [200, 5],
  ] as const) {
    const W = Array.from({ length: nOut }, () => Array.from({ length: nIn }, () => rng.int(-255, 255)));
    const r = solveCmvm(
      W,
      Array.from({ length: nIn }, () => ({ qint: { min: -128, max: 127, step: 1 } })),
      { effort: 1 },
    );
    h.update(JSON.stringify([r.adders, r.depth, r.program.ops, r.program.out]));
  }
  assert.equal(h.digest('hex'), BEFORE);
});
