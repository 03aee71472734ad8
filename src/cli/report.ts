/** `hgq report RUN_DIR [-o file.html]`: a self-contained HTML report of a training run (docs/report.md). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from './errors.ts';

interface ReportOpts {
  output?: string;
  checkpoint?: string;
  luts?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('report')
    .description(
      'write one self-contained HTML page for a training run: Pareto front, training curves, per-layer bit widths, EBOPs, LUT estimates and pruning',
    )
    .argument('<run-dir>', 'a run folder written by hgq train or hgq demo --out')
    .option('-o, --output <FILE>', 'where to write the page (default RUN_DIR/report.html)')
    .option('--checkpoint <PATH|EPOCH>', 'checkpoint to detail: its path as in front.json, or its epoch (default: the best)')
    .option('--no-luts', 'skip the per-layer LUT estimates (they trace the checkpoint)')
    .option('--json', 'print {"report": PATH} as the last line')
    .action(async (runDir: string, o: ReportOpts) => {
      const { assertOutputFile, OutputPathError } = await import('../util/fs.ts');
      const { writeReport, isReportFile, RunFolderError } = await import('../app/report.ts');
      const { initBackend } = await import('../backend.ts');
      let path: string;
      try {
        // before the LUT estimates (they trace): a page hgq wrote is replaced, any other file is kept
        const out = o.output ?? join(runDir, 'report.html');
        if (o.output !== undefined || existsSync(out)) assertOutputFile(out, isReportFile, 'a report page');
        await initBackend();
        path = await writeReport(runDir, { out: o.output, checkpoint: o.checkpoint, estimateLuts: o.luts !== false });
      } catch (e) {
        if (e instanceof RunFolderError || e instanceof OutputPathError) throw new UsageError(e.message);
        throw e;
      }
      process.stdout.write(o.json ? JSON.stringify({ report: path }) + '\n' : `wrote ${path}\n`);
    });
}
