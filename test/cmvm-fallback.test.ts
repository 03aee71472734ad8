/**
 * The extraction's fast structures (per-output pair matrices, the direct pair index, the direct step table,
 * ids given lazily to this step's pairs) have hash-table fallbacks for layers too big for them. Both must
 * make the same greedy choices: with the budgets forced to zero (or to a few outputs' worth), the solver
 * returns the very same program as with the defaults, and that program is exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evalCmvmProgram, matVec } from '../src/cmvm/check.ts';
import { CSE_BUDGETS } from '../src/cmvm/cse.ts';
import { solveCmvm, type CmvmInput, type CmvmOptions } from '../src/cmvm/solve.ts';
import { makeRng, type Rng } from './util/rng.ts';

function randomMatrix(rng: Rng, nOut: number, nIn: number): number[][] {
  const kind = rng.pick(['8bit', 'signed', 'fractional', 'sparse']);
  return Array.from({ length: nOut }, () =>
    Array.from({ length: nIn }, () => {
      switch (kind) {
        case '8bit':
          return rng.int(129, 255);
        case 'signed':
          return rng.int(-255, 255);
        case 'fractional':
          return rng.int(-63, 63) / 2 ** rng.int(0, 5);
        default:
          return rng.chance(0.3) ? rng.int(-31, 31) : 0;
      }
    }),
  );
}

function withBudgets<T>(b: Partial<typeof CSE_BUDGETS>, f: () => T): T {
  const saved = { ...CSE_BUDGETS };
  Object.assign(CSE_BUDGETS, b);
  try {
    return f();
  } finally {
    Object.assign(CSE_BUDGETS, saved);
  }
}

test('forced hash-table fallbacks give the same program as the fast structures, and it is exact', () => {
  const rng = makeRng(99);
  const settings: Array<Partial<typeof CSE_BUDGETS>> = [
    { matrices: 0, direct: 0, step: 0 }, // everything hashed, pair ids at first sight
    { step: 0 }, // hashed step table in the one-pass substitution
    { direct: 0 }, // starting-wire pairs hashed
    { matrices: 300 }, // some outputs with pair matrices, some without
  ];
  let compared = 0;
  for (let k = 0; k < 40; k++) {
    const nOut = rng.int(2, 16);
    const nIn = rng.int(2, 16);
    const W = randomMatrix(rng, nOut, nIn);
    const inputs: CmvmInput[] = Array.from({ length: nIn }, () => ({
      qint: rng.chance(0.7) ? { min: -128, max: 127, step: 1 } : { min: 0, max: 15.75, step: 0.25 },
      ...(rng.chance(0.2) ? { latency: rng.int(0, 3) } : {}),
    }));
    const opts: CmvmOptions = { dc: rng.pick([-1, -1, 2, 0]), method: rng.chance(0.7) ? 'wmc' : 'mc' };
    if (k % 5 === 0) opts.effort = 3; // (the wider look-ahead counts dissolved pairs through the same structures)
    const ref = solveCmvm(W, inputs, opts);
    for (const b of settings) {
      const r = withBudgets(b, () => solveCmvm(W, inputs, opts));
      const what = `${nOut}×${nIn} ${JSON.stringify(opts)} budgets ${JSON.stringify(b)}`;
      assert.equal(r.adders, ref.adders, `${what}: adders`);
      assert.deepEqual(r.program, ref.program, `${what}: program`);
      compared++;
    }
    const r = withBudgets(settings[0]!, () => solveCmvm(W, inputs, opts));
    for (let s = 0; s < 20; s++) {
      const x = inputs.map(({ qint: q }) => q.min + rng.int(0, (q.max - q.min) / q.step) * q.step);
      assert.deepEqual(evalCmvmProgram(r.program, x), matVec(W, x), `${nOut}×${nIn}: W·x`);
    }
  }
  assert.equal(compared, 160);
});
