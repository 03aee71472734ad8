/**
 * The `hgq` command. Each subcommand lives in `src/cli/<name>.ts` and exports `register(program)`;
 * add yours to COMMANDS below (one import, one entry). Keep `register` cheap: import heavy modules (tfjs,
 * wasm) inside the action with `await import(...)`, so `hgq --help` and light commands start fast.
 * Exit codes (docs/cli.md §1): 0 ok, 2 bad input or usage (throw UsageError), 75 output busy (another live
 * hgq process holds it: OutputBusyError), 1 anything else (CliError or any other exception).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_BUSY, OutputBusyError, OutputPathError, OutputWriteError } from '../util/fs.ts';
import { watchParent } from '../app/parent-watch.ts';
import { CliError } from './errors.ts';
import { isNegativeNumber } from './numbers.ts';
import { InputFileError } from '../util/user-files.ts';
import * as quantizeCmd from './quantize.ts';
import * as cmvmCmd from './cmvm.ts';
import * as emulateCmd from './emulate.ts';
import * as convertCmd from './convert.ts';
import * as synthCmd from './synth.ts';
import * as demoCmd from './demo.ts';
import * as trainCmd from './train.ts';
import * as importCmd from './import.ts';
import * as traceCmd from './trace.ts';
import * as sweepCmd from './sweep.ts';
import * as workerCmd from './worker.ts';
import * as reportCmd from './report.ts';

const COMMANDS: { register(program: Command): void }[] = [
  quantizeCmd,
  cmvmCmd,
  emulateCmd,
  convertCmd,
  synthCmd,
  demoCmd,
  trainCmd,
  importCmd,
  traceCmd,
  sweepCmd,
  workerCmd,
  reportCmd,
];

/**
 * Commander takes a leaf command's `-1` or `-.5` as a value, but not `-inf`, `-1.` or `-2E3` (its pattern is
 * narrower): those became "unknown option". Here every negative number is a value of a leaf command; real
 * unknown options are still refused. (Short options already consumed their values before this runs.)
 */
class HgqCommand extends Command {
  override createCommand(name?: string): Command {
    return new HgqCommand(name);
  }

  override parseOptions(argv: string[]): { operands: string[]; unknown: string[] } {
    const r = super.parseOptions(argv);
    if (this.commands.length > 0 || r.unknown.length === 0) return r;
    const operands = [...r.operands];
    const unknown: string[] = [];
    let literal = false; // after `--`
    for (const a of r.unknown) {
      if (unknown.length > 0)
        unknown.push(a); // an unknown option: commander reports it, keep the rest as it was
      else if (literal) operands.push(a);
      else if (a === '--') literal = true;
      else if (!a.startsWith('-') || a === '-' || isNegativeNumber(a)) operands.push(a);
      else unknown.push(a);
    }
    return { operands, unknown };
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new HgqCommand('hgq')
    .description('High Granularity Quantization: per-weight fixed-point neural networks, carried bit-exactly to FPGA RTL')
    .version(packageVersion(), '-V, --version', 'print the hgq version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  for (const c of COMMANDS) c.register(program);
  // exitOverride is inherited only by subcommands added after it, so apply it to the whole tree
  const applyOverride = (cmd: Command): void => {
    cmd.exitOverride();
    for (const sub of cmd.commands) applyOverride(sub);
  };
  applyOverride(program);
  return program;
}

let pipeGuard = false;
/** `hgq … | head`: a closed stdout is the reader's choice, not our failure; stop quietly. */
function guardClosedPipe(): void {
  if (pipeGuard) return;
  pipeGuard = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

/** Run the CLI on `argv` (without node and script path); resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  guardClosedPipe();
  watchParent();
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit with 0; every parse error is a usage error (commander already printed it)
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof OutputBusyError) {
      // another live hgq process holds the output: retrying later can succeed (docs/cli.md §1)
      process.stderr.write(`hgq: ${e.message}\n`);
      return EXIT_BUSY;
    }
    if (e instanceof OutputPathError) {
      // where to write is bad input: a folder hgq did not write, a missing parent, an unwritable place
      process.stderr.write(`hgq: ${e.message}\n`);
      return 2;
    }
    if (e instanceof OutputWriteError) {
      process.stderr.write(`hgq: ${e.message}\n`);
      return 1;
    }
    if (e instanceof CliError) {
      process.stderr.write(`hgq: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof InputFileError) {
      // a user's file that cannot be used (library code names it): bad input
      process.stderr.write(`hgq: ${e.message}\n`);
      return 2;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`hgq: internal error: ${process.env.HGQ_DEBUG ? err.stack : err.message}\n`);
    if (!process.env.HGQ_DEBUG) process.stderr.write('hgq: (set HGQ_DEBUG=1 for a stack trace)\n');
    return 1;
  }
}
