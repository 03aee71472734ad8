// hgq as a library: build an HGQ model, train it, calibrate it, save and reload it, trace it into the
// bit-exact IR, check the emulator against the model and write a pipelined Verilog project.
// Run: node library.mjs [OUT_DIR]   (in a project where hgq is installed)
import { join } from 'node:path';
import {
  tf,
  initBackend,
  QDense,
  fit,
  BetaScheduler,
  piecewiseSchedule,
  calibrate,
  saveModel,
  loadModel,
  trace,
  emulate,
  writeProject,
} from 'hgq';

const out = process.argv[2] ?? 'hgq-example';
await initBackend();

// Toy task: which of 8 inputs is the largest. Bring your own tensors (samples × features, one-hot labels).
const x = tf.randomUniform([4096, 8], -1, 1, 'float32', 7);
const y = tf.oneHot(tf.argMax(x, 1), 8).toFloat();

// Every weight and activation gets its own learned fixed-point type; the last layer's outputs are logits.
const model = tf.sequential({
  name: 'argmax8',
  layers: [new QDense({ units: 16, activation: 'relu', inputShape: [8] }), new QDense({ units: 8 })],
});

// β, the weight of the estimated FPGA cost (EBOPs) in the loss, rises log-linearly over the epochs.
const beta = new BetaScheduler(
  piecewiseSchedule([
    { epoch: 0, beta: 1e-6, interp: 'log' },
    { epoch: 7, beta: 1e-4, interp: 'constant' },
  ]),
);
const run = await fit(model, x, y, {
  loss: 'softmax_cross_entropy',
  epochs: 8,
  batchSize: 256,
  learningRate: 1e-2,
  callbacks: [beta],
});

// Calibration sets the wrap-around ranges from data (reset: not from training) and makes the EBOPs exact.
const { ebops } = calibrate(model, x, { reset: true });
await saveModel(model, join(out, 'model'));
const loaded = await loadModel(join(out, 'model'));

// Trace to the IR; its emulator is bit-exact with the model's own inference.
const program = trace(loaded);
const n = 500;
const xs = x.slice([0, 0], [n, 8]);
const fromModel = loaded.predict(xs).dataSync();
const fromEmulator = emulate(program, xs.dataSync());
const mismatches = fromModel.filter((v, j) => v !== fromEmulator[j]).length;

// Verilog, testbench, vectors, Vivado scripts and summary.json; a pipeline stage every 2 adder levels.
const summary = writeProject(program, join(out, 'prj'), { latencyCutoff: 2 });
console.log(
  JSON.stringify({
    engine: run.engine,
    accuracy: +run.history.acc.at(-1).toFixed(3),
    ebops,
    ops: program.ops.length,
    mismatches,
    top: summary.top,
    latency: summary.latency_cycles,
    lut: summary.estimated_lut,
  }),
);
