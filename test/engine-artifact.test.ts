// The shipped engine kernels are exactly what their source builds to (deterministic AssemblyScript build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const NAMES = ['engine.simd.wasm', 'engine.relaxed.wasm'];

test('rebuilding assembly/engine.ts reproduces src/engine/wasm/*.wasm byte for byte', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-wasm-'));
  try {
    // the two variants build in parallel processes (binaryen -O3 is single-threaded)
    await Promise.all(
      NAMES.map((n) =>
        promisify(execFile)(process.execPath, [join(root, 'scripts/build-wasm.mjs'), '--out', dir, '--only', n], { cwd: root }),
      ),
    );
    for (const name of NAMES) {
      const built = readFileSync(join(dir, name));
      const shipped = readFileSync(join(root, 'src/engine/wasm', name));
      assert.ok(
        built.equals(shipped),
        `${name}: shipped artifact (${shipped.length} B) differs from a fresh build (${built.length} B); run npm run build:wasm and commit`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
