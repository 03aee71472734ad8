#!/usr/bin/env node
// Compiles src/ to dist/ (JavaScript + .d.ts) for the published package, then copies the files the code loads at
// run time by URL (the engine's .wasm kernels and its worker_threads .mjs scripts) and removes outputs whose
// source is gone. Incremental: a rebuild with nothing changed takes a few seconds.
//
// Run by npm's `prepare` (npm ci / install in the repository, npm pack / publish). In the repository nothing
// needs dist/ (bin/hgq.js and the tests run the TypeScript sources through tsx), so during `npm ci` / `npm install`
// a failed build is a warning, never a failed install; for `npm pack` / `publish` (and `npm run build`) it is an error.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
/** extensions of files under src/ that the code reads at run time (new URL(..., import.meta.url)) */
const ASSETS = new Set(['.wasm', '.mjs']);
const lenient = ['ci', 'install'].includes(process.env.npm_command ?? '');

function fail(message) {
  if (lenient) {
    process.stderr.write(
      `hgq build: warning: ${message}; dist/ (the published package's JavaScript) may be missing or stale; the repository runs from src/ and does not need it.\n`,
    );
    process.exit(0);
  }
  process.stderr.write(`hgq build: ${message}\n`);
  process.exit(1);
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** The source file a dist/ output came from (x.js, x.d.ts → x.ts; assets → themselves). */
function sourceOf(out) {
  const rel = relative(dist, out);
  if (rel.endsWith('.d.ts')) return join(src, rel.slice(0, -5) + '.ts');
  if (rel.endsWith('.js')) return join(src, rel.slice(0, -3) + '.ts');
  return join(src, rel);
}

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  fail('TypeScript is not installed (a devDependency: run npm ci without --omit=dev)');
}
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (r.status !== 0) fail(`tsc -p tsconfig.build.json failed (exit ${r.status ?? r.signal})`);

for (const f of walk(src)) {
  if (!ASSETS.has(extname(f))) continue;
  const to = join(dist, relative(src, f));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(f, to);
}
// tsc rewrites the sources' './x.ts' specifiers to './x.js' in JavaScript only; do the same in the declarations,
// which TypeScript before 5.0 (and some tools) cannot read with '.ts' specifiers
const TS_SPECIFIER = /((?:from\s+|import\(\s*)['"])(\.{1,2}\/[^'"]*)\.ts(['"])/g;
for (const f of walk(dist)) {
  if (!f.endsWith('.d.ts')) continue;
  const text = readFileSync(f, 'utf8');
  const fixed = text.replace(TS_SPECIFIER, '$1$2.js$3');
  if (fixed !== text) writeFileSync(f, fixed);
}
// outputs of renamed or deleted sources would otherwise ship in the package
for (const f of walk(dist)) if (!f.endsWith('.tsbuildinfo') && !existsSync(sourceOf(f))) rmSync(f);
