/**
 * Locating and running the open-source EDA tools. A missing tool is a clear error naming the Debian
 * package to install (docs/rtl.md §6).
 *
 * Every tool runs in its own process group (make spawns g++, g++ spawns cc1plus): when hgq is interrupted
 * (SIGINT, SIGTERM, SIGHUP) or exits, the whole group is killed, so no compiler keeps running for its
 * remaining seconds after the user pressed Ctrl-C or a supervisor stopped hgq.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

export const TOOL_PACKAGES: Record<string, string> = {
  verilator: 'verilator',
  iverilog: 'iverilog',
  vvp: 'iverilog',
  yosys: 'yosys',
  ghdl: 'ghdl',
  'g++': 'g++',
  make: 'make',
  tclsh: 'tcl',
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
    const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { encoding: 'utf8' });
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

// ---------------------------------------------------------------------------------------------------------
// process groups of running tools, killed with hgq

const liveGroups = new Set<ChildProcess>();
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // the tool and everything it started (make → g++ → cc1plus)
  } catch {
    // already gone
  }
}

function killAllGroups(): void {
  for (const c of liveGroups) killGroup(c);
  liveGroups.clear();
}

/**
 * While a tool runs: on SIGINT/SIGTERM/SIGHUP kill its group, then let the signal take its ordinary course
 * (other handlers, e.g. the one removing output temporaries, or node's default: exit).
 */
function onSignal(sig: NodeJS.Signals): void {
  killAllGroups();
  unhookSignals();
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  else process.emit(sig, sig);
}

const handlers = new Map<NodeJS.Signals, () => void>();
function hookSignals(): void {
  if (handlers.size > 0) return;
  for (const sig of FORWARDED) {
    const h = (): void => onSignal(sig);
    handlers.set(sig, h);
    process.on(sig, h);
  }
  process.on('exit', killAllGroups);
}

function unhookSignals(): void {
  for (const [sig, h] of handlers) process.off(sig, h);
  handlers.clear();
  process.off('exit', killAllGroups);
}

/**
 * Run a tool in its own process group; a nonzero exit is an Error carrying the tail of its output.
 * Arguments go to the tool as they are (no shell): paths with spaces or quotes need no quoting.
 */
export async function run(
  tool: string,
  args: string[],
  opts: { cwd: string; allowFail?: boolean; timeoutMs?: number },
): Promise<RunResult> {
  requireTool(tool);
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(tool, args, { cwd: opts.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    liveGroups.add(child);
    hookSignals();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const limit = opts.timeoutMs ?? 20 * 60_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, limit);
    const settle = (): void => {
      clearTimeout(timer);
      liveGroups.delete(child);
      if (liveGroups.size === 0) unhookSignals();
    };
    child.on('error', (e) => {
      settle();
      reject(new Error(`${tool} failed to run: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      settle();
      const res = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        status: code ?? -1,
        seconds: (performance.now() - t0) / 1000,
      };
      if (timedOut)
        return reject(new Error(`${tool} ${args.join(' ')} did not finish within ${Math.round(limit / 1000)} s and was stopped`));
      if (res.status !== 0 && !opts.allowFail) {
        const tail = (res.stderr + '\n' + res.stdout).trim().split('\n').slice(-30).join('\n');
        return reject(
          new Error(`${tool} ${args.join(' ')} exited with ${signal ? `signal ${signal}` : `status ${res.status}`}:\n${tail}`),
        );
      }
      resolvePromise(res);
    });
  });
}
