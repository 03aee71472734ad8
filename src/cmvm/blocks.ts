/**
 * Size handling for wide matrices. The extraction counts the pairs of every two terms of an output, so an
 * output with k CSD terms costs k²/2 pairs in time and memory: a 1×10000 matrix (≈ 40,000 terms in its one
 * row) would need 800 million. Such rows are cut into column blocks of at most ROW_TERMS terms per row,
 * each block solved on its own and the blocks' partial sums added per output (pairs spanning two blocks
 * are lost: on 1×10000 random 8-bit rows, blocks of 512 terms give 13% more adders than blocks of 2048, in
 * a tenth of the time). Only matrices whose pairs exceed maxPairs are cut (the 128×784 layer of the MNIST
 * demo has about 31 million, and is not). Problems with more than maxTerms terms in all are refused up front.
 */
import { csdWeight, toOddExp } from './csd.ts';

/** Limits (mutable so that tests can exercise the block path on small matrices). */
export const SIZE_LIMITS = {
  /** Above this many pairs (Σ over rows of terms²/2), the rows are cut into blocks... */
  maxPairs: 1 << 26,
  /** ...of at most this many CSD terms in one row. */
  rowTerms: 512,
  /** At most this many CSD terms in the whole matrix (about 2 GB of working memory at worst). */
  maxTerms: 1 << 21,
};

/** A matrix too large to solve on this machine (the message names the limit). */
export class CmvmSizeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'CmvmSizeError';
  }
}

/** CSD terms of each entry (row-major) and in all. */
function termCounts(W: number[][]): { perEntry: Int32Array; total: number } {
  const nOut = W.length;
  const nIn = W[0]?.length ?? 0;
  const perEntry = new Int32Array(nOut * nIn);
  let total = 0;
  for (let r = 0; r < nOut; r++)
    for (let c = 0; c < nIn; c++) {
      const v = W[r]![c]!;
      if (v === 0) continue;
      const k = csdWeight(toOddExp(v).odd);
      perEntry[r * nIn + c] = k;
      total += k;
    }
  return { perEntry, total };
}

/**
 * Column ranges [start, end): the whole matrix when its pairs fit SIZE_LIMITS.maxPairs, else ranges with
 * no row holding more than SIZE_LIMITS.rowTerms terms in one range. Throws CmvmSizeError beyond SIZE_LIMITS.maxTerms terms.
 */
export function columnBlocks(W: number[][], nIn: number): Array<[number, number]> {
  const { perEntry, total } = termCounts(W);
  if (total > SIZE_LIMITS.maxTerms)
    throw new CmvmSizeError(
      `solveCmvm: the ${W.length}×${nIn} matrix has ${total} signed digits in all, above the limit of ${SIZE_LIMITS.maxTerms} ` +
        '(memory and time grow with it): split the matrix or use fewer weight bits',
    );
  const nOut = W.length;
  const acc = new Int32Array(nOut);
  for (let r = 0; r < nOut; r++) for (let c = 0; c < nIn; c++) acc[r] += perEntry[r * nIn + c]!;
  let pairs = 0;
  for (let r = 0; r < nOut; r++) pairs += (acc[r]! * (acc[r]! - 1)) / 2;
  if (pairs <= SIZE_LIMITS.maxPairs) return [[0, nIn]];
  acc.fill(0);
  const blocks: Array<[number, number]> = [];
  let start = 0;
  for (let c = 0; c < nIn; c++) {
    let fits = true;
    for (let r = 0; r < nOut && fits; r++) fits = acc[r]! + perEntry[r * nIn + c]! <= SIZE_LIMITS.rowTerms;
    if (!fits && c > start) {
      blocks.push([start, c]);
      start = c;
      acc.fill(0);
    }
    for (let r = 0; r < nOut; r++) acc[r] += perEntry[r * nIn + c]!;
  }
  blocks.push([start, nIn]);
  return blocks;
}
