/**
 * A sweep's output folder (docs/sweep.md): sweep.json (the plan), trials.json (each trial's status, metrics,
 * EBOPs), front.json (the Pareto front over every trial's checkpoints, each marked with its trial), all
 * written atomically under an ownership marker of kind "sweep".
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { offer } from '../../train/pareto.ts';
import { assertCreatableDir, OutputPathError, readMarker, writeFileAtomic, writeMarker } from '../../util/fs.ts';
import { LOWER_IS_BETTER } from '../report-data.ts';
import type { SweepPlan } from './plan.ts';
import type { FrontCheckpoint, TrialResult } from './trial.ts';

export interface SweepFront {
  format: 'hgq-front';
  version: 1;
  task: string;
  metric: string;
  /** the front's checkpoints over all trials, by EBOPs ascending; paths absolute (the store may be elsewhere) */
  checkpoints: (FrontCheckpoint & { trial: string })[];
}

/** The Pareto front over all complete trials, on (validation metric, EBOPs): test scores are never used to select. */
export function mergeFronts(results: TrialResult[]): SweepFront {
  const done = results.filter((r) => r.status === 'complete');
  const metric = done.find((r) => r.metric)?.metric ?? 'accuracy';
  const sign = LOWER_IS_BETTER.has(metric) ? -1 : 1;
  let front: { accuracy: number; ebops: number; entry: FrontCheckpoint & { trial: string } }[] = [];
  // trials in id order so ties between trials resolve the same way whatever order they finished in
  for (const r of [...done].sort((a, b) => (a.trial < b.trial ? -1 : 1))) {
    for (const c of r.checkpoints ?? []) {
      const q = c.val?.[metric] ?? c.test?.[metric];
      if (q === undefined) continue;
      const point = {
        accuracy: sign * q,
        ebops: c.ebops,
        entry: { ...c, path: c.path.startsWith('/') ? c.path : join(r.dir, c.path), trial: r.trial },
      };
      const { accepted, evicted } = offer(front, point);
      if (accepted) front = [...front.filter((p) => !evicted.includes(p)), point];
    }
  }
  front.sort((a, b) => a.ebops - b.ebops || a.entry.trial.localeCompare(b.entry.trial));
  return {
    format: 'hgq-front',
    version: 1,
    task: done.find((r) => r.task)?.task ?? 'classification',
    metric,
    checkpoints: front.map((p) => p.entry),
  };
}

/**
 * Checks DIR can hold this sweep and creates it: absent, empty, or an earlier hgq sweep folder, which the sweep
 * continues. A sweep never deletes anything: it only rewrites its own files (sweep.json, trials.json,
 * front.json, report.html) and adds trial folders.
 */
export function openSweepDir(dir: string): void {
  assertCreatableDir(dir);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    const marker = readMarker(dir);
    if (!marker) throw new OutputPathError(`${dir} exists and was not written by hgq sweep; choose a new or empty folder`);
    if (marker.kind !== 'sweep')
      throw new OutputPathError(`${dir} holds an hgq ${marker.kind}, not a sweep; choose another folder`);
  }
  mkdirSync(dir, { recursive: true });
}

export function writeSweepFiles(
  dir: string,
  plan: SweepPlan,
  results: TrialResult[],
  status: 'running' | 'complete',
): SweepFront {
  const front = mergeFronts(results);
  writeFileAtomic(
    join(dir, 'sweep.json'),
    JSON.stringify(
      { id: plan.id, store: plan.store, trials: plan.trials.map(({ id, overrides, seed }) => ({ id, overrides, seed })) },
      null,
      1,
    ) + '\n',
  );
  writeFileAtomic(join(dir, 'trials.json'), JSON.stringify(results, null, 1) + '\n');
  writeFileAtomic(join(dir, 'front.json'), JSON.stringify(front, null, 1) + '\n');
  writeMarker(dir, 'sweep', { status, sweep_id: plan.id });
  return front;
}

/** Progress of a sweep folder, for `hgq sweep status DIR`. */
export function readSweepStatus(dir: string): {
  id: string;
  total: number;
  complete: number;
  failed: number;
  status: string;
  results: TrialResult[];
} {
  const marker = readMarker(dir);
  if (!marker || marker.kind !== 'sweep' || !existsSync(join(dir, 'sweep.json')))
    throw new Error(`${dir} is not a sweep folder (no sweep.json written by hgq sweep)`);
  const plan = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8')) as { id: string; trials: unknown[] };
  const results = existsSync(join(dir, 'trials.json'))
    ? (JSON.parse(readFileSync(join(dir, 'trials.json'), 'utf8')) as TrialResult[])
    : [];
  return {
    id: plan.id,
    total: plan.trials.length,
    complete: results.filter((r) => r.status === 'complete').length,
    failed: results.filter((r) => r.status === 'failed').length,
    status: String(marker['status'] ?? 'unknown'),
    results,
  };
}
