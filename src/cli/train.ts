/**
 * `hgq train`: train an HGQ model on your own data. Quick path from flags (an MLP on a table), or a spec
 * file (YAML/JSON: data, model, training, out) for everything else; `--resume` continues a killed run.
 * The runner is src/app/run.ts; the run folder is described in docs/run-folder.md.
 */
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { MAX_LR, MAX_THREADS } from '../app/spec-schema.ts';
import { MAX_BETA } from '../train/schedule.ts';
import { decimal, positiveInt, positiveIntList, positiveNumber } from './numbers.ts';
import { formatEbops, textTable } from './table.ts';

function integer(flag: string) {
  return (v: string): number => {
    const n = decimal(v);
    if (!Number.isSafeInteger(n)) throw new UsageError(`${flag} must be an integer, got "${v}"`);
    return n;
  };
}

function fraction(flag: string) {
  return (v: string): number => {
    const n = decimal(v);
    if (!(n > 0 && n < 1)) throw new UsageError(`${flag} must be a fraction between 0 and 1 (exclusive), got "${v}"`);
    return n;
  };
}

/** Runs `fn`, turning the app's bad-input errors (spec, data, output folder) into exit-2 usage errors. */
export async function asUsageErrors<T>(fn: () => Promise<T>): Promise<T> {
  const { SpecError } = await import('../app/spec.ts');
  const { OutputPathError } = await import('../util/fs.ts');
  try {
    return await fn();
  } catch (e) {
    if (e instanceof SpecError || e instanceof OutputPathError) throw new UsageError(e.message);
    throw e;
  }
}

interface TrainOpts {
  data?: string;
  test?: string;
  valSplit?: number;
  label?: string;
  features?: string;
  task?: string;
  hidden?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  beta?: string;
  betaStart?: number;
  betaEnd?: number;
  seed?: number;
  engine?: string;
  threads?: number;
  quantize?: string;
  preprocess?: string;
  out?: string;
  resume?: boolean;
  progress?: boolean;
  json?: boolean;
}

const QUICK_FLAGS = [
  'data',
  'test',
  'valSplit',
  'label',
  'features',
  'task',
  'hidden',
  'epochs',
  'batchSize',
  'lr',
  'beta',
  'betaStart',
  'betaEnd',
  'seed',
  'engine',
  'threads',
  'quantize',
  'preprocess',
] as const;
const kebab = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

async function specOf(specFile: string | undefined, o: TrainOpts) {
  const { specFromFlags, loadSpecFile } = await import('../app/spec.ts');
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  if (specFile !== undefined) {
    const extra = QUICK_FLAGS.filter((k) => o[k] !== undefined);
    if (extra.length)
      throw new UsageError(
        `${extra.map(kebab).join(', ')}: with a spec file, set these in the spec (only --out and --resume apply)`,
      );
    return loadSpecFile(specFile);
  }
  if (o.resume && o.data === undefined) {
    // `hgq train --resume RUN`: the run's own resolved spec
    if (o.out === undefined)
      throw new UsageError('--resume needs the run folder: hgq train --resume --out RUN (or give the spec file too)');
    const file = join(o.out, 'spec.json');
    if (!existsSync(file)) throw new UsageError(`${o.out}: no spec.json; not a run folder to resume`);
    return loadSpecFile(file);
  }
  if (o.data === undefined)
    throw new UsageError(
      'give a spec file (hgq train spec.yaml) or --data FILE with --label COLUMN --task classification|regression --hidden WIDTHS --out DIR',
    );
  if (o.label === undefined)
    throw new UsageError('--label COLUMN is required with --data (the label or target column, by header name or 0-based index)');
  if (o.task === undefined) throw new UsageError('--task classification|regression is required with --data');
  if (o.task !== 'classification' && o.task !== 'regression')
    throw new UsageError(`--task must be classification or regression, got "${o.task}"`);
  if (o.hidden === undefined)
    throw new UsageError('--hidden WIDTHS is required with --data (comma-separated hidden layer widths, e.g. 64,32)');
  const hidden = positiveIntList(o.hidden, '--hidden');
  if (o.valSplit !== undefined && !(o.valSplit > 0 && o.valSplit < 1))
    throw new UsageError(`--val-split must be a fraction between 0 and 1 (exclusive), got ${o.valSplit}`);
  if (o.engine !== undefined && o.engine !== 'wasm' && o.engine !== 'tfjs')
    throw new UsageError(`--engine must be wasm or tfjs, got "${o.engine}"`);
  if (o.quantize !== undefined && o.quantize !== 'true' && o.quantize !== 'false')
    throw new UsageError(`--quantize must be true or false, got "${o.quantize}"`);
  if (o.preprocess !== undefined && !['standardize', 'minmax', 'none'].includes(o.preprocess))
    throw new UsageError(`--preprocess must be standardize, minmax or none, got "${o.preprocess}"`);
  if (o.out === undefined) throw new UsageError('--out DIR is required (the run folder: checkpoints, front.json, history)');
  return specFromFlags({
    data: o.data,
    label: o.label,
    task: o.task,
    hidden,
    // specFromFlags leaves out what is undefined
    test: o.test,
    valSplit: o.valSplit,
    features: o.features?.split(',').map((s) => s.trim()),
    epochs: o.epochs,
    batchSize: o.batchSize,
    lr: o.lr,
    beta: o.beta,
    betaStart: o.betaStart,
    betaEnd: o.betaEnd,
    seed: o.seed,
    engine: o.engine as 'wasm' | 'tfjs' | undefined,
    threads: o.threads,
    quantize: o.quantize === undefined ? undefined : o.quantize === 'true',
    preprocess: o.preprocess as 'standardize' | undefined,
    out: o.out,
  });
}

export function register(program: Command): void {
  program
    .command('train')
    .description(
      'train an HGQ model on your data (an MLP from flags, or anything from a spec file); keeps the Pareto front of (quality, EBOPs) as calibrated checkpoints',
    )
    .argument('[spec]', 'spec file (.yaml or .json): data, model, training, out (see docs/train.md)')
    .option(
      '--data <file>',
      'training table for the quick path: CSV with a header line, one sample per row (other formats: a spec file)',
    )
    .option('--test <file>', 'test table (default: 20% of the --data rows, drawn with --seed)')
    .option('--val-split <x>', 'fraction of the training rows held out for validation (default 0.2)', fraction('--val-split'))
    .option('--label <column>', 'label (classification) or target (regression) column: header name or 0-based index')
    .option('--features <columns>', 'feature columns, comma-separated (default: every other column)')
    .option('--task <task>', 'classification or regression')
    .option('--hidden <widths>', 'hidden layer widths, comma-separated (e.g. 64,32); the output layer is added')
    .option('--epochs <n>', 'training epochs (default 30)', positiveInt('--epochs'))
    .option('--batch-size <n>', 'batch size (default 256)', positiveInt('--batch-size'))
    .option('--lr <x>', 'Adam learning rate (default 3e-3)', positiveNumber('--lr', MAX_LR))
    .option(
      '--beta <schedule>',
      'β key points epoch:beta[:constant|linear|log],… (default: --beta-start for the first 10% of epochs, then a log rise to --beta-end)',
    )
    .option('--beta-start <x>', 'first β of the default schedule (default 1e-6)', positiveNumber('--beta-start', MAX_BETA))
    .option('--beta-end <x>', 'final β of the default schedule (default 1e-3)', positiveNumber('--beta-end', MAX_BETA))
    .option('--seed <n>', 'seed of the data splits and the batch shuffles (default 1)', integer('--seed'))
    .option('--engine <name>', 'wasm (default; falls back to tfjs with a notice when a layer is unsupported) or tfjs')
    .option('--threads <n>', 'wasm engine threads (default: all cores)', positiveInt('--threads', MAX_THREADS))
    .option('--quantize <bool>', 'false: train the same architecture in float (the accuracy reference)')
    .option('--preprocess <method>', 'standardize (default), minmax or none; fitted on the training split')
    .option('--out <dir>', "the run folder (checkpoints/, front.json, history.jsonl, spec.json); overrides the spec's out")
    .option('--resume', 'continue the killed run in --out from its last finished epoch (same spec)')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the front as one JSON object on the last line')
    .addHelpText(
      'after',
      `
Examples:
  $ hgq train --data jets.csv --label class --task classification --hidden 64,32,32 --epochs 40 --out runs/jets
  $ hgq train examples/jets-mlp.yaml --out runs/jets
  $ hgq train --resume --out runs/jets        # after a kill

Each run folder holds spec.json, preprocess.json, history.jsonl, checkpoints/epoch-NNNN/ (model folders for
hgq trace/convert, calibrated) and front.json (per checkpoint: path, exact EBOPs, val and test metrics).`,
    )
    .action(async (specFile: string | undefined, o: TrainOpts) => {
      await asUsageErrors(async () => {
        const spec = await specOf(specFile, o);
        const { initBackend } = await import('../backend.ts');
        await initBackend();
        const { runTraining } = await import('../app/run.ts');
        const r = await runTraining(spec, {
          ...(o.out !== undefined ? { out: o.out } : {}),
          resume: o.resume ?? false,
          progress: o.progress === false ? null : process.stderr,
        });
        printFront(r);
        if (o.json)
          process.stdout.write(
            JSON.stringify({ dir: r.dir, epochs: r.epochs, seconds: r.seconds, engine: r.engine, front: r.front }) + '\n',
          );
      });
    });
}

function printFront(r: Awaited<ReturnType<typeof import('../app/run.ts').runTraining>>): void {
  const acc = r.front.metric === 'accuracy';
  const cell = (m: Record<string, number>) => (acc ? (100 * m['accuracy']!).toFixed(2) : m['mse']!.toPrecision(4));
  const head = ['epoch', acc ? 'val acc %' : 'val mse', acc ? 'test acc %' : 'test mse', 'EBOPs (exact)', 'checkpoint'];
  const rows = r.front.checkpoints.map((c) => [String(c.epoch), cell(c.val), cell(c.test), formatEbops(c.ebops), c.path]);
  process.stdout.write(
    `data: train ${r.data.train} (${r.data.origin.train}), val ${r.data.val} (${r.data.origin.val}), test ${r.data.test} (${r.data.origin.test})\n`,
  );
  process.stdout.write(
    `Pareto front (${r.front.checkpoints.length} checkpoints, ${r.epochs} epochs, ${r.seconds.toFixed(0)} s, training ${r.trainSeconds.toFixed(0)} s on the ${r.engine === 'wasm' ? 'wasm engine' : 'tfjs backend'}):\n`,
  );
  process.stdout.write(textTable(head, rows));
  process.stdout.write(`run folder: ${r.dir} (front.json lists the checkpoints)\n`);
}
