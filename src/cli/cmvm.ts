/**
 * `hgq cmvm`: optimize constant matrix × vector products into adder graphs and report adders, cost (adder
 * bits), depth (adder levels) and time, per matrix and on average (docs/cmvm.md, docs/cli.md).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { qiFromKif } from '../fixed/interval.ts';
import { doubleToDyadic, kifWidth } from '../fixed/quantize.ts';
import { parseType, TYPE_FORMS } from '../fixed/typename.ts';
import type { Kif } from '../fixed/types.ts';
import { rowWiderThan } from '../cmvm/check.ts';
import { FLOAT_PATH_MAX_WIDTH, floatPathExact } from '../ir/emulate.ts';
import { UsageError, CliError } from './errors.ts';
import { parseIntOption } from './numbers.ts';

interface Opts {
  matrix?: string;
  random?: string;
  bits?: string;
  seed?: string;
  count?: string;
  dc: string;
  method: string;
  effort: string;
  inputType: string;
  json?: boolean;
  emit?: string;
  verify?: boolean;
}

/**
 * cmvm keeps every wire of the adder graph within the emulator's exact float64 path: the IR's intervals and
 * the --verify reference are exact there. Input types are limited to that width, and to exponents that keep
 * the products' steps and ranges well inside the double range.
 */
const MAX_INPUT_EXPONENT = 850;

function parseInputType(name: string): Kif {
  let kif: Kif;
  try {
    kif = parseType(name).kif;
  } catch (e) {
    throw new UsageError(`--input-type: ${(e as Error).message}`);
  }
  const W = kifWidth(kif);
  if (W > FLOAT_PATH_MAX_WIDTH)
    throw new UsageError(
      `--input-type ${name} is ${W} bits wide; cmvm takes inputs up to ${FLOAT_PATH_MAX_WIDTH} bits (every adder-graph wire must fit ${FLOAT_PATH_MAX_WIDTH} bits, the exact float64 path)`,
    );
  if (W > 0 && (Math.abs(kif.f) > MAX_INPUT_EXPONENT || Math.abs(kif.i) > MAX_INPUT_EXPONENT))
    throw new UsageError(
      `--input-type ${name}: integer and fraction bits must be within ±${MAX_INPUT_EXPONENT} (i=${kif.i}, f=${kif.f})`,
    );
  return kif;
}

/** Refuse (before optimizing) a matrix whose outputs alone would be wider than the float path allows. */
function checkOutputWidths(W: number[][], kif: Kif, name: string, k: number): void {
  const wide = rowWiderThan(W, kif, FLOAT_PATH_MAX_WIDTH);
  if (wide)
    throw new UsageError(
      `matrix ${k}, row ${wide.row + 1}: with --input-type ${name} its outputs need ${wide.bits} bits, more than the ${FLOAT_PATH_MAX_WIDTH} bits cmvm keeps every wire within (the exact float64 path); use a narrower input type or smaller coefficients`,
    );
}

export function register(program: Command): void {
  program
    .command('cmvm')
    .description(
      'optimize y = W·x for constant matrices W into shift-adder graphs; report adders, cost (adder bits), depth and ms',
    )
    .option('--matrix <file>', 'matrix file: JSON array of rows, or CSV with one row of W per line (row r = output r)')
    .option('--random <N>', 'optimize random N×N matrices instead (entries uniform in [2^(B-1)+1, 2^B-1])')
    .option('--bits <B>', 'entry bits for --random (default 8: entries 129..255)')
    .option('--seed <S>', 'PRNG seed for --random (default 1)')
    .option('--count <C>', 'number of random matrices (default 1)')
    .option('--dc <D>', 'delay constraint: extra adder levels allowed over the plain balanced tree; -1 = unconstrained', '-1')
    .option('--method <M>', 'pair score: wmc (occurrences × overlapping bits) or mc (occurrences)', 'wmc')
    .option('--effort <E>', 'search effort: 0 fast, 1 baseline, 2 default (restarts, column decompositions), 3 thorough', '2')
    .option(
      '--input-type <TYPE>',
      `type of every input element, at most ${FLOAT_PATH_MAX_WIDTH} bits wide (every wire of the graph must fit ${FLOAT_PATH_MAX_WIDTH} bits): ${TYPE_FORMS}`,
      'fixed<8,8>',
    )
    .option('--emit <program.json>', 'write the adder graph of the (single) matrix as an IR program (inputs x, outputs W·x)')
    .option('--verify', 'check every result with the IR emulator against W·x on corner and random inputs (exit 1 on a mismatch)')
    .option('--json', 'print one JSON object {"mean": {...}, "matrices": [...]} as the last line')
    .addHelpText(
      'after',
      `
Examples:
  $ hgq cmvm --random 16 --bits 8 --seed 1 --count 10
  $ hgq cmvm --matrix kernel.csv --input-type 'ufixed<6,0>' --dc 2 --emit kernel.json`,
    )
    .action(async (opts: Opts) => {
      const { solveCmvm } = await import('../cmvm/solve.ts');
      const { parseMatrixFile, MatrixFileError } = await import('../cmvm/matrix-file.ts');
      const { prng, randomMatrix } = await import('../cmvm/random.ts');
      const { CmvmSizeError } = await import('../cmvm/blocks.ts');

      if ((opts.matrix === undefined) === (opts.random === undefined))
        throw new UsageError('give exactly one of --matrix <file> or --random <N>');
      if (opts.matrix !== undefined && (opts.bits ?? opts.seed ?? opts.count) !== undefined)
        throw new UsageError('--bits, --seed and --count go with --random, not --matrix');
      const dc = parseIntOption(opts.dc, '--dc', -1, 1000);
      const effort = parseIntOption(opts.effort, '--effort', 0, 3);
      const method = opts.method.trim().toLowerCase();
      if (method !== 'wmc' && method !== 'mc') throw new UsageError(`--method must be wmc or mc, got "${opts.method}"`);
      const kif = parseInputType(opts.inputType);
      const qint = qiFromKif(kif);

      const matrices: number[][][] = [];
      if (opts.matrix !== undefined) {
        let text: string;
        try {
          text = readFileSync(opts.matrix, 'utf8');
        } catch (e) {
          throw new UsageError(
            `--matrix: cannot read ${opts.matrix} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
          );
        }
        try {
          matrices.push(parseMatrixFile(text, opts.matrix));
        } catch (e) {
          if (e instanceof MatrixFileError) throw new UsageError(e.message);
          throw e;
        }
      } else {
        const n = parseIntOption(opts.random!, '--random', 1, 4096);
        const bits = parseIntOption(opts.bits ?? '8', '--bits', 2, 30);
        const seed = parseIntOption(opts.seed ?? '1', '--seed', 0, 2 ** 32 - 1);
        const count = parseIntOption(opts.count ?? '1', '--count', 1, 1000000);
        const next = prng(seed);
        for (let k = 0; k < count; k++) matrices.push(randomMatrix(n, bits, next));
      }
      if (opts.emit !== undefined && matrices.length !== 1)
        throw new UsageError('--emit writes one program: use it with --matrix or --count 1');
      for (const [k, W] of matrices.entries()) checkOutputWidths(W, kif, opts.inputType, k);
      if (opts.emit !== undefined) {
        const { isProgramFile } = await import('../ir/serialize.ts');
        const { assertOutputFile, OutputPathError } = await import('../util/fs.ts');
        try {
          assertOutputFile(opts.emit, isProgramFile, 'an IR program');
        } catch (e) {
          if (e instanceof OutputPathError) throw new UsageError(`--emit ${e.message}`);
          throw e;
        }
      }

      const rows: { adders: number; cost: number; depth: number; ms: number }[] = [];
      for (const [k, W] of matrices.entries()) {
        const inputs = W[0]!.map(() => ({ qint }));
        let r;
        try {
          r = solveCmvm(W, inputs, { dc, method, effort });
        } catch (e) {
          if (e instanceof CmvmSizeError) throw new UsageError(e.message);
          throw e;
        }
        // inner wires can be wider than the outputs (a signed-digit term can exceed the sum)
        if (!floatPathExact(r.program))
          throw new UsageError(
            `matrix ${k}: with --input-type ${opts.inputType} the adder graph has a wire wider than ${FLOAT_PATH_MAX_WIDTH} bits (the exact float64 path cmvm keeps to); use a narrower input type`,
          );
        const row = { adders: r.adders, cost: r.cost, depth: r.depth, ms: Math.round(r.ms * 1000) / 1000 };
        rows.push(row);
        process.stdout.write(
          `matrix ${k}: ${W.length}×${W[0]!.length}  adders ${row.adders}  cost ${row.cost}  depth ${row.depth}  ms ${row.ms.toFixed(2)}\n`,
        );
        if (opts.verify) verify(W, r.program, qint, k, await import('../ir/emulate.ts'));
        if (opts.emit !== undefined) {
          const { writeProgram } = await import('../ir/serialize.ts');
          writeProgram(opts.emit, r.program);
        }
      }
      const mean = (key: keyof (typeof rows)[number]): number =>
        Math.round((rows.reduce((s, r) => s + r[key], 0) / rows.length) * 1000) / 1000;
      const m = { adders: mean('adders'), cost: mean('cost'), depth: mean('depth'), ms: mean('ms') };
      process.stdout.write(
        `mean over ${rows.length}: adders ${m.adders}  cost ${m.cost}  depth ${m.depth}  ms ${m.ms.toFixed(2)}\n`,
      );
      if (opts.emit !== undefined) process.stdout.write(`wrote ${opts.emit}\n`);
      if (opts.json) process.stdout.write(JSON.stringify({ mean: m, matrices: rows }) + '\n');
    });
}

/** Emulator output vs exact W·x on all-min, all-max, one-hot corners and random inputs. */
function verify(
  W: number[][],
  program: import('../ir/types.ts').Program,
  q: { min: number; max: number; step: number },
  k: number,
  emu: typeof import('../ir/emulate.ts'),
): void {
  const nIn = W[0]!.length;
  const xs: number[][] = [Array(nIn).fill(q.min), Array(nIn).fill(q.max)];
  for (let c = 0; c < nIn; c++) xs.push(Array.from({ length: nIn }, (_, j) => (j === c ? q.max : q.min)));
  let s = 12345 + k;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const levels = (q.max - q.min) / q.step + 1; // up to 2^52: one 32-bit draw would leave the low bits 0
  const level = (): number => (Math.floor(rnd() * 2 ** 21) * 2 ** 32 + Math.floor(rnd() * 2 ** 32)) % levels;
  for (let t = 0; t < 64; t++) xs.push(Array.from({ length: nIn }, () => q.min + level() * q.step));
  const flat = new Float64Array(xs.length * nIn);
  xs.forEach((x, i) => flat.set(x, i * nIn));
  const y = emu.compileProgram(program).run(flat, xs.length);
  // exact reference: every product and the sum as BigInt at a common exponent
  const dy = (v: number): [bigint, number] => {
    const { m, e } = doubleToDyadic(v);
    return [m, e];
  };
  const at = ([m, e]: [bigint, number], E: number): bigint => m << BigInt(e - E);
  xs.forEach((x, i) => {
    W.forEach((row, o) => {
      const terms = row.map((w, c) => {
        const [mw, ew] = dy(w);
        const [mx, ex] = dy(x[c]!);
        return [mw * mx, ew + ex] as [bigint, number];
      });
      const got = dy(y[i * W.length + o]!);
      const E = Math.min(got[1], ...terms.map((t) => t[1]));
      const ref = terms.reduce((acc, t) => acc + at(t, E), 0n);
      if (at(got, E) !== ref)
        throw new CliError(
          `verification failed for matrix ${k}, output ${o}, input ${JSON.stringify(x)}: graph gives ${y[i * W.length + o]}, W·x differs`,
        );
    });
  });
}
