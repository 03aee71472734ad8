/** `hgq worker --redis URL [--concurrency K]`: runs sweep trials from the Redis queue until stopped (docs/sweep.md). */
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { checkRedisUrl } from './sweep.ts';

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
      const concurrency = Number(o.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
        throw new UsageError(`--concurrency "${o.concurrency}" must be a whole number from 1 to 64`);
      const lockSeconds = Number(o.lockSeconds);
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
}
