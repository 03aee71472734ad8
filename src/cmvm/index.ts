/** CMVM optimizer: constant matrix × vector products as shift-adder graphs (docs/cmvm.md). No tfjs. */
export { solveCmvm, candidatePlan, hopLimits, programDepth, treeFinish, DEFAULT_EFFORT } from './solve.ts';
export { CmvmSizeError, SIZE_LIMITS } from './blocks.ts';
export type { CmvmInput, CmvmOptions, CmvmResult } from './solve.ts';
export type { Method } from './cse.ts';
export { csdDigits, csdWeight, forEachCsdDigit, toOddExp } from './csd.ts';
export { adderCost, ADDER_DELAY } from './cost.ts';
export { evalCmvmProgram, matVec } from './check.ts';
export { parseMatrixFile, parseMatrixCSV, parseMatrixJSON, MatrixFileError } from './matrix-file.ts';
export { prng, randomMatrix } from './random.ts';
