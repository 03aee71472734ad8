/**
 * The main job: train an HGQ MLP on MNIST under a rising β, keep the Pareto front of (val accuracy, EBOPs),
 * then calibrate every kept checkpoint on the training data and report its test accuracy and exact EBOPs.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadMnist, type ImageSet } from '../data/mnist.ts';
import { QDense } from '../layers/dense.ts';
import { setFiniteCheck } from '../layers/base.ts';
import { BetaScheduler, EbopsLogger, ParetoCheckpoint, ProgressBar, type FrontEntry } from './callbacks.ts';
import { piecewiseSchedule, type KeyPoint } from './schedule.ts';
import { calibrate } from './calibrate.ts';
import { loadModel, saveModel, writeFileAtomic } from './io.ts';
import { engineUnsupported, fitWithEngine } from '../engine/index.ts';

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
}

export interface DemoCheckpoint {
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

function toTensors(s: ImageSet): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const x = tf.tensor2d(s.images, [s.n, s.rows * s.cols]);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(s.labels, 'int32'), 10).toFloat() as tf.Tensor2D);
  return { x, y };
}

/** Softmax cross-entropy on logits (the last layer stays a plain quantized dense, as in hardware). */
export function logitsLoss(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.losses.softmaxCrossEntropy(yTrue, yPred);
}

export function buildMlp(inputs: number, hidden: number[], classes: number, seed: number): tf.Sequential {
  const m = tf.sequential();
  const dims = [...hidden, classes];
  dims.forEach((units, j) => {
    m.add(
      new QDense({
        units,
        activation: j < dims.length - 1 ? 'relu' : 'linear',
        // Pixels lie in [0, 1]: f < 0 rounds every stroke to 0 or 2, and Adam drifts all pixels' f down in
        // lockstep, so the input collapses at once (val acc 97% → ~78% near 500k EBOPs). f ≥ 0 keeps each
        // pixel at least binarized; pruning still happens through the kernel bits.
        ...(j === 0 ? { inputShape: [inputs], iqConf: { fBounds: [0, 24] as [number, number] } } : {}),
        kernelInitializer: 'glorotUniform',
        name: `dense${j}`,
      }),
    );
  });
  void seed;
  return m;
}

export function accuracy(model: tf.LayersModel, x: tf.Tensor, labels: Int32Array): number {
  const pred = tf.tidy(() => tf.argMax(model.predict(x, { batchSize: 4096 }) as tf.Tensor, 1).dataSync());
  let ok = 0;
  for (let j = 0; j < labels.length; j++) if (pred[j] === labels[j]) ok++;
  return ok / labels.length;
}

export async function runDemo(o: DemoOptions = {}): Promise<DemoResult> {
  const t0 = Date.now();
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const quick = o.quick ?? false;
  const epochs = o.epochs ?? (quick ? 8 : 60);
  const batchSize = o.batchSize ?? (quick ? 256 : 1024);
  const hidden = o.hidden ?? (quick ? [32] : [128, 64]);
  const seed = o.seed ?? 1234;
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`epochs must be a positive integer, got ${epochs}`);
  // Default run: 60 epochs, β rising log-linearly from 1e-7 to 6e-5 at Adam lr 2e-3. With Adam the bit
  // parameters drift at ~lr per step wherever the task gradient is weak, so lr × steps (more than β) sets how
  // far EBOPs fall: at lr 1e-3 EBOPs only reached ~1.4M in 50 epochs, at 3e-3 the front ran past its knee.
  // Ending at 3e-5 left the front's EBOPs span at ×9.9–11.7 between runs; 6e-5 gives ×14 (down to ~190k at 90%).
  const betaStart = o.betaStart ?? (quick ? 1e-5 : 1e-7);
  const betaEnd = o.betaEnd ?? (quick ? 2e-3 : 6e-5);
  const warm = Math.max(1, Math.round(epochs * 0.1));
  const schedule = o.schedule ?? [
    { epoch: 0, beta: betaStart, interp: 'constant' },
    { epoch: warm, beta: betaStart, interp: 'log' },
    { epoch: Math.max(warm + 1, epochs - 1), beta: betaEnd, interp: 'constant' },
  ];

  const data = loadMnist({ seed, limit: quick ? { train: 10000, val: 2000 } : undefined });
  log(`hgq demo: MNIST train ${data.train.n}, val ${data.val.n}, test ${data.test.n}; MLP 784-${hidden.join('-')}-10; ${epochs} epochs, batch ${batchSize}`);
  const train = toTensors(data.train);
  const val = toTensors(data.val);
  const test = toTensors(data.test);

  const outDir = o.out ? resolve(o.out) : mkdtempSync(join(tmpdir(), 'hgq-demo-'));
  const model = buildMlp(784, hidden, 10, seed);
  model.compile({ optimizer: tf.train.adam(o.learningRate ?? (quick ? 3e-3 : 2e-3)), loss: logitsLoss, metrics: ['acc'] });
  const pareto = new ParetoCheckpoint({ dir: outDir, startEpoch: Math.min(warm, epochs - 1) });
  const callbacks: tf.CustomCallbackArgs[] | tf.Callback[] = [new BetaScheduler(piecewiseSchedule(schedule)), new EbopsLogger(), pareto];
  if (o.progress !== null) callbacks.push(new ProgressBar(o.progress ?? process.stderr));
  setFiniteCheck(false); // data checked once below; no per-step check
  try {
    for (const [name, t] of [['train', train.x], ['val', val.x], ['test', test.x]] as const) {
      if (!tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0])) throw new Error(`MNIST ${name} images contain NaN/Inf`);
    }
    let engine = o.engine ?? 'wasm';
    const why = engine === 'wasm' ? engineUnsupported(model) : null;
    if (why) {
      log(`hgq demo: ${why}; training with tfjs model.fit`);
      engine = 'tfjs';
    }
    const tTrain = Date.now();
    if (engine === 'wasm') {
      await fitWithEngine(model, train.x, train.y, { epochs, batchSize, loss: 'softmax_cross_entropy', shuffle: true, seed,
        validationData: [val.x, val.y], callbacks: callbacks as tf.Callback[], engine: o.threads ? { threads: o.threads } : {} });
    } else {
      await model.fit(train.x, train.y, {
        epochs,
        batchSize,
        shuffle: true,
        validationData: [val.x, val.y],
        callbacks: callbacks as tf.Callback[],
        verbose: 0,
      });
    }
    const trainSeconds = (Date.now() - tTrain) / 1000;

    const checkpoints: DemoCheckpoint[] = [];
    for (const f of pareto.front as FrontEntry[]) {
      const m = await loadModel(f.path);
      const cal = calibrate(m, train.x, { reset: true });
      const testAcc = accuracy(m, test.x, data.test.labels);
      await saveModel(m, f.path); // keep the calibrated state, ready for tracing
      checkpoints.push({ path: f.path, epoch: f.epoch, val_accuracy: f.accuracy, test_accuracy: testAcc, ebops: cal.ebops, train_ebops: f.ebops });
      m.dispose();
    }
    checkpoints.sort((a, b) => a.ebops - b.ebops);
    if (o.out) {
      const front = checkpoints.map((c) => ({ path: c.path, val_accuracy: c.val_accuracy, test_accuracy: c.test_accuracy, ebops: c.ebops, epoch: c.epoch }));
      writeFileAtomic(join(outDir, 'front.json'), JSON.stringify(front, null, 1) + '\n');
    } else {
      rmSync(outDir, { recursive: true, force: true });
      for (const c of checkpoints) c.path = '';
    }
    return { checkpoints, epochs, seconds: (Date.now() - t0) / 1000, engine, trainSeconds, out: o.out ? outDir : null };
  } finally {
    setFiniteCheck(true);
    model.dispose();
    tf.dispose([train.x, train.y, val.x, val.y, test.x, test.y]);
  }
}
