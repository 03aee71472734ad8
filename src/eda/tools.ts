/**
 * Locating and running the open-source EDA tools. A missing tool is a clear error naming the Debian
 * package to install (docs/rtl.md §6).
 */
import { spawnSync } from 'node:child_process';

export const TOOL_PACKAGES: Record<string, string> = {
  verilator: 'verilator',
  iverilog: 'iverilog',
  vvp: 'iverilog',
  yosys: 'yosys',
  ghdl: 'ghdl',
  'g++': 'g++',
  make: 'make',
};

export class ToolMissingError extends Error {
  constructor(readonly tool: string) {
    const pkg = TOOL_PACKAGES[tool] ?? tool;
    super(`${tool} is not installed (or not on PATH); install it with: apt-get install ${pkg}`);
    this.name = 'ToolMissingError';
  }
}

const found = new Map<string, boolean>();

export function hasTool(tool: string): boolean {
  let ok = found.get(tool);
  if (ok === undefined) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
    ok = r.status === 0 && r.stdout.trim() !== '';
    found.set(tool, ok);
  }
  return ok;
}

export function requireTool(tool: string): void {
  if (!hasTool(tool)) throw new ToolMissingError(tool);
}

export interface RunResult {
  stdout: string;
  stderr: string;
  status: number;
  seconds: number;
}

/** Run a tool synchronously; a nonzero exit is an Error carrying the tail of its output. */
export function run(tool: string, args: string[], opts: { cwd: string; allowFail?: boolean; timeoutMs?: number }): RunResult {
  requireTool(tool);
  const t0 = performance.now();
  const r = spawnSync(tool, args, { cwd: opts.cwd, encoding: 'utf8', maxBuffer: 1 << 28, timeout: opts.timeoutMs ?? 20 * 60_000 });
  const res = { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status ?? -1, seconds: (performance.now() - t0) / 1000 };
  if (r.error) throw new Error(`${tool} failed to run: ${r.error.message}`);
  if (res.status !== 0 && !opts.allowFail) {
    const tail = (res.stderr + '\n' + res.stdout).trim().split('\n').slice(-30).join('\n');
    throw new Error(`${tool} ${args.join(' ')} exited with status ${res.status}:\n${tail}`);
  }
  return res;
}
