#!/usr/bin/env node
// Builds the engine kernels (assembly/engine.ts) into src/engine/wasm/*.wasm: a simd128 build and a
// relaxed-SIMD (FMA) build. Flags are fixed so the output is deterministic; test/engine-artifact.test.ts
// rebuilds and compares byte for byte. Usage: node scripts/build-wasm.mjs [--out DIR] [--only engine.simd.wasm|engine.relaxed.wasm]
import { main } from 'assemblyscript/asc';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outIdx = process.argv.indexOf('--out');
const outDir = outIdx > 0 ? resolve(process.argv[outIdx + 1]) : join(root, 'src/engine/wasm');
const onlyIdx = process.argv.indexOf('--only');
const only = onlyIdx > 0 ? process.argv[onlyIdx + 1] : null;

export const COMMON = [
  'assembly/engine.ts',
  '-O3',
  '--noAssert',
  '--runtime',
  'stub',
  '--use',
  'abort=',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory',
  '1',
  '--maximumMemory',
  '65536',
  '--enable',
  'simd',
  '--enable',
  'threads',
  '--noExportMemory',
];
const VARIANTS = { 'engine.simd.wasm': [], 'engine.relaxed.wasm': ['--enable', 'relaxed-simd'] };

mkdirSync(outDir, { recursive: true });
if (only && !(only in VARIANTS)) {
  console.error(`build-wasm: --only takes one of ${Object.keys(VARIANTS).join(', ')}`);
  process.exit(2);
}
for (const [name, extra] of Object.entries(VARIANTS)) {
  if (only && name !== only) continue;
  const files = {};
  const { error, stderr } = await main([...COMMON, ...extra, '--outFile', name], {
    baseDir: root,
    writeFile: (f, contents) => {
      files[f] = contents;
    },
  });
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: ${name} failed: ${error.message}`);
    process.exit(1);
  }
  const bin = files[name];
  if (!bin) {
    console.error(`build-wasm: asc produced no ${name}`);
    process.exit(1);
  }
  const dst = join(outDir, name);
  writeFileSync(dst + '.tmp', bin);
  renameSync(dst + '.tmp', dst);
  console.log(`${dst}: ${bin.length} bytes`);
}
