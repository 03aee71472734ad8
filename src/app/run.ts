/**
 * The train runner behind `hgq train` and `hgq demo`: trains the spec's model epoch by epoch under a β
 * schedule (or PID toward a target EBOPs), keeps the Pareto front of (validation quality, EBOPs) as model
 * checkpoints, saves resume state every epoch, and at the end calibrates the kept checkpoints, evaluates
 * them on the test split and writes front.json. The run folder follows docs/run-folder.md: the marker is
 * rewritten to list every file before that file is written, so a killed run is always hgq's own, partial
 * (status "running", no front.json) and resumable from its last finished epoch.
 */
import { exitIfOrphaned } from './parent-watch.ts';
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { engineUnsupported, fitWithEngine } from '../engine/index.ts';
import { type AdamInternals, setAdamMoments, trainableOrder } from '../engine/from-tfjs.ts';
import { setFiniteCheck } from '../layers/base.ts';
import { calibrate } from '../train/calibrate.ts';
import { loadModel, saveModel } from '../train/io.ts';
import { modelEbops, setModelBeta } from '../layers/model.ts';
import { offer } from '../train/pareto.ts';
import { BetaPid, parseSchedule, piecewiseSchedule, type KeyPoint } from '../train/schedule.ts';
import {
  MARKER,
  MARKER_FORMAT,
  MARKER_VERSION,
  OutputPathError,
  assertCreatableDir,
  hgqVersion,
  outputDirThroughLinks,
  listFiles,
  assertNotBusy,
  lockOutput,
  liveHolderOfLockFile,
  pidAlive,
  readMarker,
  removeStaleTemporaries,
  temporaryBeside,
  whyNotReplaceable,
  writeMarker,
} from '../util/fs.ts';
import { loadRunData, type RunData, type Split } from './data.ts';
import { buildModel } from './model.ts';
import { PREPROCESS_FILE } from './preprocess.ts';
import { RunProgress } from './progress.ts';
import { SpecError, type TrainSpec } from './spec.ts';

export interface RunOptions {
  /** the run folder (default: spec.out) */
  out?: string;
  /** continue the partial run in `out` from its last finished epoch */
  resume?: boolean;
  /** progress output (default stderr); null = silent */
  progress?: NodeJS.WritableStream | null;
  log?: (line: string) => void;
  /** write report.html at the end when src/app/report.ts is present (default true) */
  report?: boolean;
}

export interface FrontCheckpoint {
  path: string;
  epoch: number;
  ebops: number;
  train_ebops: number;
  val: Record<string, number>;
  test: Record<string, number>;
}

export interface FrontFile {
  format: 'hgq-front';
  version: 1;
  task: TrainSpec['data']['task'];
  metric: 'accuracy' | 'mse';
  checkpoints: FrontCheckpoint[];
}

export interface RunResult {
  dir: string;
  front: FrontFile;
  /** epochs trained in total (fewer than the spec's when stopped early) */
  epochs: number;
  /** the epoch this process started at (> 0 after --resume) */
  startEpoch: number;
  seconds: number;
  trainSeconds: number;
  engine: 'wasm' | 'tfjs';
  data: { train: number; val: number; test: number; origin: RunData['origin'] };
}

/** A kept checkpoint while training: `quality` is val accuracy (classification) or −val MSE (regression). */
interface Kept {
  path: string;
  epoch: number;
  accuracy: number;
  ebops: number;
}

interface SavedState {
  format: 'hgq-run-state';
  version: 1;
  /** last finished epoch */
  epoch: number;
  beta: number;
  pid: Record<string, number> | null;
  pidStarted: boolean;
  lastEbops: number;
  best: number;
  wait: number;
  front: Kept[];
  weightShapes: number[][];
  adam: { iterations: number; accBeta1: number; accBeta2: number; shapes: number[][] };
  trainSeconds: number;
}

const STATE = 'state';
const CKPT_DIR = 'checkpoints';
const MODEL_FILES = ['model.json', 'weights.bin', PREPROCESS_FILE, MARKER];
const STATE_FILES = ['state.json', 'weights.bin', 'optimizer.bin', 'front-partial.json', MARKER];

/** The spec's identity for --resume (the output folder is not part of it). */
export function specHash(spec: TrainSpec): string {
  const { out: _o, ...rest } = spec;
  void _o;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------------------
// the run folder

/** Temporaries and locks inside a run folder left by a killed process of an older layout (any pid no longer alive). */
function removeDeadLeftovers(dir: string): void {
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      const tmp = /\.(?:hgq-tmp-|tmp-)(\d+)-\d+(?:\.old)?$/.exec(name);
      const dead = tmp ? !pidAlive(Number(tmp[1])) : name.endsWith('.hgq-lock') && liveHolderOfLockFile(full) === null;
      if (dead) rmSync(full, { recursive: true, force: true });
      else if (statSync(full).isDirectory()) walk(full);
    }
  };
  walk(dir);
}

/**
 * The run folder being written. Every temporary lives beside the run folder (`.RUN.hgq-tmp-PID-N`, cleaned by
 * the next run after a kill), never inside it, so a killed run holds only files its marker lists.
 */
class RunDir {
  status: 'running' | 'complete' = 'running';
  constructor(
    readonly dir: string,
    readonly hash: string,
  ) {}

  /** Rewrites the marker listing every file present plus `planned` (written next), so nothing here is ever unlisted. */
  declare(planned: string[] = []): void {
    const files = [...new Set([...listFiles(this.dir).filter((f) => f !== MARKER), ...planned])].sort();
    const marker = {
      format: MARKER_FORMAT,
      version: MARKER_VERSION,
      kind: 'run',
      hgq_version: hgqVersion(),
      status: this.status,
      spec_hash: this.hash,
      files,
    };
    this.put(MARKER, JSON.stringify(marker, null, 1) + '\n');
  }

  /** Writes one file of the run (declared first), atomically. */
  write(rel: string, data: string | Uint8Array): void {
    this.declare([rel]);
    this.put(rel, data);
  }

  private put(rel: string, data: string | Uint8Array): void {
    const tmp = temporaryBeside(this.dir);
    try {
      writeFileSync(tmp.path, data);
      renameSync(tmp.path, join(this.dir, rel));
    } finally {
      tmp.release();
    }
  }

  /**
   * Writes the folder `rel` as a whole (declared first): `fill(staging)` writes its files into a staging
   * folder beside the run, a marker of `kind` is added, and the staging folder replaces `rel`.
   */
  async writeDir(rel: string, kind: string, files: string[], fill: (staging: string) => Promise<void> | void): Promise<void> {
    this.declare(files.map((f) => `${rel}/${f}`));
    const tmp = temporaryBeside(this.dir);
    const aside = temporaryBeside(this.dir);
    const dest = join(this.dir, rel);
    try {
      const staging = join(tmp.path, 'dir');
      mkdirSync(staging, { recursive: true });
      await fill(staging);
      writeMarker(staging, kind);
      mkdirSync(dirname(dest), { recursive: true });
      if (existsSync(dest)) renameSync(dest, aside.path);
      renameSync(staging, dest);
    } finally {
      tmp.release();
      aside.release();
    }
  }
}

/**
 * Checks the output folder before any work: a new, empty or finished-run folder (replaced), or with `resume`
 * a partial run of the same spec. Anything else is refused (OutputPathError, exit 2) and left untouched.
 */
function checkRunFolder(out: string, hash: string, resume: boolean): 'fresh' | 'resume' {
  assertCreatableDir(out);
  removeStaleTemporaries(out); // beside the folder, left by a killed run
  const marker = existsSync(out) ? readMarker(out) : null;
  if (marker?.kind === 'run') removeDeadLeftovers(out);
  const why = whyNotReplaceable(out, ['run']);
  if (why) throw new OutputPathError(why);
  if (resume) {
    if (!marker) throw new OutputPathError(`${out}: no run to resume there (no ${MARKER}); start one without --resume`);
    if (marker['status'] === 'complete')
      throw new OutputPathError(`${out}: the run is complete; nothing to resume (train without --resume to replace it)`);
    if (marker['spec_hash'] !== hash)
      throw new OutputPathError(
        `${out}: the run there was started from another spec; resume it with its own spec (${join(out, 'spec.json')}) or choose another folder`,
      );
    return 'resume';
  }
  if (marker && marker['status'] !== 'complete')
    throw new OutputPathError(
      `${out} holds a partial run (killed or still running); continue it with --resume, or remove the folder to start over`,
    );
  return 'fresh';
}

// ---------------------------------------------------------------------------------------------------------
// evaluation

interface Tensors {
  x: tf.Tensor;
  y: tf.Tensor2D;
  split: Split;
}

function tensorsOf(s: Split, inputShape: number[], outputs: number): Tensors {
  return { x: tf.tensor(s.x, [s.n, ...inputShape]), y: tf.tensor2d(s.y, [s.n, outputs]), split: s };
}

/** Task loss and metric of the model on a split: classification {loss, accuracy}, regression {loss, mse}. */
function evaluate(model: tf.LayersModel, t: Tensors, task: TrainSpec['data']['task']): Record<string, number> {
  return tf.tidy((): Record<string, number> => {
    const p = model.predict(t.x, { batchSize: 4096 }) as tf.Tensor;
    if (task === 'regression') {
      const mse = tf.losses.meanSquaredError(t.y, p).dataSync()[0]!;
      return { loss: mse, mse };
    }
    const loss = tf.losses.softmaxCrossEntropy(t.y, p).dataSync()[0]!;
    const pred = tf.argMax(p, 1).dataSync();
    const labels = t.split.labels!;
    let ok = 0;
    for (let j = 0; j < labels.length; j++) if (pred[j] === labels[j]) ok++;
    return { loss, accuracy: ok / labels.length };
  });
}

/** Softmax cross-entropy on logits (the last layer stays a plain quantized dense, as in hardware). */
export function logitsLoss(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  return tf.losses.softmaxCrossEntropy(yTrue, yPred);
}

// ---------------------------------------------------------------------------------------------------------
// schedules

function lrAt(spec: TrainSpec, epoch: number): number {
  const o = spec.training.optimizer;
  const s = o.schedule;
  const E = spec.training.epochs;
  if (s.type === 'cosine') {
    const lo = s.min_lr ?? 0;
    // over E epochs, never reaching min_lr itself (a zero rate would train nothing in the last epoch)
    return lo + ((o.lr - lo) * (1 + Math.cos((Math.PI * epoch) / E))) / 2;
  }
  if (s.type === 'step') return o.lr * (s.factor ?? 0.5) ** Math.floor(epoch / (s.every ?? Math.max(1, Math.round(E / 3))));
  return o.lr;
}

function warmupOf(spec: TrainSpec): number {
  const b = spec.training.beta;
  return b.pid?.warmup ?? b.warmup ?? Math.max(1, Math.round(spec.training.epochs * 0.1));
}

/** β per epoch of a schedule (the spec's key points, or a log rise from start to end after the warm-up). */
function betaSchedule(spec: TrainSpec): (epoch: number) => number {
  const b = spec.training.beta;
  try {
    if (b.schedule !== undefined) return piecewiseSchedule(parseSchedule(b.schedule));
    const E = spec.training.epochs;
    const warm = Math.min(warmupOf(spec), E - 1);
    if (b.start <= 0 || b.end <= 0)
      return piecewiseSchedule([
        { epoch: 0, beta: b.start, interp: 'constant' },
        { epoch: Math.max(warm, 1), beta: b.end, interp: 'constant' },
      ]);
    const rise: KeyPoint[] = [
      { epoch: warm, beta: b.start, interp: 'log' },
      { epoch: Math.max(warm + 1, E - 1), beta: b.end, interp: 'constant' },
    ];
    return piecewiseSchedule(warm > 0 ? [{ epoch: 0, beta: b.start, interp: 'constant' }, ...rise] : rise);
  } catch (e) {
    throw new SpecError(`training.beta: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// weights and optimizer state (resume)

function concat(arrays: Float32Array[]): Uint8Array {
  const n = arrays.reduce((a, x) => a + x.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return new Uint8Array(out.buffer);
}

function split(bytes: Buffer, shapes: number[][], what: string): Float32Array[] {
  const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  if (sizes.reduce((a, b) => a + b, 0) !== f.length)
    throw new SpecError(
      `${what}: holds ${f.length} values, the state lists ${sizes.reduce((a, b) => a + b, 0)}; the resume state is corrupt (remove the run to start over)`,
    );
  let o = 0;
  return sizes.map((n) => f.slice(o, (o += n)));
}

function snapshot(model: tf.LayersModel): {
  weights: Uint8Array;
  weightShapes: number[][];
  optimizer: Uint8Array;
  adam: SavedState['adam'];
} {
  const ws = model.getWeights();
  const opt = model.optimizer as unknown as AdamInternals;
  const order = trainableOrder(model);
  const ms: Float32Array[] = [],
    vs: Float32Array[] = [];
  order.forEach((lv, j) => {
    const n = (lv.shape as number[]).reduce((a, b) => a * b, 1);
    ms.push(
      opt.accumulatedFirstMoment[j] ? (opt.accumulatedFirstMoment[j]!.variable.dataSync() as Float32Array) : new Float32Array(n),
    );
    vs.push(
      opt.accumulatedSecondMoment[j]
        ? (opt.accumulatedSecondMoment[j]!.variable.dataSync() as Float32Array)
        : new Float32Array(n),
    );
  });
  return {
    weights: concat(ws.map((w) => w.dataSync() as Float32Array)),
    weightShapes: ws.map((w) => w.shape),
    optimizer: concat([...ms, ...vs]),
    adam: {
      iterations: opt.iterations_ ?? 0,
      accBeta1: opt.accBeta1.dataSync()[0]!,
      accBeta2: opt.accBeta2.dataSync()[0]!,
      shapes: order.map((lv) => lv.shape as number[]),
    },
  };
}

function restore(model: tf.LayersModel, dir: string, st: SavedState): void {
  const ws = split(readFileSync(join(dir, 'weights.bin')), st.weightShapes, join(dir, 'weights.bin'));
  const cur = model.getWeights();
  if (cur.length !== ws.length || cur.some((w, j) => w.shape.join(',') !== st.weightShapes[j]!.join(',')))
    throw new SpecError(`${dir}: the saved weights do not fit the spec's model; the resume state is from another model`);
  const tensors = ws.map((w, j) => tf.tensor(w, st.weightShapes[j]!));
  model.setWeights(tensors);
  tf.dispose(tensors);
  const order = trainableOrder(model);
  const mv = split(readFileSync(join(dir, 'optimizer.bin')), [...st.adam.shapes, ...st.adam.shapes], join(dir, 'optimizer.bin'));
  const opt = model.optimizer as unknown as AdamInternals;
  order.forEach((lv, j) => setAdamMoments(opt, lv, j, mv[j]!, mv[order.length + j]!));
  tf.tidy(() => {
    opt.accBeta1.assign(tf.scalar(st.adam.accBeta1));
    opt.accBeta2.assign(tf.scalar(st.adam.accBeta2));
  });
  opt.iterations_ = st.adam.iterations;
}

/** A checkpoint folder (kind "model"): the model and its preprocessing, written as a whole. */
async function writeCheckpoint(run: RunDir, model: tf.LayersModel, rel: string, preprocess: string): Promise<void> {
  await run.writeDir(rel, 'model', MODEL_FILES, async (staging) => {
    await saveModel(model, join(staging, 'model'));
    for (const f of readdirSync(join(staging, 'model'))) renameSync(join(staging, 'model', f), join(staging, f));
    rmSync(join(staging, 'model'), { recursive: true });
    writeFileSync(join(staging, PREPROCESS_FILE), preprocess);
  });
}

// ---------------------------------------------------------------------------------------------------------
// the run

/** Trains `spec` into its run folder (see the module comment); resolves when the run is complete. */
export async function runTraining(spec: TrainSpec, o: RunOptions = {}): Promise<RunResult> {
  const t0 = Date.now();
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const outArg = o.out ?? spec.out;
  if (!outArg) throw new SpecError('no output folder: give --out DIR (or out: in the spec)');
  const dir = resolve(outputDirThroughLinks(outArg));
  const hash = specHash(spec);
  // everything that can be refused is refused before the data is read or the folder touched; a folder another
  // live process is writing is busy (exit 75, retry later), whatever state it is in
  assertNotBusy(dir);
  checkRunFolder(dir, hash, o.resume ?? false);
  const lock = lockOutput(dir);
  try {
    // decided again under the lock: another process may have finished the run between the first look and the
    // lock (a resumed trial a sweep worker finished meanwhile), and resuming a complete run would start it over
    const mode = checkRunFolder(dir, hash, o.resume ?? false);
    const data = await loadRunData(spec);
    const model = await buildModel(spec, data.inputShape, data.outputs);
    return await trainRun(spec, model, data, dir, hash, mode, o, log, t0);
  } finally {
    lock.release();
  }
}

async function trainRun(
  spec: TrainSpec,
  model: tf.LayersModel,
  data: RunData,
  dir: string,
  hash: string,
  mode: 'fresh' | 'resume',
  o: RunOptions,
  log: (s: string) => void,
  t0: number,
): Promise<RunResult> {
  const T = spec.training;
  const q = T.quantize;
  const classification = data.task === 'classification';
  const engine = compileForEngine(spec, model, classification, log);

  const run = new RunDir(dir, hash);
  const preprocessText = JSON.stringify(data.preprocess, null, 1) + '\n';
  const stateDir = join(dir, STATE);
  let start = 0;
  let front: Kept[] = [];
  let beta = 0,
    lastEbops = q ? modelEbops(model) : 0,
    best = -Infinity,
    wait = 0,
    trainSeconds = 0;
  const pid = betaPidOf(spec);
  let pidStarted = false;
  let history = '';

  if (mode === 'resume' && existsSync(join(stateDir, 'state.json'))) {
    const st = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as SavedState;
    restore(model, stateDir, st);
    start = st.epoch + 1;
    front = st.front;
    beta = st.beta;
    lastEbops = st.lastEbops;
    best = st.best;
    wait = st.wait;
    trainSeconds = st.trainSeconds;
    if (pid && st.pid) Object.assign(pid, st.pid); // the controller's integral and last error
    pidStarted = st.pidStarted;
    history = dropAfterState(run, dir, st);
    log(`hgq train: resuming ${dir} after epoch ${st.epoch + 1} of ${T.epochs}`);
  } else startRunFolder(run, dir, mode, spec, preprocessText);

  const train = tensorsOf(data.train, data.inputShape, data.outputs);
  const val = tensorsOf(data.val, data.inputShape, data.outputs);
  const test = tensorsOf(data.test, data.inputShape, data.outputs);
  const schedule = q && !pid ? betaSchedule(spec) : null;
  const warm = warmupOf(spec);
  const paretoStart = T.pareto_start ?? Math.min(warm, T.epochs - 1);
  const steps = Math.ceil(data.train.n / T.batch_size);
  const progress = o.progress === null ? null : new RunProgress(o.progress ?? process.stderr, T.epochs, steps, start);
  const opt = model.optimizer as unknown as AdamInternals;
  let epoch = start; // the next epoch to train
  let stopped = false;
  let te = Date.now();
  let tFit = 0; // when the fit call started (the resume state counts training seconds up to each epoch)

  const beginEpoch = (e: number): void => {
    te = Date.now();
    opt.learningRate = lrAt(spec, e); // tfjs reads it at every step, the engine at the epoch's start
    if (!q) return;
    if (pid) {
      if (e < warm) beta = T.beta.pid!.init_beta ?? T.beta.start;
      else {
        if (!pidStarted) {
          pid.start(Math.max(beta, 1e-12), lastEbops);
          pidStarted = true;
        }
        beta = pid.update(lastEbops);
      }
    } else beta = schedule!(e);
    setModelBeta(model, beta);
  };

  const endEpoch = async (e: number, loss: number, acc: number): Promise<void> => {
    if (!Number.isFinite(loss))
      throw new SpecError(`training diverged at epoch ${e + 1} (loss ${loss}); lower training.optimizer.lr or β`);
    const v = evaluate(model, val, data.task);
    lastEbops = q ? modelEbops(model) : 0;
    const quality = classification ? v['accuracy']! : -v['loss']!;
    // training accuracy as the epoch's batches saw it (training-mode quantizers); no extra pass over the data
    const metrics = classification ? { accuracy: acc, val_accuracy: v['accuracy']! } : { val_mse: v['mse']! };
    history +=
      JSON.stringify({
        epoch: e,
        loss,
        val_loss: v['loss'],
        metrics,
        ebops: lastEbops,
        beta,
        lr: opt.learningRate,
        seconds: (Date.now() - te) / 1000,
      }) + '\n';
    run.write('history.jsonl', history);

    // Pareto front: a new checkpoint joins unless a kept one is as good and as cheap; the ones it beats go after the state is saved
    let evicted: Kept[] = [];
    if (e >= paretoStart) ({ front, evicted } = await offerCheckpoint(run, model, front, e, quality, lastEbops, preprocessText));
    let stop: boolean;
    ({ best, wait, stop } = earlyStopping(T.early_stopping, quality, best, wait, q ? lastEbops : null));
    if (stop) {
      stopped = true;
      model.stopTraining = true;
    }

    // resume state: everything needed to continue after this epoch
    await writeResumeState(run, model, {
      epoch: e,
      beta,
      pid: pid ? { ...(pid as unknown as Record<string, number>) } : null,
      pidStarted,
      lastEbops,
      best,
      wait,
      front,
      trainSeconds: trainSeconds + (performance.now() - tFit) / 1000,
    });
    for (const x of evicted) rmSync(join(dir, x.path), { recursive: true, force: true });
    run.declare();
    progress?.epochDone({
      epoch: e,
      loss,
      val: classification ? `val acc ${(100 * v['accuracy']!).toFixed(2)}%` : `val mse ${v['mse']!.toPrecision(4)}`,
      ebops: lastEbops,
      beta,
      seconds: (Date.now() - te) / 1000,
    });
    if (stopped && e + 1 < T.epochs) log(`hgq train: early stop after epoch ${e + 1}`);
    epoch = e + 1;
  };

  // one fit call for the whole run; the callback maps the call's epoch numbers onto the run's
  const epochs = runEpochCallback(epoch, beginEpoch, endEpoch);
  const callbacks = [epochs, ...(progress ? [progress.ticker] : [])];
  setFiniteCheck(false); // the data was checked once when read
  try {
    if (epoch < T.epochs) {
      tFit = performance.now();
      await fitEpochs(spec, model, engine, train, classification, epoch, T.epochs, callbacks);
      trainSeconds += (performance.now() - tFit) / 1000;
    }
    progress?.stop();
    if (front.length === 0)
      throw new SpecError(
        `no checkpoint was kept (training.pareto_start ${paretoStart} ≥ the ${epoch} epochs trained); lower training.pareto_start`,
      );
    const checkpoints = await finalizeFront(run, dir, front, q, data.task, { train, val, test }, preprocessText);
    const frontFile = await completeRun(run, stateDir, data.task, checkpoints, o, log);
    return {
      dir,
      front: frontFile,
      epochs: epoch,
      startEpoch: start,
      seconds: (Date.now() - t0) / 1000,
      trainSeconds,
      engine,
      data: { train: data.train.n, val: data.val.n, test: data.test.n, origin: data.origin },
    };
  } finally {
    progress?.stop();
    setFiniteCheck(true);
    model.dispose();
    tf.dispose([train.x, train.y, val.x, val.y, test.x, test.y]);
  }
}

/** Compiles the model for the run and picks the engine: wasm unless the model needs what only tfjs trains. */
function compileForEngine(
  spec: TrainSpec,
  model: tf.LayersModel,
  classification: boolean,
  log: (s: string) => void,
): 'wasm' | 'tfjs' {
  const T = spec.training;
  model.compile({
    optimizer: tf.train.adam(T.optimizer.lr),
    loss: classification ? logitsLoss : 'meanSquaredError',
    metrics: classification ? ['acc'] : [],
  });
  let engine: 'wasm' | 'tfjs' = T.engine;
  const why = engine === 'wasm' ? engineUnsupported(model) : null;
  if (why) {
    if (T.quantize) log(`hgq train: the wasm engine cannot train this model (${why}); training with tfjs model.fit`);
    engine = 'tfjs';
  }
  return engine;
}

/** The β controller the spec asks for (training.beta.pid), or null for a schedule. */
function betaPidOf(spec: TrainSpec): BetaPid | null {
  const pid = spec.training.beta.pid;
  return pid
    ? new BetaPid({
        targetEbops: pid.target_ebops,
        p: pid.p,
        i: pid.i,
        d: pid.d,
        minBeta: pid.min_beta,
        maxBeta: pid.max_beta,
      })
    : null;
}

/**
 * On resume, drops what the killed epoch wrote after the state: its history line and any checkpoint the state
 * does not keep. Returns the history kept.
 */
function dropAfterState(run: RunDir, dir: string, st: SavedState): string {
  const hist = existsSync(join(dir, 'history.jsonl')) ? readFileSync(join(dir, 'history.jsonl'), 'utf8') : '';
  const history = hist
    .split('\n')
    .filter((l) => l.trim() && (JSON.parse(l) as { epoch: number }).epoch <= st.epoch)
    .map((l) => l + '\n')
    .join('');
  const keep = new Set(st.front.map((f) => f.path));
  if (existsSync(join(dir, CKPT_DIR)))
    for (const name of readdirSync(join(dir, CKPT_DIR)))
      if (!keep.has(`${CKPT_DIR}/${name}`)) rmSync(join(dir, CKPT_DIR, name), { recursive: true, force: true });
  run.write('history.jsonl', history);
  return history;
}

/** A run from its first epoch: the folder emptied of what an earlier attempt left, then the spec and preprocessing. */
function startRunFolder(run: RunDir, dir: string, mode: 'fresh' | 'resume', spec: TrainSpec, preprocessText: string): void {
  if (mode === 'fresh')
    rmSync(dir, { recursive: true, force: true }); // absent, empty or a finished run of ours (checked)
  else for (const f of [CKPT_DIR, 'history.jsonl']) rmSync(join(dir, f), { recursive: true, force: true }); // killed before its first epoch was saved
  mkdirSync(dir, { recursive: true });
  run.write('spec.json', JSON.stringify(spec, null, 1) + '\n');
  run.write(PREPROCESS_FILE, preprocessText);
}

/**
 * Pareto front: epoch e's checkpoint joins unless a kept one is as good and as cheap. Returns the new front and
 * the checkpoints it beats, which are deleted only after the state is saved.
 */
async function offerCheckpoint(
  run: RunDir,
  model: tf.LayersModel,
  front: Kept[],
  e: number,
  quality: number,
  ebops: number,
  preprocessText: string,
): Promise<{ front: Kept[]; evicted: Kept[] }> {
  const entry: Kept = {
    path: `${CKPT_DIR}/epoch-${String(e).padStart(4, '0')}`,
    epoch: e,
    accuracy: quality,
    ebops,
  };
  const r = offer(front, entry);
  if (!r.accepted) return { front, evicted: [] };
  await writeCheckpoint(run, model, entry.path, preprocessText);
  const evicted = r.evicted;
  return { front: [...front.filter((f) => !evicted.includes(f)), entry].sort((x, y) => x.ebops - y.ebops), evicted };
}

/** The resume state: everything needed to continue after an epoch, written as a whole. */
async function writeResumeState(
  run: RunDir,
  model: tf.LayersModel,
  s: Omit<SavedState, 'format' | 'version' | 'weightShapes' | 'adam'>,
): Promise<void> {
  const snap = snapshot(model);
  const st: SavedState = {
    format: 'hgq-run-state',
    version: 1,
    epoch: s.epoch,
    beta: s.beta,
    pid: s.pid,
    pidStarted: s.pidStarted,
    lastEbops: s.lastEbops,
    best: s.best,
    wait: s.wait,
    front: s.front,
    weightShapes: snap.weightShapes,
    adam: snap.adam,
    trainSeconds: s.trainSeconds,
  };
  const stateFiles: Record<string, string | Uint8Array> = {
    'state.json': JSON.stringify(st) + '\n',
    'weights.bin': snap.weights,
    'optimizer.bin': snap.optimizer,
    'front-partial.json': JSON.stringify(s.front, null, 1) + '\n',
  };
  await run.writeDir(STATE, 'state', STATE_FILES, (staging) => {
    for (const [f, d] of Object.entries(stateFiles)) writeFileSync(join(staging, f), d);
  });
}

/** Trains epochs [from, end) with the chosen engine (the epoch callback sets each epoch's learning rate). */
async function fitEpochs(
  spec: TrainSpec,
  model: tf.LayersModel,
  engine: 'wasm' | 'tfjs',
  train: Tensors,
  classification: boolean,
  from: number,
  end: number,
  callbacks: tf.Callback[],
): Promise<void> {
  const T = spec.training;
  if (engine === 'wasm') {
    // each epoch's batches follow (seed, run epoch): a resumed run sees what one unbroken run sees
    await fitWithEngine(model, train.x, train.y, {
      epochs: end - from,
      batchSize: T.batch_size,
      loss: classification ? 'softmax_cross_entropy' : 'mse',
      shuffle: true,
      seed: T.seed >>> 0,
      initialEpoch: from,
      callbacks,
      engine: T.threads ? { threads: T.threads } : {},
    });
  } else {
    await model.fit(train.x, train.y, { epochs: end - from, batchSize: T.batch_size, shuffle: true, callbacks, verbose: 0 });
  }
}

/** Calibrates every kept checkpoint on the training data, then evaluates it exactly as it will run; cheapest first. */
async function finalizeFront(
  run: RunDir,
  dir: string,
  front: Kept[],
  quantize: boolean,
  task: RunData['task'],
  sets: { train: Tensors; val: Tensors; test: Tensors },
  preprocessText: string,
): Promise<FrontCheckpoint[]> {
  const checkpoints: FrontCheckpoint[] = [];
  for (const f of front) {
    const m = await loadModel(join(dir, f.path));
    try {
      const ebops = quantize ? calibrate(m, sets.train.x, { reset: true }).ebops : 0;
      const vv = evaluate(m, sets.val, task);
      const tt = evaluate(m, sets.test, task);
      await writeCheckpoint(run, m, f.path, preprocessText);
      checkpoints.push({ path: f.path, epoch: f.epoch, ebops, train_ebops: f.ebops, val: vv, test: tt });
    } finally {
      m.dispose();
    }
  }
  checkpoints.sort((a, b) => a.ebops - b.ebops || a.epoch - b.epoch);
  return checkpoints;
}

const logNumber = (v: unknown): number => (typeof v === 'number' ? v : v instanceof tf.Tensor ? v.dataSync()[0]! : NaN);

/** The fit callback that maps a fit call's epoch numbers onto the run's (offset: the run epoch the call begins at). */
function runEpochCallback(
  offset: number,
  begin: (e: number) => void,
  end: (e: number, loss: number, acc: number) => Promise<void>,
): tf.Callback {
  return new (class extends tf.Callback {
    override async onEpochBegin(e: number): Promise<void> {
      begin(offset + e);
    }
    override async onEpochEnd(e: number, logs?: tf.Logs): Promise<void> {
      exitIfOrphaned();
      await end(offset + e, logNumber(logs?.['loss']), logNumber(logs?.['acc']));
      // Ctrl-C and SIGTERM are handled on the event loop (util/fs removes the run's lock and temporaries, then
      // exits), which the engine's fit loop never reaches by itself: without this turn a signal waits for the
      // whole run to end
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  })();
}

/**
 * Early stopping: no better validation quality for `patience` epochs, or EBOPs (null when not quantizing) below a
 * floor. Returns the best quality so far, the epochs since it, and whether to stop.
 */
function earlyStopping(
  es: TrainSpec['training']['early_stopping'],
  quality: number,
  best: number,
  wait: number,
  ebops: number | null,
): { best: number; wait: number; stop: boolean } {
  if (quality > best + (es?.min_delta ?? 0)) {
    best = quality;
    wait = 0;
  } else wait++;
  const stop =
    (es?.patience !== undefined && wait >= es.patience) ||
    (es?.ebops_below !== undefined && ebops !== null && ebops < es.ebops_below);
  return { best, wait, stop };
}

/** The run's end: front.json written, the resume state dropped, the folder declared complete, then the report. */
async function completeRun(
  run: RunDir,
  stateDir: string,
  task: RunData['task'],
  checkpoints: FrontCheckpoint[],
  o: RunOptions,
  log: (s: string) => void,
): Promise<FrontFile> {
  const frontFile: FrontFile = {
    format: 'hgq-front',
    version: 1,
    task,
    metric: task === 'classification' ? 'accuracy' : 'mse',
    checkpoints,
  };
  run.write('front.json', JSON.stringify(frontFile, null, 1) + '\n');
  rmSync(stateDir, { recursive: true, force: true }); // a complete run has nothing to resume
  run.status = 'complete';
  run.declare();
  if (o.report !== false) await writeReportIfAvailable(run, log);
  return frontFile;
}

/**
 * REPORT HOOK (issue 13 part 3): the one call site for the run report. src/app/report.ts (written in
 * parallel) exports `writeReport(runDir)`; until it exists this does nothing.
 */
async function writeReportIfAvailable(run: RunDir, log: (s: string) => void): Promise<void> {
  const file = new URL('./report.ts', import.meta.url);
  if (!existsSync(file)) return;
  const specifier = file.href; // not a literal: the module may not exist at type-check time
  const mod = (await import(specifier)) as { writeReport?: (runDir: string) => unknown };
  if (typeof mod.writeReport !== 'function') return;
  try {
    run.declare(['report.html']); // the report is part of the run (docs/run-folder.md)
    await mod.writeReport(run.dir);
  } catch (e) {
    log(`hgq train: the report could not be written (${(e as Error).message}); the run itself is complete`);
  }
}
