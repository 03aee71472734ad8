/**
 * The HLS C++ compiles with g++ against a minimal stand-in for Xilinx's ap_fixed.h (written here: exact
 * __int128 arithmetic, each ap_q_mode/ap_o_mode as UG1399 defines it, only what the generated code uses)
 * and its C model equals the emulator bit for bit on random programs covering every op kind.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeProject } from '../src/backends/project.ts';
import { verify } from '../src/eda/verify.ts';
import { makeRng } from './util/rng.ts';
import { randomProgram } from './util/random-program.ts';
import { coveringProgram, needTool } from './backends-fixtures.ts';

const AP_FIXED_STANDIN = `// Test stand-in for ap_fixed.h: exact arithmetic, not Xilinx's implementation.
#pragma once
#include <cmath>
#include <cstdint>
enum ap_q_mode { AP_RND, AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF, AP_RND_CONV, AP_TRN, AP_TRN_ZERO };
enum ap_o_mode { AP_SAT, AP_SAT_ZERO, AP_SAT_SYM, AP_WRAP, AP_WRAP_SM };
typedef __int128 i128;

// an exact intermediate value m * 2^e (what full-precision ap_fixed arithmetic produces)
struct xv {
  i128 m; int e;
  xv(i128 m_, int e_) : m(m_), e(e_) {}
  xv(int i) : m(i), e(0) {}
};
static inline void align(xv& a, xv& b) {
  int e = a.e < b.e ? a.e : b.e;
  a.m <<= (a.e - e); a.e = e; b.m <<= (b.e - e); b.e = e;
}
static inline xv operator+(xv a, xv b) { align(a, b); return xv(a.m + b.m, a.e); }
static inline xv operator-(xv a, xv b) { align(a, b); return xv(a.m - b.m, a.e); }
static inline xv operator-(xv a) { return xv(-a.m, a.e); }
static inline xv operator*(xv a, xv b) { return xv(a.m * b.m, a.e + b.e); }
static inline bool operator<(xv a, xv b) { align(a, b); return a.m < b.m; }
static inline bool operator>(xv a, xv b) { align(a, b); return a.m > b.m; }

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O>
struct ap_fixed_base {
  i128 v = 0;  // value = v * 2^(I - W)
  ap_fixed_base() {}
  ap_fixed_base(int x) { set(xv(x)); }
  ap_fixed_base(double d) {
    if (d == 0) { v = 0; return; }
    int ex; double fr = std::frexp(d, &ex);
    set(xv((i128)(int64_t)std::ldexp(fr, 53), ex - 53));
  }
  ap_fixed_base(xv x) { set(x); }
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2>
  ap_fixed_base(const ap_fixed_base<W2, I2, S2, Q2, O2>& o) { set(xv(o.v, I2 - W2)); }
  operator xv() const { return xv(v, I - W); }
  double to_double() const { return std::ldexp((double)v, I - W); }
  static i128 wrap(i128 c) {
    i128 mod = (i128)1 << W;
    c &= mod - 1;
    if (S && c >= mod / 2) c -= mod;
    return c;
  }
  ap_fixed_base operator<<(int s) const { ap_fixed_base r; r.v = wrap(v << s); return r; }
  ap_fixed_base operator>>(int s) const { ap_fixed_base r; r.v = v >> s; return r; }
  struct range_t { i128 bits; unsigned to_uint() const { return (unsigned)bits; } };
  range_t range(int h, int l) const { return range_t{(v >> l) & (((i128)1 << (h - l + 1)) - 1)}; }
  void set(xv x) {
    const int L = I - W;
    i128 c;
    if (x.m == 0) c = 0;
    else if (x.e >= L) c = x.m << (x.e - L);
    else {
      int d = L - x.e;
      bool neg = x.m < 0;
      i128 fl = d > 120 ? (neg ? -1 : 0) : x.m >> d;
      i128 r = d > 120 ? (neg ? 1 : 0) : x.m - (fl << d);  // > 0 when bits were dropped
      i128 half = d > 120 ? 2 : (i128)1 << (d - 1);
      bool inc = false;
      switch (Q) {
        case AP_TRN: inc = false; break;
        case AP_TRN_ZERO: inc = neg && r != 0; break;
        case AP_RND: inc = r >= half; break;
        case AP_RND_CONV: inc = r > half || (r == half && (fl & 1)); break;
        case AP_RND_ZERO: inc = r > half || (r == half && neg); break;
        case AP_RND_MIN_INF: inc = r > half; break;
        case AP_RND_INF: inc = r > half || (r == half && !neg); break;
      }
      c = fl + (inc ? 1 : 0);
    }
    i128 hi = S ? ((i128)1 << (W - 1)) - 1 : ((i128)1 << W) - 1;
    i128 lo = S ? -((i128)1 << (W - 1)) : 0;
    if (O == AP_SAT_SYM && S) lo = -hi;
    if (O == AP_SAT || O == AP_SAT_SYM) { if (c > hi) c = hi; if (c < lo) c = lo; }
    else c = wrap(c);
    v = c;
  }
};
template <int W, int I, ap_q_mode Q = AP_TRN, ap_o_mode O = AP_WRAP, int N = 0>
struct ap_fixed : ap_fixed_base<W, I, true, Q, O> {
  using ap_fixed_base<W, I, true, Q, O>::ap_fixed_base;
  ap_fixed() {}
};
template <int W, int I, ap_q_mode Q = AP_TRN, ap_o_mode O = AP_WRAP, int N = 0>
struct ap_ufixed : ap_fixed_base<W, I, false, Q, O> {
  using ap_fixed_base<W, I, false, Q, O>::ap_fixed_base;
  ap_ufixed() {}
};
`;

test('HLS C++ compiles with g++ and equals the emulator (every op kind, 10,000 vectors)', (t) => {
  if (!needTool(t, 'g++')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-hls-'));
  try {
    writeFileSync(join(root, 'ap_fixed.h'), AP_FIXED_STANDIN);
    const programs = [coveringProgram(100), randomProgram(makeRng(77), { nOps: 80 }), randomProgram(makeRng(78), { nOps: 80 })];
    programs.forEach((p, k) => {
      const dir = join(root, `p${k}`);
      const s = writeProject(p, dir, { format: 'hls', vectors: 0 });
      const src = join(dir, s.files.source!);
      assert.match(readText(src), /#pragma HLS PIPELINE II=1/);
      const r = verify(dir, { vectors: k === 0 ? 10000 : 2000, apInclude: root, seed: k + 5 });
      assert.equal(r.simulator, 'g++');
      assert.equal(r.vectors, k === 0 ? 10000 : 2000);
      assert.equal(r.mismatches, 0, `program ${k}: ${JSON.stringify(r.first_mismatch)}`);
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a wrong HLS model is caught: mismatches counted, first vector reported', (t) => {
  if (!needTool(t, 'g++')) return;
  const root = mkdtempSync(join(tmpdir(), 'hgq-hls-'));
  try {
    writeFileSync(join(root, 'ap_fixed.h'), AP_FIXED_STANDIN);
    const p = coveringProgram(100, 40, 4);
    const dir = join(root, 'bad');
    const s = writeProject(p, dir, { format: 'hls', vectors: 0 });
    const src = join(dir, s.files.source!);
    // every rounding mode becomes truncation and every saturation a wrap: a different model
    writeFileSync(src, readText(src).replace(/AP_RND\w*/g, 'AP_TRN').replace(/AP_SAT\w*/g, 'AP_WRAP').replace(/ \+ /g, ' - '));
    const r = verify(dir, { vectors: 500, apInclude: root });
    assert.ok(r.mismatches > 0);
    assert.ok(r.first_mismatch && r.first_mismatch.vector >= 0 && r.first_mismatch.input.length === 8);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

import { readFileSync } from 'node:fs';
function readText(p: string): string {
  return readFileSync(p, 'utf8');
}
