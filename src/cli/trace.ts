/**
 * `hgq trace <model-dir|model.keras> -o <program.json> [--cmvm da|none] [--dc D] [--effort E] [--threads N]
 * [--validate N] [--json]`:
 * traces a trained, calibrated model into an IR program (written atomically) and prints the per-layer cost
 * estimate (adder bits ≈ LUTs, from the IR cost model) and latency, next to the model's exact EBOPs.
 */
import type { Command } from 'commander';
import type { Program } from '../ir/types.ts';
import { CliError, UsageError } from './errors.ts';
import { parseIntOption } from './numbers.ts';

interface TraceCliOptions {
  output: string;
  cmvm: string;
  dc?: string;
  effort?: string;
  threads?: string;
  validate?: string;
  json?: boolean;
}

export interface TraceSummary {
  model: string;
  output: string;
  cmvm: string;
  dc: number;
  ops: number;
  /** IR cost estimate (Σ adder bits ≈ LUTs) and latency in adder levels */
  cost: number;
  depth: number;
  /** the model's exact EBOPs at its current (calibrated) state */
  ebops: number;
  layers: { name: string; cost: number; ops: number; depth: number; ebops: number | null }[];
  load_ms: number;
  trace_ms: number;
  validated_samples?: number;
  mismatches?: number;
}

function parseOpts(o: TraceCliOptions): { cmvm: 'da' | 'none'; dc: number; effort?: number; cmvmThreads?: number } {
  const cmvm = o.cmvm.toLowerCase();
  if (cmvm !== 'da' && cmvm !== 'none')
    throw new UsageError(`--cmvm "${o.cmvm}" is not one of da (CMVM adder graphs), none (plain signed-digit trees)`);
  const dc = o.dc === undefined ? -1 : parseIntOption(o.dc, '--dc (-1 = unconstrained)', -1);
  const effort =
    o.effort === undefined ? undefined : parseIntOption(o.effort, '--effort (0 fast, 1 baseline, 2 default, 3 thorough)', 0, 3);
  const threads = o.threads === undefined ? undefined : parseIntOption(o.threads, '--threads (CMVM search threads)', 1, 64);
  return { cmvm, dc, ...(effort !== undefined ? { effort } : {}), ...(threads !== undefined ? { cmvmThreads: threads } : {}) };
}

function costTable(p: Program, ebopsByLayer: Map<string, number>) {
  return import('../ir/cost.ts').then(({ analyzeProgram }) => {
    const a = analyzeProgram(p);
    const layers = Object.entries(a.perLayer).map(([name, L]) => ({
      name: name || '(inputs/constants)',
      cost: L.cost,
      ops: L.ops,
      depth: L.depth,
      ebops: ebopsByLayer.get(name) ?? null,
    }));
    return { a, layers };
  });
}

export async function runTrace(path: string, o: TraceCliOptions): Promise<TraceSummary> {
  const opts = parseOpts(o);
  const validateN = o.validate === undefined ? undefined : parseIntOption(o.validate, '--validate', 1);
  const { isProgramFile } = await import('../ir/serialize.ts');
  const { assertOutputFile } = await import('../util/fs.ts');
  assertOutputFile(o.output, isProgramFile, 'an IR program'); // before tracing, which can take minutes
  const { traceModelFile } = await import('../app/trace-model.ts');
  const t = await traceModelFile(path, opts);
  const { exactEbops } = await import('../train/calibrate.ts');
  const eb = exactEbops(t.model);
  const { a, layers } = await costTable(t.program, new Map(eb.perLayer.map((l) => [l.name, l.ebops])));
  const { writeProgram } = await import('../ir/serialize.ts');
  writeProgram(o.output, t.program);
  const summary: TraceSummary = {
    model: path,
    output: o.output,
    cmvm: opts.cmvm,
    dc: opts.dc,
    ops: t.program.ops.length,
    cost: a.totalCost,
    depth: a.depth,
    ebops: eb.ebops,
    layers,
    load_ms: Math.round(t.loadMs),
    trace_ms: Math.round(t.traceMs),
  };
  if (!o.json) {
    const pad = (s: string | number, n: number) => String(s).padStart(n);
    const w = Math.max(5, ...layers.map((l) => l.name.length));
    const lines = [`${'layer'.padEnd(w)} ${pad('ops', 7)} ${pad('cost', 10)} ${pad('depth', 6)} ${pad('EBOPs', 10)}`];
    for (const l of layers)
      lines.push(`${l.name.padEnd(w)} ${pad(l.ops, 7)} ${pad(l.cost, 10)} ${pad(l.depth, 6)} ${pad(l.ebops ?? '', 10)}`);
    lines.push(
      `${'total'.padEnd(w)} ${pad(summary.ops, 7)} ${pad(summary.cost, 10)} ${pad(summary.depth, 6)} ${pad(summary.ebops, 10)}`,
    );
    lines.push(
      `wrote ${o.output} (cmvm ${opts.cmvm}${opts.dc >= 0 ? `, dc ${opts.dc}` : ''}; load ${(t.loadMs / 1000).toFixed(2)} s, trace ${(t.traceMs / 1000).toFixed(2)} s); cost = adder bits (≈ LUTs), depth = adder levels`,
    );
    process.stdout.write(lines.join('\n') + '\n');
  }
  if (validateN !== undefined) {
    const r = t.validate(validateN);
    summary.validated_samples = r.samples;
    summary.mismatches = r.mismatches;
    if (!o.json) process.stdout.write(`validate: ${r.mismatches} mismatching of ${r.samples} samples (emulator vs model)\n`);
    if (r.mismatches > 0) {
      const { FLOAT32_EXACT_BITS } = await import('../trace/check.ts');
      const why =
        r.widestBits > FLOAT32_EXACT_BITS
          ? ` (the program has ${r.widestBits}-bit wires: tfjs computes in float32, exact only up to ${FLOAT32_EXACT_BITS} bits, so the model's own inference may be rounding; the program computes the exact fixed-point result)`
          : '';
      throw new CliError(
        `the emulator disagrees with the model on ${r.mismatches} of ${r.samples} samples${why}; first: ${JSON.stringify(r.first)}`,
      );
    }
  }
  t.model.dispose();
  return summary;
}

export function register(program: Command): void {
  program
    .command('trace')
    .description('trace a trained, calibrated model (model directory or HGQ2 .keras) into a bit-exact IR program')
    .argument('<model>', 'model directory (model.json + weights.bin) or an HGQ2 .keras checkpoint')
    .requiredOption('-o, --output <program.json>', 'where to write the IR program (atomically)')
    .option('--cmvm <METHOD>', 'constant matrix products: da (CMVM adder graphs) or none (plain signed-digit sums)', 'da')
    .option('--dc <D>', 'CMVM delay constraint: adder levels allowed above the plain balanced tree (-1 = unconstrained)')
    .option(
      '--effort <E>',
      'CMVM search effort: 0 fast (large layers), 1 baseline, 2 default (more restarts on small layers), 3 thorough',
    )
    .option(
      '--threads <N>',
      'threads for the CMVM search of large layers (default: the idle cores, from the load average); the same program with any',
    )
    .option('--validate <N>', 'also compare the emulator with the model on N random inputs (exit 1 on any mismatch)')
    .option('--json', 'print one JSON summary object as the last line')
    .addHelpText(
      'after',
      `
The model must be calibrated (calibrate(model, data), as hgq's training checkpoints are): WRAP quantizer
ranges come from the data. Per-layer table: ops, cost (adder bits, ≈ LUTs), depth (adder levels), EBOPs.

Example:
  $ hgq trace runs/mnist/ckpt-3 -o mnist.program.json --validate 10000
  $ hgq emulate mnist.program.json --input x.npy -o y.npy`,
    )
    .action(async (path: string, opts: TraceCliOptions) => {
      const s = await runTrace(path, opts);
      if (opts.json) process.stdout.write(JSON.stringify(s) + '\n');
    });
}
