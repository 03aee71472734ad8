/**
 * `hgq import <model.keras> -o <model-dir>`: read an HGQ2 checkpoint, build the equivalent hgq model (same
 * weights and quantizer state) and save it in our tfjs format. The folder is written as a whole (staging
 * folder + swap, src/util/fs.ts): on any error nothing is left behind, and a folder hgq did not write is
 * never replaced.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { assertCreatableDir, MARKER, OutputPathError, readMarker, whyNotReplaceable } from '../util/fs.ts';
import { UsageError } from './errors.ts';

export interface ImportSummary {
  input: string;
  output: string;
  layers: { name: string; className: string; outputShape: (number | null)[]; params: number; ebops: number | null }[];
  /** number of stored values: weights, batch-norm statistics, quantizer parameters, β */
  params: number;
  /** Σ per-layer EBOPs cast to integers, as HGQ2 logs it, from the imported state */
  ebops: number;
  ebops_exact: number;
  /** the EBOPs in the checkpoint's file name (what HGQ2 logged when saving), if any */
  ebops_logged: number | null;
}

/**
 * The output folder may be absent, empty, or a model folder hgq wrote and marked, holding nothing else
 * (src/util/fs.ts); checked before the archive is read. A model folder of an earlier hgq (model.json, no
 * marker) is refused with what to do: nothing shows which of its files are hgq's.
 */
function checkOutput(out: string, modelKind: string): void {
  try {
    assertCreatableDir(out);
  } catch (e) {
    if (e instanceof OutputPathError) throw new UsageError(`-o ${e.message}`);
    throw e;
  }
  const why = whyNotReplaceable(out, [modelKind]);
  if (!why) return;
  if (readMarker(out) === null && existsSync(join(out, 'model.json')))
    throw new UsageError(
      `-o ${out} holds a model saved by an earlier hgq (model.json, but no ${MARKER}), and hgq can no longer tell whether every file in it is its own, ` +
        `so it will not replace it: move out anything you added and remove the folder (rm -r ${JSON.stringify(out)}), or choose another folder`,
    );
  throw new UsageError(`-o ${why}`);
}

export async function runImport(input: string, out: string): Promise<ImportSummary> {
  if (!existsSync(input)) throw new UsageError(`${input}: no such file`);
  if (!statSync(input).isFile()) throw new UsageError(`${input}: not a file (expected an HGQ2 .keras archive)`);
  const { saveModel, MODEL_KIND } = await import('../train/io.ts');
  checkOutput(out, MODEL_KIND);
  const { initBackend } = await import('../backend.ts');
  await initBackend();
  const { loadHgq2Model } = await import('../import/hgq2-model.ts');
  const { buildHgqModel, hgq2StyleEbops } = await import('../import/hgq2-build.ts');
  const { ebopsFromFileName } = await import('../import/ebops.ts');
  let model;
  try {
    model = buildHgqModel(await loadHgq2Model(input));
  } catch (e) {
    // a bad, truncated or unsupported archive is bad input; the messages name the file and the layer
    throw new UsageError((e as Error).message);
  }
  const eb = hgq2StyleEbops(model);
  const perLayer = new Map(eb.layers.map((l) => [l.name, l.ebops]));
  await saveModel(model, out);
  const layers = model.layers.map((l) => ({
    name: l.name,
    className: l.getClassName(),
    outputShape: l.outputShape as (number | null)[],
    params: l.countParams(),
    ebops: perLayer.has(l.name) ? Math.round(perLayer.get(l.name)! * 1000) / 1000 : null,
  }));
  model.dispose();
  return {
    input: resolve(input),
    output: resolve(out),
    layers,
    params: layers.reduce((s, l) => s + l.params, 0),
    ebops: eb.total,
    ebops_exact: Math.round(eb.exact * 1000) / 1000, // float32 sums: 3 decimals are meaningful
    ebops_logged: ebopsFromFileName(input),
  };
}

function printSummary(s: ImportSummary): void {
  const rows = s.layers.map((l) => [
    l.name,
    l.className,
    `[${l.outputShape.map((d) => d ?? 'batch').join(',')}]`,
    String(l.params),
    l.ebops === null ? '' : l.ebops.toFixed(2),
  ]);
  const head = ['layer', 'class', 'output', 'variables', 'EBOPs'];
  const w = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, j) => (j >= 3 ? c.padStart(w[j]!) : c.padEnd(w[j]!)))
      .join('  ')
      .trimEnd();
  process.stdout.write(line(head) + '\n');
  for (const r of rows) process.stdout.write(line(r) + '\n');
  const logged =
    s.ebops_logged === null
      ? ''
      : ` (HGQ2 logged ${s.ebops_logged}: ${(((s.ebops - s.ebops_logged) / s.ebops_logged) * 100).toFixed(2)}%)`;
  process.stdout.write(
    `${s.layers.length} layers, ${s.params} variables (weights and quantizer state), EBOPs ${s.ebops}${logged}\n`,
  );
  process.stdout.write(`saved to ${s.output}\n`);
}

export function register(program: Command): void {
  program
    .command('import')
    .description('import an HGQ2 checkpoint (.keras) as an hgq model directory with the same weights and quantizer state')
    .argument('<model.keras>', 'Keras 3 archive written by HGQ2')
    .requiredOption('-o, --out <model-dir>', 'output model directory (model.json + weights.bin), written atomically')
    .option('--json', 'print the summary as one JSON object on the last line')
    .action(async (input: string, opts: { out: string; json?: boolean }) => {
      const s = await runImport(input, opts.out);
      printSummary(s);
      if (opts.json) process.stdout.write(JSON.stringify(s) + '\n');
    });
}
