/**
 * `hgq worker --redis URL [--concurrency K]`: runs sweep trials from the Redis queue until stopped (docs/sweep.md).
 * Also the hidden `hgq trial-process`: the persistent child that trains a sweep slot's trials (src/app/sweep/trial.ts).
 */
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { decimal } from './numbers.ts';
import { checkRedisUrl } from './sweep.ts';

/** A trial process that holds more tensor memory than this after a trial (a leak) retires; the next trial starts a fresh one. */
const RETIRE_TENSOR_BYTES = 256 * 2 ** 20;

/**
 * Trains the trials the parent sends over IPC, one at a time, each as `hgq ARGS` in this process (the same
 * exit codes and stderr as a `hgq train` process of its own), and answers each with its exit code and stderr
 * tail. Exits when the parent goes (IPC closed; the stdin watch and the per-epoch check cover a busy process).
 */
async function serveTrials(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send)
    throw new UsageError(
      'hgq trial-process is started by hgq sweep and hgq worker (it takes its trials from them over IPC), not by hand',
    );
  const { main } = await import('./main.ts');
  const { ORPHANED } = await import('../app/parent-watch.ts');
  const { stderrTail } = await import('../app/sweep/trial.ts');
  process.on('disconnect', () => process.exit(ORPHANED));
  let busy = Promise.resolve();
  process.on('message', (m: { train?: unknown }) => {
    busy = busy.then(async () => {
      const args = m.train;
      // the parent sends only `train` commands; anything else is a bug there, refused here
      if (!Array.isArray(args) || args[0] !== 'train' || !args.every((a) => typeof a === 'string')) {
        send({ code: 2, stderr: 'hgq trial-process: a request that is not an hgq train command, refused' });
        return;
      }
      let stderr = '';
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
        stderr = stderrTail(stderr + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()));
        return write(chunk, ...rest);
      }) as typeof process.stderr.write;
      try {
        const code = await main(args as string[]); // maps every error to its exit code, as a process of its own
        process.stderr.write = write;
        const tf = await import('@tensorflow/tfjs');
        send({ code, stderr, retire: tf.memory().numBytes > RETIRE_TENSOR_BYTES });
      } catch (e) {
        // not expected (main catches); answer and retire rather than leave the parent waiting
        process.stderr.write = write;
        send({ code: 1, stderr: `${stderr}hgq trial-process: ${(e as Error).message}\n`, retire: true });
      }
    });
  });
  await new Promise<never>(() => {}); // serves until the parent disconnects
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('run sweep trials from a Redis queue (started by hgq sweep --redis) until stopped with Ctrl-C / SIGTERM')
    .requiredOption('--redis <URL>', 'the queue: redis://[:PASSWORD@]HOST:PORT, or rediss:// for TLS')
    .option('--concurrency <K>', 'trials at once on this machine (default 1; each trains on its own threads)', '1')
    .option(
      '--lock-seconds <S>',
      'how long this worker may stay silent before its trial is handed to another worker (default 30)',
      '30',
    )
    .action(async (o: { redis: string; concurrency: string; lockSeconds: string }) => {
      await checkRedisUrl(o.redis);
      const { startWorker, redactUrl } = await import('../app/sweep/queue.ts');
      const concurrency = decimal(o.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
        throw new UsageError(`--concurrency "${o.concurrency}" must be a whole number from 1 to 64`);
      const lockSeconds = decimal(o.lockSeconds);
      if (!Number.isFinite(lockSeconds) || lockSeconds < 2)
        throw new UsageError(`--lock-seconds "${o.lockSeconds}" must be a number of seconds >= 2`);
      const log = (s: string) => process.stderr.write(`[worker ${process.pid}] ${s}\n`);
      const worker = startWorker(o.redis, { concurrency, lockSeconds, log });
      log(`serving ${redactUrl(o.redis)} with concurrency ${concurrency}`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          log('stopping: finishing nothing new, releasing the queue');
          void worker.close(true).then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
  program
    .command('trial-process', { hidden: true })
    .description('(internal) trains the sweep trials its parent process sends, one after another')
    .action(serveTrials);
}
