#!/usr/bin/env node
// In the repository (src/ present) this runs the TypeScript CLI through tsx, so `npx hgq` works right after
// `npm ci` and always runs the current sources, with no build step. The published package ships no src/: it
// runs the compiled JavaScript in dist/ (built by `npm run build`, which `npm pack` runs).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let main;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(source.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
