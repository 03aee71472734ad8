/**
 * Row-and-column decomposition (solveRowsOverColumns, docs/cmvm.md §1): the difference rows of a row
 * decomposition built over a column decomposition of their own matrix.
 * - every such candidate computes W·x exactly (integer, signed, sparse and fractional kernels, every pair of
 *   path limits, both pair scores);
 * - it earns its place as another candidate: on random 8-bit 32×32 matrices it beats the row decompositions'
 *   best run (look-ahead, seed 0, path limits 8 and 16, both scores) on some, so the best of both has fewer
 *   adders than the rows' alone;
 * - the default search (which tries it on small matrices) stays exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prepareProblem, solveRows, solveRowsOverColumns, type Candidate } from '../src/cmvm/candidates.ts';
import { evalCmvmProgram, matVec } from '../src/cmvm/check.ts';
import { decomposeRows } from '../src/cmvm/decompose.ts';
import { solveCmvm, type CmvmInput } from '../src/cmvm/solve.ts';
import { makeRng, type Rng } from './util/rng.ts';

const S8: CmvmInput = { qint: { min: -128, max: 127, step: 1 } };

function transpose(m: number[][]): number[][] {
  return m[0]!.map((_, c) => m.map((row) => row[c]!));
}

/** The candidate's outputs for input x, evaluated on its graph. */
function evalCandidate(c: Candidate, x: number[]): number[] {
  const v: number[] = [];
  for (let w = 0; w < c.g.size; w++) {
    const op = c.g.ops[w];
    v.push(op ? v[op.a]! + (op.sub ? -1 : 1) * v[op.b]! * 2 ** op.shift : x[w]!);
  }
  return c.outs.map((t) => (t.wire < 0 ? 0 : t.sign * v[t.wire]! * 2 ** t.pos));
}

function kernel(rng: Rng, kind: string, nOut: number, nIn: number): number[][] {
  return Array.from({ length: nOut }, () =>
    Array.from({ length: nIn }, () => {
      if (kind === '8bit') return rng.int(129, 255);
      if (kind === 'signed') return rng.int(-127, 127);
      if (kind === 'sparse') return rng.chance(0.4) ? rng.int(-15, 15) : 0;
      return rng.int(-31, 31) / 16; // fractional
    }),
  );
}

test('row-and-column decomposition: exact for every path-limit pair and both scores', () => {
  const rng = makeRng(303);
  for (const kind of ['8bit', 'signed', 'sparse', 'fractional']) {
    const nOut = rng.int(3, 10);
    const nIn = rng.int(3, 10);
    const W = kernel(rng, kind, nOut, nIn);
    const p = prepareProblem(
      W,
      W[0]!.map(() => S8),
      -1,
      'auto',
    );
    for (const rowHops of [2, 4, nOut]) {
      const rowTree = decomposeRows(p.scaled!.rows, rowHops);
      if (rowTree.diffs.length < 2) continue;
      for (const colHops of [2, 4, nIn]) {
        const columnTree = decomposeRows(transpose(rowTree.diffs), colHops);
        for (const method of ['wmc', 'mc'] as const) {
          const c = solveRowsOverColumns(p, rowTree, columnTree, method, { seed: 1, lookahead: 'ties' });
          assert.ok(c, `${kind}: no candidate`);
          for (let s = 0; s < 6; s++) {
            const x = W[0]!.map(() => rng.int(-128, 127));
            assert.deepEqual(evalCandidate(c, x), matVec(W, x), `${kind} ${rowHops}/${colHops} ${method}`);
          }
        }
      }
    }
  }
});

test('row-and-column decomposition: the best of rows and both has fewer adders than rows alone on random 32×32 (sum over 3)', () => {
  const rng = makeRng(32);
  let rows = 0;
  let both = 0;
  for (let k = 0; k < 3; k++) {
    const W = kernel(rng, '8bit', 32, 32);
    const p = prepareProblem(
      W,
      W[0]!.map(() => S8),
      -1,
      'auto',
    );
    let bestRows = Infinity;
    let bestHybrid = Infinity;
    for (const hops of [8, 16]) {
      const tree = decomposeRows(p.scaled!.rows, hops);
      const run = { lookahead: 'ties' } as const;
      bestRows = Math.min(bestRows, solveRows(p, tree, 'wmc', run)!.adders, solveRows(p, tree, 'mc', run)!.adders);
      for (const colHops of [2, 4])
        bestHybrid = Math.min(
          bestHybrid,
          solveRowsOverColumns(p, tree, decomposeRows(transpose(tree.diffs), colHops), 'mc', run)!.adders,
        );
    }
    rows += bestRows;
    both += Math.min(bestRows, bestHybrid);
  }
  assert.ok(both < rows, `best of both ${both}, rows alone ${rows}`);
});

test('the default search with the row-and-column candidates stays exact (16×16, 24×24)', () => {
  const rng = makeRng(8);
  for (const n of [16, 24]) {
    const W = kernel(rng, '8bit', n, n);
    const r = solveCmvm(
      W,
      W[0]!.map(() => S8),
      { threads: 1 },
    );
    for (let s = 0; s < 8; s++) {
      const x = W[0]!.map(() => rng.int(-128, 127));
      assert.deepEqual(evalCmvmProgram(r.program, x), matVec(W, x), `${n}×${n}`);
    }
  }
});
