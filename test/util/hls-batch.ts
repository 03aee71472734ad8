/**
 * Many HLS programs in one g++ binary (for the HLS backend tests): each program's generated C++ becomes
 * one top function `tK` in a single translation unit (the ap_fixed headers are parsed once), and a driver
 * feeds each top its vectors and prints every output element's bit pattern. Element values cross the
 * C++ boundary as two's-complement bit patterns of their own bus field (≤ 52 bits, as vectors.ts), so
 * nothing is rounded on the way in or out.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apType, writeHls } from '../../src/backends/hls.ts';
import { type BusField, type BusLayout, inputLayout, outputLayout } from '../../src/backends/layout.ts';
import type { Program } from '../../src/ir/types.ts';

export interface HlsCase {
  program: Program;
  /** port values, count × nIn (on the input fields' grids) */
  inputs: Float64Array;
  count: number;
  /** replaces the generated C++ body before compiling (to check that a wrong model is caught) */
  mutate?: (cpp: string) => string;
}

/** Per case: the output bit patterns (count × nOut, field-width two's complement, as BigInt). */
export type HlsRun = bigint[][];

/** Bit pattern of value `x` on field `f` (x on the field's grid and in its range). */
export function fieldPattern(f: BusField, x: number): bigint {
  if (f.w === 0) return 0n;
  const code = BigInt(x * 2 ** -f.lsb);
  return code < 0n ? code + (1n << BigInt(f.w)) : code;
}

function fieldType(f: BusField): string {
  return apType({ w: f.w, lsb: f.lsb, signed: f.signed });
}

/** Reads element j of the input bus from a hex pattern into inp[j]; writes output element j's pattern. */
function driver(top: string, il: BusLayout, ol: BusLayout): string {
  const nIn = Math.max(1, il.fields.length);
  const nOut = Math.max(1, ol.fields.length);
  const load = il.fields
    .map((f, j) =>
      f.w === 0
        ? `    inp[${j}] = 0;`
        : `    { unsigned long long c; if (std::scanf("%llx", &c) != 1) std::abort(); ${fieldType(f)} x; x.range(${f.w - 1}, 0) = ap_uint<${f.w}>(c); inp[${j}] = x; }`,
    )
    .join('\n');
  const store = ol.fields
    .map((f, j) =>
      f.w === 0
        ? `    std::printf("0 ");`
        : `    { ${fieldType(f)} y = outp[${j}]; std::printf("%llx ", (unsigned long long)ap_uint<${f.w}>(y.range(${f.w - 1}, 0)).to_uint64()); }`,
    )
    .join('\n');
  return `static void run_${top}(long n) {
  for (long v = 0; v < n; v++) {
    ${top}_in_t inp[${nIn}];
    ${top}_out_t outp[${nOut}];
${load || '    inp[0] = 0;'}
    ${top}(inp, outp);
${store}
    std::printf("\\n");
  }
}
`;
}

/**
 * Compile all cases into one binary against the ap_fixed headers in `apInclude` and run it.
 * Returns, per case, the output patterns. Throws with g++'s message when compiling fails.
 */
export function runHlsBatch(
  cases: HlsCase[],
  apInclude: string,
  opts: { keep?: boolean } = {},
): { outputs: HlsRun[]; compileSeconds: number } {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-hls-batch-'));
  try {
    const parts: string[] = ['#include <cstdio>', '#include <cstdlib>', '#include <ap_int.h>', '#include <ap_fixed.h>'];
    const stdin: string[] = [];
    cases.forEach((c, k) => {
      const top = `t${k}`;
      const il = inputLayout(c.program);
      const ol = outputLayout(c.program);
      writeFileSync(join(dir, `${top}.h`), writeHls(c.program, top, { header: true }));
      const body = writeHls(c.program, top);
      writeFileSync(join(dir, `${top}.cpp`), c.mutate ? c.mutate(body) : body);
      parts.push(`#include "${top}.cpp"`, driver(top, il, ol));
      const n = il.fields.length;
      stdin.push(`${k} ${c.count}`);
      for (let v = 0; v < c.count; v++) {
        const line: string[] = [];
        il.fields.forEach((f, j) => {
          if (f.w > 0) line.push(fieldPattern(f, c.inputs[v * n + j]!).toString(16));
        });
        stdin.push(line.join(' '));
      }
    });
    parts.push(`int main() {
  long k, n;
  while (std::scanf("%ld %ld", &k, &n) == 2) {
    switch (k) {
${cases.map((_, k) => `      case ${k}: run_t${k}(n); break;`).join('\n')}
      default: std::abort();
    }
  }
  return 0;
}
`);
    writeFileSync(join(dir, 'main.cpp'), parts.join('\n'));
    const t0 = Date.now();
    try {
      execFileSync(
        'g++',
        ['-std=c++14', '-O0', '-w', '-I', apInclude, '-I', dir, join(dir, 'main.cpp'), '-o', join(dir, 'batch')],
        { stdio: 'pipe', maxBuffer: 1 << 26 },
      );
    } catch (e) {
      const err = e as { stderr?: Buffer };
      throw new Error(
        `g++ failed on the generated HLS C++ (${dir}):\n${String(err.stderr ?? e)
          .split('\n')
          .slice(0, 30)
          .join('\n')}`,
      );
    }
    const compileSeconds = (Date.now() - t0) / 1000;
    const out = execFileSync(join(dir, 'batch'), { input: stdin.join('\n') + '\n', maxBuffer: 1 << 30 }).toString();
    const lines = out.split('\n');
    let at = 0;
    const outputs = cases.map((c) => {
      const rows: bigint[][] = [];
      for (let v = 0; v < c.count; v++)
        rows.push(
          lines[at++]!.trim()
            .split(/\s+/)
            .filter(Boolean)
            .map((h) => BigInt(`0x${h}`)),
        );
      return rows;
    });
    return { outputs, compileSeconds };
  } finally {
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}
