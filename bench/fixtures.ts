/**
 * `npm run bench -- fixtures [--synth]`: the end-to-end flow on the HGQ2 checkpoints (../shared/fixtures/hgq2),
 * run through the CLI exactly as a user would:
 *
 *   hgq convert <fixture.keras> <tmp> --latency-cutoff 2 --validate N --verify N --json   (timed)
 *   hgq synth <tmp> --family xc7 --json                                                  (with --synth)
 *
 * Per fixture: EBOPs three ways — logged by HGQ2 in the file name, HGQ2's formula on the stored state
 * (src/import/ebops.ts), and our imported model's exact EBOPs (summary.json `ebops`) — then the IR cost
 * estimate, adder depth, pipeline stages, emulator-vs-model and Verilator-vs-emulator mismatches, the convert
 * wall time, and (with --synth) Yosys xc7 LUT/CARRY/FF/depth.
 *
 * Environment: HGQ_BENCH_SYNTH=1 (same as --synth), HGQ_BENCH_VECTORS (default 10000),
 * HGQ_BENCH_CUTOFF (default 2), HGQ_BENCH_FIXTURES (directory), HGQ_BENCH_ONLY (substring filter),
 * HGQ_BENCH_KEEP=1 (keep the projects; their paths are printed).
 * Yosys on the larger fixtures takes minutes; convert + verify alone is about a minute per fixture.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ebopsFromFileName, modelEbops } from '../src/import/ebops.ts';
import { loadHgq2Model } from '../src/import/hgq2-model.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repo, 'bin', 'hgq.js');

interface Row {
  fixture: string;
  ebops_logged: number | null;
  /** HGQ2's formula on the stored quantizer state, summed as HGQ2 logs it (floored per layer) */
  ebops_hgq2_formula: number;
  /** Σ of the per-layer `ebops` variables HGQ2 stored in the checkpoint */
  ebops_stored: number | null;
  /** our imported model's exact EBOPs (summary.json) */
  ebops: number | null;
  estimated_lut: number;
  adder_depth: number;
  stages: number;
  latency_cycles: number;
  validated_samples: number;
  verified_vectors: number;
  mismatches: number;
  convert_seconds: number;
  synth?: { lut: number; carry: number; ff: number; srl: number; depth: number; seconds: number };
  error?: string;
}

/** Runs the CLI; returns the parsed last stdout line (the --json object) and the wall time. */
function hgq(args: string[]): { json: Record<string, unknown>; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = (performance.now() - t0) / 1000;
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0) throw new Error(`hgq ${args[0]} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  try {
    return { json: JSON.parse(last) as Record<string, unknown>, seconds };
  } catch {
    throw new Error(`hgq ${args[0]}: last stdout line is not JSON: ${last.slice(0, 200)}`);
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);

export default async function main(): Promise<void> {
  const dir = resolve(process.env.HGQ_BENCH_FIXTURES ?? join(repo, '..', 'shared', 'fixtures', 'hgq2'));
  if (!existsSync(dir)) throw new Error(`${dir}: no fixtures directory (set HGQ_BENCH_FIXTURES)`);
  const withSynth = process.argv.includes('--synth') || process.env.HGQ_BENCH_SYNTH === '1';
  const vectors = process.env.HGQ_BENCH_VECTORS ?? '10000';
  const cutoff = process.env.HGQ_BENCH_CUTOFF ?? '2';
  const only = process.env.HGQ_BENCH_ONLY;
  const keep = process.env.HGQ_BENCH_KEEP === '1';
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.keras') && (!only || f.includes(only)))
    .sort();
  if (!files.length) throw new Error(`${dir}: no .keras fixtures${only ? ` matching "${only}"` : ''}`);

  const rows: Row[] = [];
  for (const f of files) {
    const path = join(dir, f);
    const eb = modelEbops(await loadHgq2Model(path));
    const out = mkdtempSync(join(tmpdir(), 'hgq-fixture-'));
    const prj = join(out, 'prj');
    const row: Row = {
      fixture: basename(f, '.keras'),
      ebops_logged: ebopsFromFileName(f),
      ebops_hgq2_formula: eb.totalFloored,
      ebops_stored: eb.storedTotal,
      ebops: null,
      estimated_lut: NaN,
      adder_depth: NaN,
      stages: NaN,
      latency_cycles: NaN,
      validated_samples: 0,
      verified_vectors: 0,
      mismatches: NaN,
      convert_seconds: NaN,
    };
    try {
      const c = hgq(['convert', path, prj, '--latency-cutoff', cutoff, '--validate', vectors, '--verify', vectors, '--json']);
      const s = c.json;
      Object.assign(row, {
        ebops: typeof s.ebops === 'number' ? s.ebops : null,
        estimated_lut: num(s.estimated_lut),
        adder_depth: num(s.adder_depth),
        stages: num(s.stages),
        latency_cycles: num(s.latency_cycles),
        validated_samples: num(s.validated_samples),
        verified_vectors: num(s.verified_vectors),
        mismatches: num(s.mismatches),
        convert_seconds: Math.round(c.seconds * 10) / 10,
      });
      if (withSynth) {
        const y = hgq(['synth', prj, '--family', 'xc7', '--json']).json;
        row.synth = {
          lut: num(y.lut),
          carry: num(y.carry),
          ff: num(y.ff),
          srl: num(y.srl),
          depth: num(y.depth),
          seconds: Math.round(num(y.seconds) * 10) / 10,
        };
      }
    } catch (e) {
      row.error = (e as Error).message;
    } finally {
      if (keep) console.log(`  kept ${prj}`);
      else rmSync(out, { recursive: true, force: true });
    }
    rows.push(row);
    const y = row.synth;
    console.log(
      [
        row.fixture.padEnd(44),
        `EBOPs ${row.ebops ?? '?'} (HGQ2 formula ${row.ebops_hgq2_formula}, logged ${row.ebops_logged ?? '?'})`,
        `est ${row.estimated_lut} LUT`,
        `depth ${row.adder_depth}`,
        `${row.stages} stages`,
        `validate ${row.validated_samples} / verify ${row.verified_vectors}: ${row.mismatches} mismatches`,
        `${row.convert_seconds} s`,
        y ? `yosys xc7 LUT ${y.lut} CARRY ${y.carry} FF ${y.ff} depth ${y.depth} (${y.seconds} s)` : '',
        row.error ? `ERROR ${row.error}` : '',
      ]
        .filter(Boolean)
        .join(' | '),
    );
  }
  const ok = rows.every((r) => !r.error && r.mismatches === 0 && r.verified_vectors > 0);
  console.log(
    JSON.stringify({
      fixtures: rows.length,
      latency_cutoff: Number(cutoff),
      vectors: Number(vectors),
      synth: withSynth,
      ok,
      rows,
    }),
  );
}
