/**
 * `hgq emulate <program.json> --input <file.csv|file.npy> [-o out]`: runs an IR program bit-exactly on a
 * data file. Output is in the input's format (CSV to stdout when no -o); CSV values are exact decimals.
 * CSV numbers are read as the nearest float64 (like any model input), then quantized by the input ops.
 */
import type { Command } from 'commander';
import { formatCsv, readCsv, writeCsv } from '../data/csv.ts';
import { readNpy, writeNpy, type NdArray } from '../data/npy.ts';
import { compileProgram } from '../ir/emulate.ts';
import { readProgram } from '../ir/serialize.ts';
import { assertOutputFile } from '../util/fs.ts';
import { UsageError } from './errors.ts';
import type { Preprocess } from '../app/preprocess.ts';

interface EmulateOptions {
  input: string;
  /** preprocess.json (or a model folder holding one) applied to the raw input first */
  preprocess?: string;
  output?: string;
  force?: boolean;
  json?: boolean;
}

function isNpy(path: string): boolean {
  return path.toLowerCase().endsWith('.npy');
}

/** `--preprocess`: the preprocess.json file, or the one in a model folder written by hgq train. */
async function readPreprocess(path: string): Promise<Preprocess> {
  const { preprocessOf } = await import('../app/preprocess.ts');
  try {
    const p = preprocessOf(path);
    if (!p) throw new Error(`${path}: no preprocess.json there (give the file, or the model folder written by hgq train)`);
    return p;
  } catch (e) {
    throw new UsageError(`--preprocess ${(e as Error).message}`);
  }
}

/** batch × nIn view of the data, or a UsageError saying what width was expected. */
function samplesOf(arr: NdArray, nIn: number, file: string, progName: string): number {
  const { shape } = arr;
  let perSample: number;
  let batch: number;
  if (shape.length === 0) {
    perSample = 1;
    batch = 1;
  } else if (shape.length === 1) {
    if (nIn === 1) return shape[0]!;
    perSample = shape[0]!;
    batch = 1;
  } else {
    batch = shape[0]!;
    perSample = shape.slice(1).reduce((a, b) => a * b, 1);
  }
  if (perSample !== nIn) {
    throw new UsageError(
      `${file}: program '${progName}' expects ${nIn} input value${nIn === 1 ? '' : 's'} per sample, but the file has ${perSample} per ${shape.length <= 1 ? 'array' : 'row'} (shape [${shape.join(', ')}])`,
    );
  }
  return batch;
}

export async function runEmulate(programPath: string, opts: EmulateOptions): Promise<void> {
  const t0 = performance.now();
  let prog;
  try {
    prog = readProgram(programPath);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const npy = isNpy(opts.input);
  // hgq cannot tell its CSV/NPY output from the user's data: an existing file is replaced only with --force
  if (opts.output !== undefined) assertOutputFile(opts.output, () => false, 'a file', opts.force, '--force');
  let data: NdArray;
  try {
    data = npy ? readNpy(opts.input) : readCsv(opts.input);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const em = compileProgram(prog);
  const pre = opts.preprocess === undefined ? null : await readPreprocess(opts.preprocess);
  if (pre) {
    // a CSV with a header gives the model's feature columns, by the names its preprocessing was fitted on
    const { selectFeatureColumns } = await import('../app/preprocess.ts');
    try {
      data = selectFeatureColumns(data, pre, opts.input);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const batch = samplesOf(data, em.nIn, opts.input, prog.name);
  if (pre) {
    const { applyPreprocess } = await import('../app/preprocess.ts');
    try {
      applyPreprocess(pre, data.data);
    } catch (e) {
      throw new UsageError(`--preprocess ${(e as Error).message}`);
    }
  }
  let y: Float64Array;
  try {
    y = em.run(data.data, batch);
  } catch (e) {
    if (e instanceof RangeError && /^input sample/.test(e.message)) throw new UsageError(`${opts.input}: ${e.message}`);
    throw e;
  }
  const result: NdArray = { data: y, shape: [batch, em.nOut] };
  if (opts.output !== undefined) {
    if (npy) writeNpy(opts.output, result);
    else writeCsv(opts.output, result);
  } else if (batch > 0) {
    process.stdout.write(formatCsv(result));
  }
  if (opts.json) {
    const ms = performance.now() - t0;
    process.stdout.write(
      JSON.stringify({
        program: prog.name,
        samples: batch,
        n_in: em.nIn,
        n_out: em.nOut,
        mode: em.mode,
        format: npy ? 'npy' : 'csv',
        output: opts.output ?? null,
        ms: Math.round(ms * 10) / 10,
      }) + '\n',
    );
  }
}

export function register(program: Command): void {
  program
    .command('emulate')
    .description('run an IR program bit-exactly on input data (CSV or NPY); writes outputs in the same format')
    .argument('<program>', 'the IR program (JSON, from hgq trace or hgq cmvm --emit)')
    .requiredOption('-i, --input <file>', 'input samples: .csv (one sample per line, optional header) or .npy (batch × inputs)')
    .option(
      '-o, --output <file>',
      "output file, in the input's format (default: CSV on stdout); an existing file is kept unless --force",
    )
    .option('--force', 'let -o replace an existing file')
    .option(
      '--preprocess <file>',
      'apply this preprocess.json (or the one in a model folder from hgq train) to the raw input first',
    )
    .option('--json', 'print one JSON summary object as the last line')
    .action(async (programPath: string, opts: EmulateOptions) => {
      await runEmulate(programPath, opts);
    });
}
