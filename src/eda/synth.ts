/**
 * Yosys synthesis of a generated project for Xilinx 7-series (xc7) or UltraScale+ (xcup), reported as JSON.
 *
 * Script (docs/rtl.md §7): Yosys 0.23 folds adder trees into one multi-operand $macc cell, which maps badly;
 * `maccmap -unmap` between the coarse and the fine passes turns them back into plain adders:
 *   synth_xilinx -run begin:map_memory; maccmap -unmap; opt; synth_xilinx -run map_memory:
 * with -noiopad -noclkbuf (out-of-context: no IBUF/OBUF/BUFG). `stat -json` gives the cell counts.
 * Logic depth: `ltp` over every cell but the FD* flip-flops and SRL shift registers — the number of cells on
 * the longest combinational path between ports/registers (in a pipelined design, the deepest stage); LUT,
 * CARRY4/8 (each 4 or 8 bits of a carry chain), MUXF and INV cells each count one level.
 * These are Yosys numbers, not Vivado's.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { keepingOwnership } from '../backends/project.ts';
import { assertNotBusy, lockOutput, removeStaleTemporaries, temporaryBeside, writeFileAtomic } from '../util/fs.ts';
import { run } from './tools.ts';
import { readProjectSummary } from './summary.ts';

export type Family = 'xc7' | 'xcup';

export interface SynthReport {
  tool: string;
  family: Family;
  top: string;
  /** all LUTs (LUT1..LUT6) */
  lut: number;
  lut_by_size: Record<string, number>;
  /** CARRY4 (xc7) or CARRY8 (xcup) cells */
  carry: number;
  /** flip-flops (FDRE/FDSE/FDCE/FDPE) */
  ff: number;
  /** SRL16E/SRLC32E shift registers (Yosys packs delay chains into them) */
  srl: number;
  muxf: Record<string, number>;
  dsp: number;
  /** cells on the longest combinational path between ports/registers */
  depth: number;
  cells: Record<string, number>;
  seconds: number;
}

/** The Yosys script; `src` is the Verilog source's path as seen from the folder Yosys runs in. */
export function yosysScript(src: string, top: string, family: Family): string {
  const flags = `-family ${family} -top ${top} -noiopad -noclkbuf`;
  return [
    `read_verilog ${yosysWord(src)}`,
    `synth_xilinx ${flags} -run begin:map_memory`,
    'maccmap -unmap',
    'opt',
    `synth_xilinx ${flags} -run map_memory:`,
    'tee -o stat.json stat -json',
    // Xilinx flip-flop/SRL primitives are not Yosys' internal FF types, so -noff alone would not cut paths at them
    'tee -o ltp.txt ltp -noff * t:FD* %d t:SRL* %d',
  ].join('\n');
}

/** The summary.json file entry Yosys reads: the Verilog source (a VHDL project's Verilog twin); none for HLS. */
function synthSource(format: string): string[] {
  return format === 'hls' ? [] : [format === 'vhdl' ? 'verilog_twin' : 'source'];
}

/**
 * A path as one Yosys script word. Yosys splits script lines at whitespace and has no escape inside quotes, so
 * the script names the source by a path without spaces (synth copies it into its work folder); anything else
 * is refused rather than misread.
 */
function yosysWord(path: string): string {
  if (!/^[A-Za-z0-9_./+@,=:-]+$/.test(path))
    throw new Error(`yosys script: the path ${JSON.stringify(path)} cannot be written as a script word`);
  return path;
}

/**
 * timeoutMs: Yosys wall-clock limit (default 20 min; a 30k-op design on a busy machine needs more).
 * Yosys works in a private folder under the system temporary folder (the source copied in, so the project
 * path may hold spaces or quotes); its script, log and outputs are then copied to <dir>/reports/yosys-<family>/
 * and the report to reports/yosys-<family>.json. The project is locked meanwhile, and stays hgq's (marker).
 */
export async function synth(dir: string, opts: { family?: Family; timeoutMs?: number } = {}): Promise<SynthReport> {
  const family = opts.family ?? 'xc7';
  if (family !== 'xc7' && family !== 'xcup') throw new RangeError(`unknown family "${family}" (use xc7 or xcup)`);
  assertNotBusy(dir); // a project a live convert is still writing (maybe not there yet) is busy, not missing
  const s = readProjectSummary(dir, synthSource);
  if (s.format === 'hls')
    throw new RangeError('synth needs an RTL project (hgq convert --format verilog or vhdl); HLS C++ is synthesized by Vitis');
  const rel = s.format === 'vhdl' ? s.files.verilog_twin : s.files.source;
  if (!rel || !existsSync(join(dir, rel))) throw new RangeError(`${dir}: the Verilog source named in summary.json is missing`);
  const lock = lockOutput(dir);
  const workRoot = join(tmpdir(), `hgq-yosys-${process.getuid?.() ?? 0}`);
  removeStaleTemporaries(workRoot);
  const work = temporaryBeside(workRoot);
  try {
    mkdirSync(work.path, { recursive: true });
    copyFileSync(resolve(dir, rel), join(work.path, 'design.v'));
    writeFileSync(join(work.path, 'synth.ys'), yosysScript('design.v', s.top, family) + '\n');
    const r = await run('yosys', ['-q', '-l', 'yosys.log', '-s', 'synth.ys'], { cwd: work.path, timeoutMs: opts.timeoutMs });
    const stat = JSON.parse(readFileSync(join(work.path, 'stat.json'), 'utf8')) as {
      creator?: string;
      design: { num_cells_by_type: Record<string, number> };
    };
    const ltp = readFileSync(join(work.path, 'ltp.txt'), 'utf8');
    const version = /Yosys [0-9.]+/.exec(stat.creator ?? '')?.[0] ?? 'Yosys';
    const report = parseStat(stat.design.num_cells_by_type, ltp, family, s.top, version);
    report.seconds = r.seconds;
    await keepingOwnership(dir, () => {
      for (const f of ['synth.ys', 'yosys.log', 'stat.json', 'ltp.txt'])
        writeFileAtomic(join(dir, 'reports', `yosys-${family}`, f), readFileSync(join(work.path, f)));
      writeFileAtomic(join(dir, 'reports', `yosys-${family}.json`), JSON.stringify(report, null, 2) + '\n');
    });
    return report;
  } finally {
    work.release();
    lock.release();
  }
}

export function parseStat(cells: Record<string, number>, ltp: string, family: Family, top: string, tool = 'Yosys'): SynthReport {
  const sum = (re: RegExp): number => Object.entries(cells).reduce((a, [k, v]) => a + (re.test(k) ? v : 0), 0);
  const lut_by_size: Record<string, number> = {};
  for (let k = 1; k <= 6; k++) lut_by_size[`LUT${k}`] = cells[`LUT${k}`] ?? 0;
  const muxf: Record<string, number> = {};
  for (const k of ['MUXF7', 'MUXF8', 'MUXF9']) if (cells[k]) muxf[k] = cells[k]!;
  const m = /length=(\d+)/.exec(ltp);
  return {
    tool,
    family,
    top,
    lut: Object.values(lut_by_size).reduce((a, b) => a + b, 0),
    lut_by_size,
    carry: sum(/^CARRY[48]$/),
    ff: sum(/^FD[A-Z]*$/),
    srl: sum(/^SRL/),
    muxf,
    dsp: sum(/^DSP/),
    depth: m ? Number(m[1]) : 0,
    cells: { ...cells },
    seconds: 0,
  };
}
