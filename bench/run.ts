/** `npm run bench -- <name>`: runs the default export of bench/<name>.ts (which prints one JSON line last). */
const name = process.argv[2];
if (!name || !/^[\w.-]+$/.test(name)) {
  console.error('usage: npm run bench -- <name>   (runs bench/<name>.ts)');
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { default: () => unknown };
await mod.default();
