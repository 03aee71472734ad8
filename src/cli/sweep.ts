/**
 * `hgq sweep SWEEP.yaml --out DIR [--redis URL] [--workers N]` and `hgq sweep status DIR|--redis URL`
 * (docs/sweep.md).
 */
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { decimal } from './numbers.ts';

interface SweepOpts {
  out?: string;
  redis?: string;
  workers?: string;
  lockSeconds?: string;
  json?: boolean;
  report?: boolean;
}

function count(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = decimal(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} "${v}" must be a whole number from ${min} to ${max}`);
  return n;
}

/** A malformed --redis URL is a usage error, found before any connection. */
export async function checkRedisUrl(url: string): Promise<void> {
  const { parseRedisUrl, RedisUrlError } = await import('../app/sweep/queue.ts');
  try {
    parseRedisUrl(url);
  } catch (e) {
    if (e instanceof RedisUrlError) throw new UsageError(e.message);
    throw e;
  }
}

async function status(target: string | undefined, o: SweepOpts): Promise<void> {
  if (o.redis) {
    await checkRedisUrl(o.redis);
    const { connect, QUEUE_NAME } = await import('../app/sweep/queue.ts');
    const { Queue } = await import('bullmq');
    const conn = connect(o.redis);
    const q = new Queue(QUEUE_NAME, { connection: conn });
    try {
      const counts = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
      process.stdout.write(
        o.json
          ? JSON.stringify(counts) + '\n'
          : `queue ${QUEUE_NAME}: ${Object.entries(counts)
              .map(([k, v]) => `${v} ${k}`)
              .join(', ')}\n`,
      );
    } finally {
      await q.close();
      conn.disconnect();
    }
    return;
  }
  if (!target) throw new UsageError('hgq sweep status needs a sweep folder (hgq sweep status DIR) or --redis URL');
  const { readSweepStatus } = await import('../app/sweep/results.ts');
  let s;
  try {
    s = readSweepStatus(target);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (o.json)
    process.stdout.write(
      JSON.stringify({ id: s.id, total: s.total, complete: s.complete, failed: s.failed, status: s.status }) + '\n',
    );
  else {
    process.stdout.write(
      `sweep ${s.id} (${s.status}): ${s.complete}/${s.total} complete, ${s.failed} failed, ${s.total - s.complete - s.failed} pending\n`,
    );
    for (const r of s.results.filter((r) => r.status === 'failed'))
      process.stdout.write(`  ${r.trial} failed: ${r.error ?? '?'}\n`);
  }
}

export function register(program: Command): void {
  program
    .command('sweep')
    .description(
      'train every trial of a sweep file (axes over spec fields, seeds, a budget) locally or through a Redis queue, and merge their Pareto fronts',
    )
    .argument('<sweep-file|status>', 'the sweep file (YAML or JSON), or "status" to print a sweep\'s progress')
    .argument('[dir]', 'with status: the sweep folder')
    .option(
      '--out <DIR>',
      'the sweep folder: trials.json, the merged front.json, report.html (trials in DIR/trials unless the file names a store)',
    )
    .option(
      '--redis <URL>',
      'enqueue the trials on Redis (redis://[:PASSWORD@]HOST:PORT, rediss:// for TLS) for hgq worker processes anywhere',
    )
    .option('--workers <N>', 'local worker processes (default 1; with --redis 0: start hgq worker elsewhere)')
    .option(
      '--lock-seconds <S>',
      'with --redis and --workers: how long a dead worker holds its trial before another takes it over (default 30)',
    )
    .option('--no-report', 'do not write report.html at the end')
    .option('--json', 'print the outcome as one JSON line at the end')
    .addHelpText(
      'after',
      `
Examples:
  $ hgq sweep examples/sweeps/jets.yaml --out runs/sweep --workers 2
  $ hgq sweep examples/sweeps/jets.yaml --out runs/sweep --redis redis://queue-host:6379
  $ hgq worker --redis redis://queue-host:6379 --concurrency 2      # on each machine
  $ hgq sweep status runs/sweep`,
    )
    .action(async (file: string, dir: string | undefined, o: SweepOpts) => {
      if (file === 'status') return status(dir, o);
      if (dir !== undefined) throw new UsageError(`unexpected argument "${dir}" (give the sweep folder with --out)`);
      if (!o.out) throw new UsageError('--out DIR is required: the sweep folder');
      const workers = count(o.workers, '--workers', 0, 256);
      const lockSeconds = count(o.lockSeconds, '--lock-seconds', 2, 86400);
      if (!o.redis && workers === 0) throw new UsageError('--workers 0 runs nothing without --redis');
      const { readSweepFile, planSweep, SweepFileError } = await import('../app/sweep/plan.ts');
      const { OutputPathError } = await import('../util/fs.ts');
      const { RedisUrlError, parseRedisUrl } = await import('../app/sweep/queue.ts');
      const { runSweep } = await import('../app/sweep/sweep.ts');
      let plan;
      try {
        if (o.redis) parseRedisUrl(o.redis);
        const { sweep, base, dir: sweepDir } = readSweepFile(file);
        plan = planSweep(sweep, base, { out: o.out, dir: sweepDir });
        if (o.redis && plan.trials.some((t) => (t.spec['model'] as Record<string, unknown>)['module'] !== undefined))
          throw new UsageError(
            'model.module: a spec that builds its model in code cannot go through the queue (workers run no code from it); describe the model as a layer list, or run the sweep without --redis',
          );
      } catch (e) {
        if (e instanceof SweepFileError || e instanceof RedisUrlError) throw new UsageError(e.message);
        throw e;
      }
      let outcome;
      try {
        outcome = await runSweep(plan, {
          out: o.out,
          redis: o.redis,
          workers,
          lockSeconds,
          log: (s) => process.stderr.write(s + '\n'),
        });
      } catch (e) {
        if (e instanceof OutputPathError) throw new UsageError(e.message);
        throw e;
      }
      if (o.report !== false && outcome.front.checkpoints.length > 0) {
        const { writeReport } = await import('../app/report.ts');
        const { initBackend } = await import('../backend.ts');
        await initBackend();
        process.stderr.write(`report: ${await writeReport(o.out, { estimateLuts: false })}\n`);
      }
      const failed = outcome.results.filter((r) => r.status === 'failed').length;
      const summary = {
        sweep: plan.id,
        trials: plan.trials.length,
        ran: outcome.ran,
        complete: outcome.results.length - failed,
        failed,
        front: outcome.front.checkpoints.length,
        out: o.out,
      };
      process.stdout.write(
        o.json
          ? JSON.stringify(summary) + '\n'
          : `sweep ${plan.id}: ${summary.complete} trial(s) complete, ${failed} failed; front of ${summary.front} checkpoint(s) in ${o.out}/front.json\n`,
      );
    });
}
