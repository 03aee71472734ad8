/**
 * CMVM quality against da4ml's published means for random N×N 8-bit matrices (entries 129..255, 8-bit signed
 * inputs): fixed seeds, fewer draws than the benchmark (bench/cmvm.ts runs 100 per size). The thresholds are
 * the reference numbers themselves, so a regression in the extraction or the decomposition fails here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng, randomMatrix } from '../src/cmvm/random.ts';
import { solveCmvm } from '../src/cmvm/solve.ts';

function meanOf(n: number, draws: number, seed: number, dc: number): { adders: number; depth: number } {
  const next = prng(seed);
  const inputs = Array.from({ length: n }, () => ({ qint: { min: -128, max: 127, step: 1 } }));
  let adders = 0;
  let depth = 0;
  for (let k = 0; k < draws; k++) {
    const W = randomMatrix(n, 8, next);
    for (const row of W) for (const v of row) assert.ok(v >= 129 && v <= 255);
    const r = solveCmvm(W, inputs, { dc });
    adders += r.adders;
    depth += r.depth;
  }
  return { adders: adders / draws, depth: depth / draws };
}

test('4×4: mean adders ≤ 29.2 and depth ≤ 6.0 unconstrained, adders ≤ 29.6 with dc=2 (100 draws)', () => {
  const u = meanOf(4, 100, 11, -1);
  assert.ok(u.adders <= 29.2, `mean adders ${u.adders}`);
  assert.ok(u.depth <= 6.0, `mean depth ${u.depth}`);
  const c = meanOf(4, 100, 11, 2);
  assert.ok(c.adders <= 29.6, `dc=2 mean adders ${c.adders}`);
});

test('8×8: mean adders ≤ 98.1 and depth ≤ 9.3 unconstrained, adders ≤ 101.8 with dc=2 (20 draws)', () => {
  const u = meanOf(8, 20, 12, -1);
  assert.ok(u.adders <= 98.1, `mean adders ${u.adders}`);
  assert.ok(u.depth <= 9.3, `mean depth ${u.depth}`);
  const c = meanOf(8, 20, 12, 2);
  assert.ok(c.adders <= 101.8, `dc=2 mean adders ${c.adders}`);
});

test('the plain greedy (no decomposition) is clearly worse on 8×8: the first stage earns its keep', () => {
  const next = prng(5);
  const inputs = Array.from({ length: 8 }, () => ({ qint: { min: -128, max: 127, step: 1 } }));
  let plain = 0;
  let full = 0;
  for (let k = 0; k < 5; k++) {
    const W = randomMatrix(8, 8, next);
    plain += solveCmvm(W, inputs, { decompose: false }).adders;
    full += solveCmvm(W, inputs).adders;
  }
  assert.ok(full < plain * 0.9, `with decomposition ${full / 5}, without ${plain / 5}`);
});
