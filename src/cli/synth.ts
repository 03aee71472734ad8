/**
 * `hgq synth <project-dir>`: Yosys synthesis for Xilinx xc7 / xcup; prints LUT (by size), CARRY, FF, MUXF,
 * DSP and logic depth, stores them in reports/yosys-<family>.json and in summary.json (key yosys_<family>).
 */
import type { Command } from 'commander';
import { CliError, UsageError } from './errors.ts';

export function register(program: Command): void {
  program
    .command('synth')
    .description('synthesize a project with Yosys (synth_xilinx) and report LUT/CARRY/FF/MUXF counts and logic depth')
    .argument('<project-dir>', 'a directory written by `hgq convert` (verilog or vhdl)')
    .option('--family <FAMILY>', 'xc7 (7-series) or xcup (UltraScale+)', 'xc7')
    .option('--json', 'print the report as one JSON line at the end')
    .addHelpText(
      'after',
      '\nCounts are Yosys 0.23 cells, not Vivado utilization. depth = cells (LUT, CARRY4/8, MUXF, INV) on the longest path between ports and flip-flops.',
    )
    .action(async (dir: string, opts: { family: string; json?: boolean }) => {
      if (opts.family !== 'xc7' && opts.family !== 'xcup')
        throw new UsageError(`--family "${opts.family}" is not one of xc7, xcup`);
      const { synth } = await import('../eda/synth.ts');
      const { ToolMissingError } = await import('../eda/tools.ts');
      const { readProjectSummary } = await import('../eda/summary.ts');
      const { updateSummary } = await import('../backends/project.ts');
      let r;
      try {
        r = await synth(dir, { family: opts.family as 'xc7' | 'xcup' });
      } catch (e) {
        if (e instanceof ToolMissingError) throw new CliError(e.message);
        if (e instanceof RangeError) throw new UsageError(e.message);
        throw e;
      }
      const s = readProjectSummary(dir) as unknown as Record<string, unknown>;
      s[`yosys_${opts.family}`] = { lut: r.lut, carry: r.carry, ff: r.ff, srl: r.srl, muxf: r.muxf, dsp: r.dsp, depth: r.depth };
      await updateSummary(dir, s as never);
      if (!opts.json) {
        const sizes = Object.entries(r.lut_by_size)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        const muxf =
          Object.entries(r.muxf)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || 'none';
        process.stdout.write(
          `${r.tool} ${r.family} ${r.top}: LUT ${r.lut} (${sizes}), CARRY ${r.carry}, FF ${r.ff}, SRL ${r.srl}, MUXF ${muxf}, DSP ${r.dsp}, depth ${r.depth} (${r.seconds.toFixed(1)} s)\n`,
        );
      } else process.stdout.write(JSON.stringify(r) + '\n');
    });
}
