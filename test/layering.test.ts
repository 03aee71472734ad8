/**
 * The folder layering of src/: library folders depend only downward (no folder cycles), never on the
 * application (src/cli, src/app), and the hardware side (fixed, ir, cmvm, backends) never loads tfjs.
 * Read from the import statements of every source file (static, dynamic and `new URL` references).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const SRC = join(import.meta.dirname, '..', 'src');
const APP = new Set(['cli', 'app']);
const NO_TFJS = ['fixed', 'ir', 'cmvm', 'backends'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|mjs)$/.test(e) ? [p] : [];
  });
}

/** Folder under src/ of a file ('' for files at the top of src/). */
const folderOf = (file: string): string => {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0]! : '';
};

const SPECIFIER =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|new URL\(\s*['"]([^'"]+)['"]|^import\s+['"]([^'"]+)['"]/gm;

interface Edge {
  from: string;
  to: string;
  file: string;
  spec: string;
}

function imports(): { edges: Edge[]; packages: { folder: string; file: string; spec: string }[] } {
  const edges: Edge[] = [];
  const packages: { folder: string; file: string; spec: string }[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = (m[1] ?? m[2] ?? m[3] ?? m[4])!;
      const rel = relative(SRC, file);
      if (!spec.startsWith('.')) {
        packages.push({ folder: folderOf(file), file: rel, spec });
        continue;
      }
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC)) continue;
      const [from, to] = [folderOf(file), folderOf(target)];
      if (from !== to) edges.push({ from, to, file: rel, spec });
    }
  }
  return { edges, packages };
}

/** Folder cycles as strongly connected components of more than one folder (Tarjan). */
function cycles(edges: Edge[]): string[][] {
  const adj = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!adj.has(e.from)) adj.set(e.from, new Set());
    if (!adj.has(e.to)) adj.set(e.to, new Set());
    adj.get(e.from)!.add(e.to);
  }
  const index = new Map<string, number>(),
    low = new Map<string, number>(),
    stack: string[] = [],
    on = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string): void => {
    index.set(v, n);
    low.set(v, n);
    n++;
    stack.push(v);
    on.add(v);
    for (const w of adj.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of adj.keys()) if (!index.has(v)) visit(v);
  return out;
}

const { edges, packages } = imports();

test('the import scan sees the known edges (so the checks below can fail)', () => {
  assert.ok(
    edges.some((e) => e.from === 'train' && e.to === 'layers'),
    'train → layers',
  );
  assert.ok(
    edges.some((e) => e.from === 'cli' && e.to === 'app'),
    'cli → app',
  );
  assert.ok(
    packages.some((p) => p.folder === 'layers' && p.spec === '@tensorflow/tfjs'),
    'layers → tfjs',
  );
  const e = (from: string, to: string): Edge => ({ from, to, file: '', spec: '' });
  assert.deepEqual(
    cycles([e('a', 'b'), e('b', 'c'), e('c', 'a'), e('c', 'd')]),
    [['a', 'b', 'c']],
    'a cycle through three folders is found',
  );
  assert.deepEqual(cycles([e('a', 'b'), e('b', 'c'), e('a', 'c')]), [], 'a diamond is no cycle');
});

test('library folders form no cycle; the application (cli, app) is one layer on top', () => {
  // cli and app are both application code: merge them into one node before looking for cycles
  const merged = edges
    .map((e) => ({ ...e, from: APP.has(e.from) ? 'cli+app' : e.from, to: APP.has(e.to) ? 'cli+app' : e.to }))
    .filter((e) => e.from !== e.to);
  const found = cycles(merged);
  const explain = found.map(
    (c) =>
      c.join(' ↔ ') +
      ': ' +
      merged
        .filter((e) => c.includes(e.from) && c.includes(e.to))
        .map((e) => `${e.file} → ${e.spec}`)
        .join(', '),
  );
  assert.deepEqual(explain, []);
});

test('library folders never import the application (src/cli, src/app)', () => {
  const up = edges.filter((e) => !APP.has(e.from) && APP.has(e.to)).map((e) => `${e.file} → ${e.spec}`);
  assert.deepEqual(up, []);
});

test('fixed, ir, cmvm and backends stay free of tfjs', () => {
  const bad = packages
    .filter((p) => NO_TFJS.includes(p.folder) && p.spec.startsWith('@tensorflow/'))
    .map((p) => `${p.file} → ${p.spec}`);
  const viaFolders = edges
    .filter((e) => NO_TFJS.includes(e.from) && !NO_TFJS.includes(e.to) && e.to !== 'util')
    .map((e) => `${e.file} → ${e.spec}`);
  assert.deepEqual([...bad, ...viaFolders], []);
});
