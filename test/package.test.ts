/**
 * The published package works from another project as a user gets it: `npm pack` (whose `prepare` builds
 * dist/), the tarball installed into a fresh project outside the repository, then
 *  - examples/library.mjs (the example docs/library.md and the README show) runs there as plain Node ESM:
 *    builds an HGQ model, trains it on the wasm engine, calibrates, saves and reloads it, traces it, checks the
 *    emulator against model.predict and writes a Verilog project;
 *  - the package's `hgq` command runs from the compiled dist/ (and converts the example's saved model);
 *  - a TypeScript consumer type-checks against the shipped .d.ts.
 * Dependencies come from the npm cache when it has them (--prefer-offline), else from the registry.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const REPO = join(import.meta.dirname, '..');
const EXAMPLE = join(REPO, 'examples', 'library.mjs');

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: '1' } });
  if (r.error) throw r.error;
  return r;
}

function check(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A TypeScript program using the public API; each @ts-expect-error proves a type is real (not `any`). */
const CONSUMER_TS = `
import { tf, QDense, QConv2D, QFlatten, QBatchNormDense, QMaxPooling2D, QAdd, fit, BetaScheduler, BetaPidCallback, ParetoCheckpoint, piecewiseSchedule,
  calibrate, exactEbops, saveModel, loadModel, trace, emulate, compileProgram, writeProject, generateProject, verify, synth,
  solveCmvm, quantize, readCsv, initBackend, withQuantizerConfig, type Program, type FitResult, type Summary } from 'hgq';

export async function main(): Promise<number> {
  const backend: string = await initBackend();
  const model = withQuantizerConfig({ weight: { b0: 6 } }, () => tf.sequential({ layers: [
    new QConv2D({ filters: 2, kernelSize: 3, inputShape: [6, 6, 1] }),
    new QFlatten({}),
    new QBatchNormDense({ units: 8, activation: 'relu' }),
    new QDense({ units: 3 }),
  ] }));
  // pooling and merge classes are made by a factory: their names still serve as types
  const pool: QMaxPooling2D = new QMaxPooling2D({ poolSize: 2 });
  const add: QAdd = new QAdd({});
  // @ts-expect-error a pooling layer is not a merge layer
  const notAdd: QAdd = pool;
  void [add, notAdd];
  const x = tf.zeros([16, 6, 6, 1]);
  const r: FitResult = await fit(model, x, tf.zeros([16, 3]), { loss: 'softmax_cross_entropy', epochs: 1, batchSize: 8,
    callbacks: [new BetaScheduler(piecewiseSchedule([{ epoch: 0, beta: 1e-6, interp: 'constant' }])),
      new BetaPidCallback({ targetEbops: 1000 }), new ParetoCheckpoint({ dir: 'ckpt' })] });
  const engine: 'wasm' | 'tfjs' = r.engine;
  const ebops: number = calibrate(model, x).ebops + exactEbops(model).ebops;
  await saveModel(model, 'm');
  const p: Program = trace(await loadModel('m'), { cmvm: 'da' });
  const y: Float64Array = emulate(p, new Float64Array(36)).map((v, j) => v + compileProgram(p).run(new Float64Array(36), 1)[j]!);
  const s: Summary = writeProject(p, 'prj', { format: 'verilog', latencyCutoff: 2 });
  const files: Map<string, string> = generateProject(p).files;
  const v: number = (await verify('prj', { vectors: 10 })).mismatches + (await synth('prj')).lut;
  const c: number = solveCmvm([[1, 2]], [{ qint: { min: -1, max: 1, step: 0.5 } }]).program.ops.length;
  const q: number = quantize(1.3, { k: 1, i: 3, f: 4 }, 'RND', 'SAT') + readCsv('x.csv').data.length;
  // @ts-expect-error: the loss names are checked
  await fit(model, x, x, { loss: 'hinge', epochs: 1, batchSize: 8 });
  // @ts-expect-error: a program is not a model
  trace(p);
  // @ts-expect-error: the summary's fields are typed
  const bad: string = s.latency_cycles;
  return backend.length + (engine === 'wasm' ? 1 : 0) + ebops + y.length + files.size + v + c + q + bad.length;
}
`;

test('the packed tarball installs into a fresh project: the library example runs, the bin works, the types check', {
  timeout: 600_000,
}, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'hgq-package-'));
  const time: Record<string, number> = {};
  const timed = <T>(name: string, f: () => T): T => {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      time[name] = Math.round((performance.now() - t0) / 100) / 10;
    }
  };
  try {
    timed('pack', () => check(run('npm', ['pack', '--pack-destination', work], REPO), 'npm pack'));
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a .tgz');
    const listed = check(run('tar', ['tzf', join(work, tarball)], work), 'tar').split('\n');
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'dist/engine/worker.mjs',
      'dist/cmvm/worker.mjs',
      'dist/engine/wasm/engine.simd.wasm',
      'dist/engine/wasm/engine.relaxed.wasm',
      'bin/hgq.js',
    ])
      assert.ok(listed.includes(`package/${f}`), `the tarball holds ${f}`);
    assert.ok(!listed.some((f) => /^package\/(src|test|bench|assembly)\//.test(f)), 'no sources or tests in the tarball');

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'hgq-consumer', private: true, type: 'module' }));
    timed('install', () =>
      check(run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball)], app), 'npm install'),
    );
    // the package runs its compiled JavaScript: the TypeScript loader is a development tool only
    assert.ok(!existsSync(join(app, 'node_modules', 'tsx')), 'tsx is not installed with the package');

    // the README's example, unchanged, as plain Node ESM
    copyFileSync(EXAMPLE, join(app, 'library.mjs'));
    const out = timed('example', () => check(run(process.execPath, ['library.mjs', 'out'], app), 'node library.mjs'));
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as {
      engine: string;
      accuracy: number;
      ebops: number;
      ops: number;
      mismatches: number;
      top: string;
    };
    assert.equal(r.engine, 'wasm', 'trained on the wasm engine');
    assert.ok(r.accuracy > 0.5, `it learned something (accuracy ${r.accuracy}; chance is 0.125)`);
    assert.ok(Number.isInteger(r.ebops) && r.ebops > 0, `exact EBOPs after calibration: ${r.ebops}`);
    assert.equal(r.mismatches, 0, 'the emulator agrees with model.predict');
    for (const f of ['model/model.json', 'model/weights.bin', 'prj/summary.json', 'prj/program.json', `prj/src/${r.top}.v`])
      assert.ok(existsSync(join(app, 'out', f)), `the example wrote ${f}`);
    const summary = JSON.parse(readFileSync(join(app, 'out', 'prj', 'summary.json'), 'utf8')) as { top: string; format: string };
    assert.deepEqual([summary.top, summary.format], [r.top, 'verilog']);

    // the installed command runs from dist/ (no src/ in the package)
    const bin = join(app, 'node_modules', '.bin', 'hgq');
    const q = check(
      run(bin, ['quantize', '--type', 'fixed<8,3>', '--round', 'RND', '--overflow', 'SAT', '1.3'], app),
      'hgq quantize',
    );
    assert.equal(q.trim(), '1.3125\t42');
    const conv = timed('convert', () =>
      check(run(bin, ['convert', join('out', 'model'), join('out', 'prj2'), '--validate', '200', '--json'], app), 'hgq convert'),
    );
    const cs = JSON.parse(conv.trim().split('\n').at(-1)!) as { validated_samples: number; ebops: number };
    assert.deepEqual(
      [cs.validated_samples, cs.ebops],
      [200, r.ebops],
      'hgq convert reads the saved model: validated, same exact EBOPs',
    );

    // the CMVM search's helper threads run the compiled solver in the package (no src/, no tsx compile)
    const pkg = join(app, 'node_modules', 'hgq', 'dist', 'cmvm');
    writeFileSync(
      join(app, 'helpers.mjs'),
      `import { PARALLEL } from ${JSON.stringify(join(pkg, 'parallel.js'))};
import { solveCmvm } from ${JSON.stringify(join(pkg, 'solve.js'))};
Object.assign(PARALLEL, { minEntries: 0, helperFirst: true });
const W = Array.from({ length: 12 }, (_, r) => Array.from({ length: 12 }, (_, c) => ((r * 7 + c * 13) % 31) - 15));
const inputs = W[0].map(() => ({ qint: { min: -8, max: 7.75, step: 0.25 } }));
const one = solveCmvm(W, inputs, { effort: 1, threads: 1 });
const two = solveCmvm(W, inputs, { effort: 1, threads: 2 });
console.log(JSON.stringify({ remote: PARALLEL.remoteJobs, same: JSON.stringify(one.program) === JSON.stringify(two.program) }));
`,
    );
    const helpers = JSON.parse(check(run(process.execPath, ['helpers.mjs'], app), 'cmvm helper threads').trim());
    assert.deepEqual(helpers, { remote: helpers.remote, same: true }, 'the same program with a helper thread');
    assert.ok(helpers.remote > 0, 'a job ran on the helper thread (it loaded dist/cmvm/solve.js)');

    // a TypeScript consumer against the shipped declarations (tfjs's own have errors under strict lib
    // checking, so diagnostics inside @tensorflow are not ours to judge; everything else must be clean)
    writeFileSync(join(app, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          typeRoots: [join(REPO, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const tc = timed('tsc', () => run(process.execPath, [tsc, '-p', app, '--pretty', 'false'], app));
    const diagnostics = tc.stdout.split('\n').filter((l) => /error TS\d+/.test(l) && !l.startsWith('node_modules/@tensorflow/'));
    assert.deepEqual(diagnostics, [], 'the consumer and the shipped .d.ts type-check');
    assert.match(tc.stdout, /node_modules\/@tensorflow\//, 'tsc checked the libraries too (skipLibCheck off)');
  } finally {
    t.diagnostic(`seconds: ${JSON.stringify(time)}`);
    rmSync(work, { recursive: true, force: true });
  }
});

test('the library example in docs/library.md (and the README, where shown) is examples/library.mjs verbatim', () => {
  const example = readFileSync(EXAMPLE, 'utf8');
  const block = '```js\n' + example + '```';
  assert.ok(readFileSync(join(REPO, 'docs', 'library.md'), 'utf8').includes(block), 'docs/library.md shows examples/library.mjs');
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const first = example.split('\n')[0]!;
  if (readme.includes('```js\n' + first)) assert.ok(readme.includes(block), 'README.md shows examples/library.mjs verbatim');
});
