/**
 * The MNIST demo's Pareto checkpoints in hardware: Verilator simulation of the generated Verilog equals the
 * IR emulator bit for bit on 10,000 vectors per design — 3,000 real MNIST test images (plus edge images:
 * blank, saturated, out-of-range) and 7,000 random port codes with extremes mixed in — at latency cutoffs
 * 0, 1 and 3. Zero mismatches. The emulator itself is checked against the trained model (convert --validate).
 *
 * CI has no pre-trained checkpoints, so the test trains them: the quick demo (784-32-10 MLP, 10k images) with
 * 12 epochs at learning rate 1e-2 instead of 8 at 3e-3, so that β drives EBOPs down far enough for a front of
 * several checkpoints (~7k to ~250k EBOPs) instead of a single one. Every step goes through `hgq convert`
 * exactly as a user runs it: the model directory at cutoff 0 (traced, validated against the model, verified),
 * then the traced program.json at cutoffs 1 and 3.
 *
 * Coverage: the cheapest, the middle and the most expensive front checkpoint (all of them when the front has
 * three or fewer) at all three cutoffs — nine Verilator builds. These three span the front (~7k to ~500k
 * EBOPs, ~1k to ~9k ops); every checkpoint (the front has 5–7, training is not bit-reproducible across thread
 * schedules) would roughly double the time. Measured on the 2-core machine: 2.4 min wall with light load
 * (training 27 s, each convert 6–25 s), 6.6 min under load ~10 (training 73 s, each convert 16–63 s:
 * Verilator build 8–33 s, vectors and emulator ~15 s).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../src/cli/main.ts';
import { loadMnist } from '../src/data/mnist.ts';
import { writeNpy } from '../src/data/npy.ts';
import { compileProgram } from '../src/ir/emulate.ts';
import { readProgram } from '../src/ir/serialize.ts';
import { inputLayout } from '../src/backends/layout.ts';
import { dataToPortValues } from '../src/backends/vectors.ts';
import { runDemo } from '../src/app/demo.ts';
import { loadModelAny } from '../src/app/load-model.ts';
import * as tf from '@tensorflow/tfjs';
import { needTool } from './backends-fixtures.ts';

const RANDOM_VECTORS = 7000;
const MNIST_IMAGES = 2994;
const CUTOFFS = [0, 1, 3];

/** Real test images, then six edge images: blank, all 1, all 0.5, checkerboard, far above and below the range. */
function mnistVectors(): { data: Float64Array; labels: Int32Array } {
  const test = loadMnist({ limit: { train: 1, val: 1 } }).test;
  const px = test.rows * test.cols;
  const edges = [0, 1, 0.5, -1, 1000, -1000];
  const data = new Float64Array((MNIST_IMAGES + edges.length) * px);
  for (let j = 0; j < MNIST_IMAGES * px; j++) data[j] = test.images[j]!;
  edges.forEach((v, e) => {
    for (let j = 0; j < px; j++) data[(MNIST_IMAGES + e) * px + j] = v === -1 ? (j + Math.floor(j / test.cols)) % 2 : v;
  });
  return { data, labels: test.labels.subarray(0, MNIST_IMAGES) };
}

interface Summary {
  stages: number;
  verified_vectors: number;
  mismatches: number;
  validated_samples?: number;
  first_mismatch?: unknown;
}

async function convert(args: string[]): Promise<Summary> {
  const code = await main(['convert', ...args, '--vectors', '1']);
  assert.equal(code, 0, `hgq convert ${args.join(' ')} exited ${code}`);
  return JSON.parse(readFileSync(join(args[1]!, 'summary.json'), 'utf8')) as Summary;
}

test('MNIST demo front: Verilator equals the emulator on 10,000 vectors (3,000 real images) at cutoffs 0, 1, 3', {
  timeout: 20 * 60_000,
}, async (t) => {
  if (!needTool(t, 'verilator')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-mnist-hw-'));
  try {
    const demo = await runDemo({
      quick: true,
      epochs: 12,
      learningRate: 1e-2,
      out: join(root, 'demo'),
      progress: null,
      log: () => {},
    });
    const front = demo.checkpoints; // sorted by exact EBOPs
    assert.ok(front.length >= 1, 'the demo kept a Pareto front');
    const picks = [...new Set([0, Math.floor((front.length - 1) / 2), front.length - 1])].map((k) => front[k]!);
    t.diagnostic(
      `demo: ${front.length} front checkpoints (${front.map((c) => c.ebops).join(', ')} EBOPs) in ${demo.seconds} s; checking ${picks.map((c) => c.epoch).join(', ')}`,
    );
    const { data, labels } = mnistVectors();
    const npy = join(root, 'mnist.npy');
    writeNpy(npy, { data, shape: [data.length / 784, 784] });

    for (const c of picks) {
      const tag = `epoch ${c.epoch} (${c.ebops} EBOPs)`;
      const stages: number[] = [];
      for (const cutoff of CUTOFFS) {
        const prj = join(root, `e${c.epoch}-c${cutoff}`);
        // cutoff 0 traces the checkpoint and validates the emulator against the model; later cutoffs reuse the program
        const src = cutoff === 0 ? c.path : join(root, `e${c.epoch}-c0`, 'program.json');
        const extra = cutoff === 0 ? ['--validate', '1000'] : [];
        const t0 = performance.now();
        const s = await convert([
          src,
          prj,
          '--latency-cutoff',
          String(cutoff),
          '--verify',
          String(RANDOM_VECTORS),
          '--data',
          npy,
          '--simulator',
          'verilator',
          ...extra,
        ]);
        if (cutoff === 0) assert.equal(s.validated_samples, 1000, `${tag}: emulator validated against the model`);
        assert.equal(s.verified_vectors, RANDOM_VECTORS + data.length / 784, `${tag} cutoff ${cutoff}: every vector simulated`);
        assert.ok(s.verified_vectors >= 10000);
        assert.equal(s.mismatches, 0, `${tag} cutoff ${cutoff}: first mismatch ${JSON.stringify(s.first_mismatch)}`);
        stages.push(s.stages);
        t.diagnostic(
          `${tag} cutoff ${cutoff}: ${s.stages} stage(s), ${s.verified_vectors} vectors, 0 mismatches, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
      }
      assert.equal(stages[0], 1, `${tag}: cutoff 0 is combinational`);
      assert.ok(stages[1]! > stages[2]! && stages[2]! > 1, `${tag}: more pipeline stages at cutoff 1 than at 3: ${stages}`);

      // the real images are digits the hardware classifies (not inputs quantized away): on these very images the
      // emulator scores what the trained model scores (a subset's accuracy differs from the 10k test accuracy by
      // several points on a weak checkpoint, so compare like with like), and clearly above chance
      const p = readProgram(join(root, `e${c.epoch}-c0`, 'program.json'));
      const images = data.subarray(0, MNIST_IMAGES * 784);
      const y = compileProgram(p).run(dataToPortValues(inputLayout(p), images), MNIST_IMAGES);
      const model = await loadModelAny(c.path);
      const yModel = tf.tidy(() =>
        (model.predict(tf.tensor2d(Float32Array.from(images), [MNIST_IMAGES, 784])) as tf.Tensor).dataSync(),
      );
      const argmax = (v: ArrayLike<number>, j: number) => {
        let b = 0;
        for (let q = 1; q < 10; q++) if (v[j * 10 + q]! > v[j * 10 + b]!) b = q;
        return b;
      };
      let okEmu = 0,
        okModel = 0;
      for (let j = 0; j < MNIST_IMAGES; j++) {
        if (argmax(y, j) === labels[j]) okEmu++;
        if (argmax(yModel, j) === labels[j]) okModel++;
      }
      assert.ok(
        Math.abs(okEmu - okModel) <= MNIST_IMAGES * 0.002,
        `${tag}: emulator ${okEmu} vs model ${okModel} correct of ${MNIST_IMAGES} images`,
      );
      assert.ok(okEmu > MNIST_IMAGES * 0.3, `${tag}: emulator accuracy ${okEmu / MNIST_IMAGES} on real images`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
