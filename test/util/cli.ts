/** Running the `hgq` command from tests: spawned as `npx hgq` would run it, or in-process (no tfjs start-up). */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';

const HGQ = fileURLToPath(new URL('../../bin/hgq.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/hgq.js args` in a child process, stdin fed (or closed); async, so spawned cases can run concurrently. */
export function hgqSpawn(args: string[], stdin = ''): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [HGQ, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

/** The same, blocking. */
export function hgqSpawnSync(args: string[]): CliRun {
  const r = spawnSync(process.execPath, [HGQ, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `main(args)` in this process (a spawn costs seconds of tfjs start-up), its stderr captured: for commands
 * that fail early, and ones whose output the test reads from files.
 */
export async function hgqInProcess(args: string[]): Promise<{ status: number; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { status: await main(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}
