/**
 * `hgq demo`: the main job — train an HGQ MLP on MNIST under a rising β, keep the Pareto front, calibrate
 * the kept checkpoints and print (test accuracy, exact EBOPs) per checkpoint.
 */
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { MAX_LR, MAX_THREADS } from '../app/spec-schema.ts';
import { MAX_BETA } from '../train/schedule.ts';
import { positiveInt, positiveIntList, positiveNumber } from './numbers.ts';
import { formatEbops, textTable } from './table.ts';

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'train an HGQ MLP on MNIST with a rising β, keep the Pareto front of (accuracy, EBOPs), calibrate and report each checkpoint',
    )
    .option('--quick', 'small and fast (under 2 minutes, for CI)')
    .option('--out <dir>', "keep the front's checkpoints (one model directory each) and front.json here")
    .option('--epochs <n>', 'training epochs', positiveInt('--epochs'))
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'))
    .option('--lr <x>', 'Adam learning rate (default 2e-3; --quick: 3e-3)', positiveNumber('--lr', MAX_LR))
    .option('--hidden <list>', 'hidden layer widths, comma-separated (e.g. 64,32)')
    .option(
      '--beta <schedule>',
      'β key points epoch:beta[:constant|linear|log],… (default: 1e-7 for the first 10% of epochs, then a log rise to --beta-end at the last epoch)',
    )
    .option(
      '--beta-end <x>',
      'final β of the default schedule (default 6e-5; --quick: 2e-3)',
      positiveNumber('--beta-end', MAX_BETA),
    )
    .option('--backend <name>', 'wasm (default), cpu or tensorflow')
    .option(
      '--engine <name>',
      'training engine: wasm (default; falls back to tfjs with a notice when a layer is unsupported) or tfjs (model.fit)',
    )
    .option('--threads <n>', 'wasm engine threads (default: all cores)', positiveInt('--threads', MAX_THREADS))
    .option('--resume', 'continue the killed run in --out from its last finished epoch')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the result as one JSON object on the last line')
    .action(async (opts: Record<string, unknown>) => {
      const { parseSchedule } = await import('../train/schedule.ts');
      let hidden: number[] | undefined;
      if (opts['hidden'] !== undefined) {
        hidden = positiveIntList(String(opts['hidden']), '--hidden');
      }
      let schedule: import('../train/schedule.ts').KeyPoint[] | undefined;
      if (opts['beta'] !== undefined) {
        try {
          schedule = parseSchedule(String(opts['beta']));
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
      }
      const backendName = opts['backend'] as string | undefined;
      if (backendName !== undefined && !['wasm', 'cpu', 'tensorflow'].includes(backendName))
        throw new UsageError(`--backend must be wasm, cpu or tensorflow, got "${backendName}"`);
      const engineName = opts['engine'] as string | undefined;
      if (engineName !== undefined && engineName !== 'wasm' && engineName !== 'tfjs')
        throw new UsageError(`--engine must be wasm or tfjs, got "${engineName}"`);
      if (opts['resume'] && opts['out'] === undefined) throw new UsageError('--resume needs --out DIR (the run to continue)');
      const { initBackend } = await import('../backend.ts');
      const backend = await initBackend(backendName as 'wasm' | undefined);
      const { runDemo } = await import('../app/demo.ts');
      const { asUsageErrors } = await import('./train.ts');
      const r = await asUsageErrors(() =>
        runDemo({
          quick: Boolean(opts['quick']),
          out: opts['out'] as string | undefined,
          epochs: opts['epochs'] as number | undefined,
          batchSize: opts['batchSize'] as number | undefined,
          learningRate: opts['lr'] as number | undefined,
          hidden,
          schedule,
          betaEnd: opts['betaEnd'] as number | undefined,
          progress: opts['progress'] === false ? null : process.stderr,
          engine: engineName as 'wasm' | 'tfjs' | undefined,
          threads: opts['threads'] as number | undefined,
          resume: Boolean(opts['resume']),
        }),
      );
      const rows = r.checkpoints.map((c) => [
        String(c.epoch),
        (100 * c.val_accuracy).toFixed(2),
        (100 * c.test_accuracy).toFixed(2),
        formatEbops(c.ebops),
        c.path,
      ]);
      const head = ['epoch', 'val acc %', 'test acc %', 'EBOPs (exact)', 'checkpoint'];
      process.stdout.write(
        `Pareto front (${r.checkpoints.length} checkpoints, ${r.epochs} epochs, ${r.seconds.toFixed(0)} s, training ${r.trainSeconds.toFixed(0)} s on the ${r.engine === 'wasm' ? 'wasm engine' : `tfjs ${backend} backend`}):\n`,
      );
      process.stdout.write(textTable(head, rows));
      if (r.out) process.stdout.write(`front.json and checkpoints in ${r.out}\n`);
      if (opts['json']) process.stdout.write(JSON.stringify({ backend, ...r }) + '\n');
    });
}
