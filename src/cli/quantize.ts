/**
 * `hgq quantize`: the fixed-point calculator. Each value (decimal, parsed exactly: 0.1 is 1/10) is quantized
 * with the BigInt reference and printed as `<exact decimal value>\t<integer code value·2^f>`.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { formatCode } from '../fixed/format.ts';
import { quantizeCode } from '../fixed/quantize.ts';
import { parseType, TYPE_FORMS } from '../fixed/typename.ts';
import { OVERFLOW_MODES, ROUND_MODES, type Kif, type OverflowMode, type RoundMode } from '../fixed/types.ts';
import { UsageError } from './errors.ts';

function parseMode<T extends string>(value: string, modes: readonly T[], flag: string): T {
  const u = value.trim().toUpperCase();
  const name = u.startsWith('AP_') ? u.slice(3) : u;
  if (!(modes as readonly string[]).includes(name))
    throw new UsageError(`${flag} "${value}" is not a mode; use one of ${modes.join(', ')}`);
  return name as T;
}

interface Job {
  kif: Kif;
  round: RoundMode;
  overflow: OverflowMode;
}

/** One output line for one input value; UsageError (nothing printed) if the value is not a number. */
function quantizeLine(input: string, job: Job, where: string): { line: string; value: string; code: bigint } {
  let code: bigint;
  try {
    code = quantizeCode(input, job.kif, job.round, job.overflow);
  } catch (e) {
    if (e instanceof RangeError) {
      const what = /^[+-]?nan$/i.test(input.trim())
        ? 'NaN cannot be quantized (it has no fixed-point value)'
        : /not a decimal number/.test(e.message)
          ? `"${input}" is not a number (write decimals like 1.25, -3 or 2e-3)`
          : e.message;
      throw new UsageError(`${where}: ${what}`);
    }
    throw e;
  }
  const value = formatCode(code, job.kif.f);
  return { line: `${value}\t${code}`, value, code };
}

export function register(program: Command): void {
  program
    .command('quantize')
    .description('quantize decimal values to a fixed-point type; prints "<exact value><TAB><integer code = value·2^f>" per value')
    .requiredOption('-t, --type <TYPE>', `the fixed-point type: ${TYPE_FORMS}`)
    .option('-r, --round <MODE>', `rounding mode: ${ROUND_MODES.join(', ')} (default TRN, or the ap_fixed type's Q)`)
    .option('-o, --overflow <MODE>', `overflow mode: ${OVERFLOW_MODES.join(', ')} (default WRAP, or the ap_fixed type's O)`)
    .option('--json', 'also print one JSON object with all results as the last line')
    .argument('[values...]', 'decimal values; when none are given, one value per line is read from stdin')
    .addHelpText(
      'after',
      `
Values are exact decimals (0.1 means 1/10); inf/-inf clip under SAT. Negative values work as arguments
(or put them after --). With stdin, processing stops at the first bad line (exit 2).

Example:
  $ hgq quantize --type 'fixed<8,3>' --round RND --overflow SAT 1.3 -7.9
  1.3125	42
  -4	-128`,
    )
    .action(async (values: string[], opts: { type: string; round?: string; overflow?: string; json?: boolean }) => {
      let parsed;
      try {
        parsed = parseType(opts.type);
      } catch (e) {
        throw new UsageError(`--type: ${(e as Error).message}`);
      }
      const job: Job = {
        kif: parsed.kif,
        round: opts.round !== undefined ? parseMode(opts.round, ROUND_MODES, '--round') : (parsed.round ?? 'TRN'),
        overflow:
          opts.overflow !== undefined ? parseMode(opts.overflow, OVERFLOW_MODES, '--overflow') : (parsed.overflow ?? 'WRAP'),
      };
      const results: { input: string; value: string; code: string }[] = [];
      const emit = async (input: string, r: { line: string; value: string; code: bigint }): Promise<void> => {
        if (opts.json) results.push({ input, value: r.value, code: r.code.toString() });
        if (!process.stdout.write(r.line + '\n')) await once(process.stdout, 'drain'); // respect backpressure
      };
      if (values.length > 0) {
        // validate every argument before printing anything
        const lines = values.map((v, j) => quantizeLine(v, job, `value ${j + 1}`));
        for (let j = 0; j < lines.length; j++) await emit(values[j]!, lines[j]!);
      } else {
        const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
        let n = 0;
        for await (const raw of rl) {
          n++;
          const s = raw.trim();
          if (s === '') continue;
          await emit(s, quantizeLine(s, job, `stdin line ${n}`));
        }
      }
      if (opts.json) {
        const { k, i, f } = job.kif;
        process.stdout.write(JSON.stringify({ type: { k, i, f }, round: job.round, overflow: job.overflow, results }) + '\n');
      }
    });
}
