/**
 * The README's hardware step as a new user types it: `hgq convert MODEL prj --verify N` with a relative
 * output folder, from the user's own working folder, for every simulator, and with folder names holding
 * spaces, quotes and `$`; `hgq synth` on such a folder (Yosys), keeping the project hgq's. Interrupting
 * convert during verification stops the tools it started (make, g++) at once.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeProgram } from '../src/ir/serialize.ts';
import { MARKER, listFiles, readMarker } from '../src/util/fs.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';
import { alive, descendants, hgq, killAll, startHgq, waitFor } from './util/cli.ts';

const AWKWARD = `my designs/it's a $HOME "prj"`;

function setup(): string {
  const root = mkdtempSync(join(tmpdir(), 'hgq-paths-'));
  writeProgram(join(root, 'p.json'), coveringProgram(100, 40, 4));
  return root;
}

for (const [sim, format, tool] of [
  ['verilator', 'verilog', 'verilator'],
  ['icarus', 'verilog', 'iverilog'],
  ['ghdl', 'vhdl', 'ghdl'],
] as const) {
  test(`convert --verify (${sim}) into a relative output folder with spaces, quotes and $ in its name`, async (t) => {
    if (!needTool(t, tool)) return;
    const root = setup();
    try {
      mkdirSync(join(root, 'my designs'));
      const rel = AWKWARD.replace('my designs/', `my designs/${sim} `);
      const r = await hgq(
        ['convert', 'p.json', rel, '--format', format, '--latency-cutoff', '1', '--verify', '300', '--simulator', sim, '--json'],
        { cwd: root },
      );
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(readFileSync(join(root, rel, 'summary.json'), 'utf8'));
      assert.equal(s.simulator, sim);
      assert.equal(s.verified_vectors, 300);
      assert.equal(s.mismatches, 0);
      assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), s);
      assert.deepEqual(readdirSync(join(root, 'my designs')), [rel.split('/')[1]], 'no temporaries beside it');
      const m = readMarker(join(root, rel))!;
      assert.deepEqual(
        m.files,
        listFiles(join(root, rel)).filter((f) => f !== MARKER),
        "verification output is listed as hgq's",
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test("synth on a relative folder with spaces and quotes; the project stays hgq's (marker lists reports/)", async (t) => {
  if (!needTool(t, 'yosys')) return;
  const root = setup();
  try {
    mkdirSync(join(root, 'my designs'));
    const rel = AWKWARD;
    assert.equal((await hgq(['convert', 'p.json', rel, '--latency-cutoff', '1'], { cwd: root })).status, 0);
    const r = await hgq(['synth', rel, '--json'], { cwd: root });
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(rep.lut > 0);
    assert.ok(existsSync(join(root, rel, 'reports', 'yosys-xc7.json')));
    assert.equal(JSON.parse(readFileSync(join(root, rel, 'summary.json'), 'utf8')).yosys_xc7.lut, rep.lut);
    assert.ok(readMarker(join(root, rel))!.files.includes('reports/yosys-xc7.json'));
    // still hgq's: a new convert may replace it
    const again = await hgq(['convert', 'p.json', rel], { cwd: root });
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(readdirSync(join(root, 'my designs')), [rel.split('/')[1]]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('SIGTERM or SIGINT to convert during the Verilator build stops make and g++ within 2 s and removes the staging folder', async (t) => {
  if (!needTool(t, 'verilator')) return;
  const root = setup();
  const seen: number[] = [];
  try {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const run = startHgq(['convert', 'p.json', 'prj', '--verify', '100', '--simulator', 'verilator'], { cwd: root });
      // wait until the compiler runs (make → g++ → cc1plus), the slow part
      await waitFor(
        () => descendants(run.child.pid!).some((d) => /^(make|g\+\+|cc1plus)$/.test(d.name)),
        240_000,
        'make/g++ to start',
      );
      const tools = descendants(run.child.pid!);
      seen.push(...tools.map((d) => d.pid));
      run.child.kill(sig);
      const r = await run.done;
      assert.notEqual(r.status, 0, `${sig}: convert did not finish normally`);
      await waitFor(
        () => tools.every((d) => !alive(d.pid)),
        2000,
        `${sig}: ${tools.map((d) => d.name).join(', ')} to stop`,
      ).catch((e) => {
        throw new Error(
          `${(e as Error).message}; still running: ${tools
            .filter((d) => alive(d.pid))
            .map((d) => d.name)
            .join(', ')}`,
        );
      });
      assert.deepEqual(readdirSync(root).sort(), ['p.json'], `${sig}: staging folder and lock removed, nothing written`);
    }
  } finally {
    killAll(seen);
    rmSync(root, { recursive: true, force: true });
  }
});
