/**
 * Training callbacks for HGQ models (tfjs-layers `tf.Callback`s): EBOPs logging, β schedule and PID,
 * Pareto-front checkpoints, early stop on EBOPs, and a terminal progress bar.
 *
 * Order in `callbacks: [...]` matters only in that each callback reads `logs` written by earlier ones;
 * every callback that needs EBOPs computes it itself when `logs.ebops` is absent.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { BetaPid, type PidOptions } from './schedule.ts';
import { offer } from './pareto.ts';
import { saveModel, writeFileAtomic } from './io.ts';
import { modelEbops, setModelBeta, modelBeta } from '../layers/model.ts';

type Logs = tf.Logs;

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v instanceof tf.Tensor) return (v.dataSync() as Float32Array)[0];
  return undefined;
}

/** Writes `ebops` (sum of the layers' differentiable EBOPs at the current parameters) and `beta` into the epoch logs. */
export class EbopsLogger extends tf.Callback {
  override async onEpochEnd(_epoch: number, logs?: Logs): Promise<void> {
    if (!logs) return;
    logs['ebops'] = modelEbops(this.model);
    logs['beta'] = modelBeta(this.model);
  }
}

/** Sets every HGQ layer's β to `fn(epoch)` at the start of each epoch. */
export class BetaScheduler extends tf.Callback {
  constructor(private readonly fn: (epoch: number) => number) {
    super();
  }
  override async onEpochBegin(epoch: number): Promise<void> {
    setModelBeta(this.model, this.fn(epoch));
  }
  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    if (logs) logs['beta'] = this.fn(epoch);
  }
}

/** Steers β toward a target EBOPs with a PID controller (after `warmup` epochs at `initBeta`). */
export class BetaPidCallback extends tf.Callback {
  readonly pid: BetaPid;
  private readonly warmup: number;
  private readonly initBeta: number | undefined;
  private beta = 0;
  private lastEbops = 0;

  constructor(o: PidOptions & { warmup?: number; initBeta?: number }) {
    super();
    this.pid = new BetaPid(o);
    this.warmup = o.warmup ?? 10;
    this.initBeta = o.initBeta;
  }
  override async onTrainBegin(): Promise<void> {
    if (this.initBeta !== undefined) setModelBeta(this.model, this.initBeta);
    this.beta = modelBeta(this.model);
    this.lastEbops = modelEbops(this.model);
  }
  override async onEpochBegin(epoch: number): Promise<void> {
    if (epoch < this.warmup) return;
    if (epoch === this.warmup) this.pid.start(Math.max(this.beta, 1e-12), this.lastEbops);
    this.beta = this.pid.update(this.lastEbops);
    setModelBeta(this.model, this.beta);
  }
  override async onEpochEnd(_epoch: number, logs?: Logs): Promise<void> {
    this.lastEbops = modelEbops(this.model);
    if (logs) {
      logs['ebops'] = this.lastEbops;
      logs['beta'] = this.beta;
    }
  }
}

/** One kept checkpoint of the Pareto front. */
export interface FrontEntry {
  path: string;
  epoch: number;
  accuracy: number;
  ebops: number;
}

export interface ParetoOptions {
  /** Directory for checkpoints (one model directory per kept epoch) and `front.json`. */
  dir: string;
  /** Accuracy key in the epoch logs; default: the first of val_acc, val_accuracy, val_categoricalAccuracy present. */
  monitor?: string;
  /** Ignore epochs before this one (the network is still settling). */
  startEpoch?: number;
}

/**
 * Keeps every checkpoint that no other beats on both validation accuracy and EBOPs: a new epoch is saved
 * only if no kept checkpoint is at least as accurate and at most as costly; the checkpoints it dominates
 * are deleted. Each checkpoint directory and `front.json` are written atomically.
 */
export class ParetoCheckpoint extends tf.Callback {
  readonly front: FrontEntry[] = [];
  readonly dir: string;
  private readonly monitor: string | undefined;
  private readonly startEpoch: number;

  constructor(o: ParetoOptions) {
    super();
    this.dir = resolve(o.dir);
    this.monitor = o.monitor;
    this.startEpoch = o.startEpoch ?? 0;
  }

  private accuracyOf(logs: Logs): number {
    const keys = this.monitor ? [this.monitor] : ['val_acc', 'val_accuracy', 'val_categoricalAccuracy'];
    for (const k of keys) {
      const v = num(logs[k]);
      if (v !== undefined) return v;
    }
    throw new Error(
      `ParetoCheckpoint: none of ${keys.join(', ')} in the epoch logs (have: ${Object.keys(logs).join(', ')}); pass validationData and metrics: ['acc'] to fit, or set monitor`,
    );
  }

  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    if (epoch < this.startEpoch || !logs) return;
    const accuracy = this.accuracyOf(logs);
    const ebops = num(logs['ebops']) ?? modelEbops(this.model);
    await this.consider({ path: join(this.dir, `epoch-${String(epoch).padStart(4, '0')}`), epoch, accuracy, ebops });
  }

  /** Offers a checkpoint; saves the model if it joins the front and deletes the ones it dominates. */
  async consider(entry: FrontEntry): Promise<boolean> {
    const { accepted, evicted } = offer(this.front, entry);
    if (!accepted) return false;
    await saveModel(this.model, entry.path);
    for (const e of evicted) {
      this.front.splice(this.front.indexOf(e), 1);
      rmSync(e.path, { recursive: true, force: true });
    }
    this.front.push(entry);
    this.front.sort((a, b) => a.ebops - b.ebops);
    writeFileAtomic(join(this.dir, 'front.json'), JSON.stringify(this.front, null, 1) + '\n');
    return true;
  }

  /** Reads a front.json written by this callback. */
  static readFront(dir: string): FrontEntry[] {
    const p = join(dir, 'front.json');
    if (!existsSync(p)) throw new Error(`no front.json in ${dir}`);
    return JSON.parse(readFileSync(p, 'utf8')) as FrontEntry[];
  }
}

/** Stops training once EBOPs has stayed below `threshold` for `patience` consecutive epochs (default 1). */
export class EarlyStopOnEbops extends tf.Callback {
  private below = 0;
  stoppedEpoch: number | undefined;
  constructor(
    private readonly threshold: number,
    private readonly patience = 1,
  ) {
    super();
    if (!(threshold > 0)) throw new Error(`EarlyStopOnEbops: threshold must be > 0, got ${threshold}`);
  }
  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    const ebops = num(logs?.['ebops']) ?? modelEbops(this.model);
    this.below = ebops < this.threshold ? this.below + 1 : 0;
    if (this.below >= this.patience) {
      this.stoppedEpoch = epoch;
      this.model.stopTraining = true;
    }
  }
}

/**
 * Terminal progress: on a TTY a cli-progress bar per epoch over batches; otherwise (logs, CI) one line per
 * epoch. Both show loss, accuracy, EBOPs and β.
 */
export class ProgressBar extends tf.Callback {
  private bar: cliProgress.SingleBar | undefined;
  private epochs = 0;
  private last: Record<string, string> = {};
  private readonly tty: boolean;
  private t0 = 0;
  constructor(private readonly stream: NodeJS.WritableStream = process.stderr) {
    super();
    this.tty = Boolean((stream as NodeJS.WriteStream).isTTY);
  }
  override async onTrainBegin(): Promise<void> {
    this.epochs = Number(this.params?.['epochs'] ?? 0);
  }
  override async onEpochBegin(epoch: number): Promise<void> {
    this.t0 = Date.now();
    if (!this.tty) return;
    const steps =
      Number(this.params?.['steps'] ?? 0) ||
      Math.ceil(Number(this.params?.['samples'] ?? 0) / Number(this.params?.['batchSize'] ?? 1));
    this.bar = new cliProgress.SingleBar(
      {
        format: `epoch ${epoch + 1}/${this.epochs} [{bar}] {value}/{total} loss {loss} acc {acc} ebops {ebops} β {beta}`,
        stream: this.stream as NodeJS.WritableStream & { isTTY: boolean },
        barsize: 20,
        hideCursor: false,
        clearOnComplete: false,
      },
      cliProgress.Presets.legacy,
    );
    this.bar.start(steps || 1, 0, {
      loss: '-',
      acc: '-',
      ebops: this.last['ebops'] ?? '-',
      beta: this.last['beta'] ?? fmt(modelBeta(this.model)),
    });
  }
  override async onBatchEnd(_batch: number, logs?: Logs): Promise<void> {
    if (!this.bar) return;
    const loss = num(logs?.['loss']);
    const acc = num(logs?.['acc'] ?? logs?.['accuracy']);
    this.bar.increment(1, { loss: loss === undefined ? '-' : loss.toFixed(4), acc: acc === undefined ? '-' : acc.toFixed(4) });
  }
  override async onEpochEnd(epoch: number, logs?: Logs): Promise<void> {
    const ebops = num(logs?.['ebops']) ?? modelEbops(this.model);
    const beta = num(logs?.['beta']) ?? modelBeta(this.model);
    this.last = { ebops: fmt(ebops), beta: fmt(beta) };
    const va = num(logs?.['val_acc'] ?? logs?.['val_accuracy']);
    const acc = `${num(logs?.['acc'] ?? logs?.['accuracy'])?.toFixed(4) ?? '-'}${va !== undefined ? ` val_acc ${va.toFixed(4)}` : ''}`;
    if (this.bar) {
      this.bar.update({ ...this.last, acc });
      this.bar.stop();
      this.bar = undefined;
    } else {
      const loss = num(logs?.['loss']);
      this.stream.write(
        `epoch ${epoch + 1}/${this.epochs} loss ${loss?.toFixed(4) ?? '-'} acc ${acc} ebops ${this.last['ebops']} β ${this.last['beta']} (${((Date.now() - this.t0) / 1000).toFixed(1)} s)\n`,
      );
    }
  }
}

function fmt(x: number): string {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-2) ? x.toExponential(2) : x.toFixed(2);
}
