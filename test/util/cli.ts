/**
 * Running the `hgq` CLI from tests (not a test file itself): spawned as `npx hgq` would run it (in the repo
 * root, or a chosen working folder, under a shell for `ulimit`), watching the processes it starts (/proc), or
 * in-process (no tfjs start-up).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const HGQ = join(import.meta.dirname, '..', '..', 'bin', 'hgq.js');
const ROOT = join(import.meta.dirname, '..', '..');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/hgq.js args` in the repo root, stdin fed (or closed); async, so spawned cases can run concurrently. */
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

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `hgq args` (cwd default: this process's); `done` resolves when it exits. */
export function startHgq(
  args: string[],
  opts: { cwd?: string; shellPrefix?: string } = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = opts.shellPrefix
    ? spawn('sh', ['-c', `${opts.shellPrefix}; exec "$0" "$@"`, process.execPath, HGQ, ...args], { cwd: opts.cwd })
    : spawn(process.execPath, [HGQ, ...args], { cwd: opts.cwd });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  return { child, done };
}

export function hgq(args: string[], opts: { cwd?: string; shellPrefix?: string } = {}): Promise<CliResult> {
  return startHgq(args, opts).done;
}

/** Live (not zombie) processes below `pid`, from /proc. */
export function descendants(pid: number): { pid: number; name: string }[] {
  const children = new Map<number, { pid: number; name: string }[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const name = stat.slice(stat.indexOf('(') + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (state === 'Z' || state === 'X') continue;
    const list = children.get(Number(ppid)) ?? [];
    list.push({ pid: Number(e), name });
    children.set(Number(ppid), list);
  }
  const out: { pid: number; name: string }[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(pid);
  return out;
}

/** Whether process `pid` still runs (exists and is not a zombie). */
export function alive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Polls `pred` every 50 ms until it returns a truthy value or `ms` pass (then throws `what`). */
export async function waitFor<T>(pred: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kills stray processes a test left (e.g. tools of a SIGKILLed hgq), by pid. */
export function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * Runs the CLI in this process (fast: no node start), capturing stderr. Only for commands that stop before
 * printing to stdout, which is the test runner's channel.
 */
export async function hgqInProcess(args: string[]): Promise<{ status: number; stderr: string }> {
  const { main } = await import('../../src/cli/main.ts');
  const write = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { status: await main(args), stderr: err };
  } finally {
    process.stderr.write = write;
  }
}
