// Fused training kernels of the KIF WRAP (activation) quantizer, run on the tfjs-wasm backend's own heap
// (AssemblyScript → wasm simd128, built by scripts/build-quantizer-wasm.mjs into src/quantizer/wasm-bytes.ts).
//
// They replace ~12 tfjs ops per quantizer and step, two of which broadcast a [1, P] parameter over [B, P]
// (tfjs-wasm: ~10x slower than an elementwise op). The arithmetic is the tf-op path's (src/quantizer/ops.ts),
// op for op in float32, so both paths give the same bits:
//   y = x·2^f; codes by rounding mode (RND = floor(2y) − floor(y), …); x_q = codes·2^-f.
// Layout: x is row-major with the parameter pattern repeating every P elements (element j uses parameter
// j mod P); n is a multiple of P. The host passes byte offsets into the imported memory and owns every buffer;
// this module has no data, no runtime and never allocates.

/** Rounding-mode codes (src/quantizer/kernels.ts ROUND_CODES). */
const TRN = 0, RND = 1, RND_CONV = 2, TRN_ZERO = 3, RND_ZERO = 4, RND_MIN_INF = 5, RND_INF = 6;

/** Integer codes of y under rounding mode m, as ops.ts roundCodes computes them (never −0). */
@inline function codesv(y: v128, m: i32): v128 {
  const zero = f32x4.splat(0);
  if (m == RND) return f32x4.sub(f32x4.floor(f32x4.add(y, y)), f32x4.floor(y));
  if (m == TRN) return f32x4.add(f32x4.floor(y), zero);
  if (m == RND_CONV) return f32x4.add(f32x4.nearest(y), zero);
  if (m == RND_MIN_INF) return f32x4.sub(f32x4.ceil(f32x4.add(y, y)), f32x4.ceil(y));
  // sign(y)·v + 0 with v >= 0: v with y's sign bit, then + 0 clears a −0
  const a = f32x4.abs(y);
  let v: v128;
  if (m == TRN_ZERO) v = f32x4.floor(a);
  else if (m == RND_ZERO) v = f32x4.sub(f32x4.ceil(f32x4.add(a, a)), f32x4.ceil(a));
  else v = f32x4.sub(f32x4.floor(f32x4.add(a, a)), f32x4.floor(a)); // RND_INF
  return f32x4.add(v128.or(v, v128.and(y, i32x4.splat(0x80000000))), zero);
}

@inline function codess(y: f32, m: i32): f32 {
  if (m == RND) return Mathf.floor(y + y) - Mathf.floor(y);
  if (m == TRN) return Mathf.floor(y) + <f32>0;
  if (m == RND_CONV) return nearest<f32>(y) + <f32>0;
  if (m == RND_MIN_INF) return Mathf.ceil(y + y) - Mathf.ceil(y);
  const a = Mathf.abs(y);
  let v: f32;
  if (m == TRN_ZERO) v = Mathf.floor(a);
  else if (m == RND_ZERO) v = Mathf.ceil(a + a) - Mathf.ceil(a);
  else v = Mathf.floor(a + a) - Mathf.floor(a);
  return copysign<f32>(v, y) + <f32>0;
}

// The loops are instantiated once per rounding mode (a constant after inlining), so the mode test leaves the loop.

@inline function fwdLoop(x: usize, n: i32, P: i32, scale: usize, step: usize, m: i32, out: usize, amax: usize): void {
  const P4 = P & ~3;
  const rowBytes = <usize>P << 2;
  const end = x + (<usize>n << 2);
  for (let r = x, o = out; r < end; r += rowBytes, o += rowBytes) {
    for (let p = 0; p < P4; p += 4) {
      const off = <usize>p << 2;
      const y = f32x4.mul(v128.load(r + off), v128.load(scale + off));
      const q = f32x4.mul(codesv(y, m), v128.load(step + off));
      v128.store(o + off, q);
      v128.store(amax + off, f32x4.max(v128.load(amax + off), f32x4.abs(q)));
    }
    for (let p = P4; p < P; p++) {
      const off = <usize>p << 2;
      const q = codess(load<f32>(r + off) * load<f32>(scale + off), m) * load<f32>(step + off);
      store<f32>(o + off, q);
      store<f32>(amax + off, Mathf.max(load<f32>(amax + off), Mathf.abs(q)));
    }
  }
}

@inline function bwdLoop(x: usize, dy: usize, n: i32, P: i32, scale: usize, step: usize, m: i32, acc: usize): void {
  const P4 = P & ~3;
  const rowBytes = <usize>P << 2;
  const end = x + (<usize>n << 2);
  for (let r = x, d = dy; r < end; r += rowBytes, d += rowBytes) {
    for (let p = 0; p < P4; p += 4) {
      const off = <usize>p << 2;
      const xv = v128.load(r + off);
      const q = f32x4.mul(codesv(f32x4.mul(xv, v128.load(scale + off)), m), v128.load(step + off));
      const t = f32x4.mul(v128.load(d + off), f32x4.sub(q, xv));
      const a = acc + (<usize>p << 3);
      v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(t)));
      v128.store(a + 16, f64x2.add(v128.load(a + 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(t, t, 2, 3, 0, 1))));
    }
    for (let p = P4; p < P; p++) {
      const off = <usize>p << 2;
      const xs = load<f32>(r + off);
      const q = codess(xs * load<f32>(scale + off), m) * load<f32>(step + off);
      const a = acc + (<usize>p << 3);
      store<f64>(a, load<f64>(a) + <f64>(load<f32>(d + off) * (q - xs)));
    }
  }
}

/**
 * Training forward: out = codes(x·scale)·step, and amax[p] = max |out| over the rows (f32[P], overwritten).
 * scale, step: f32[P] (2^f, 2^-f).
 */
export function wrap_fwd(x: usize, n: i32, P: i32, scale: usize, step: usize, m: i32, out: usize, amax: usize): void {
  for (let p = 0; p < P; p++) store<f32>(amax + (<usize>p << 2), 0);
  if (m == RND) fwdLoop(x, n, P, scale, step, RND, out, amax);
  else if (m == TRN) fwdLoop(x, n, P, scale, step, TRN, out, amax);
  else if (m == RND_CONV) fwdLoop(x, n, P, scale, step, RND_CONV, out, amax);
  else if (m == TRN_ZERO) fwdLoop(x, n, P, scale, step, TRN_ZERO, out, amax);
  else if (m == RND_ZERO) fwdLoop(x, n, P, scale, step, RND_ZERO, out, amax);
  else if (m == RND_MIN_INF) fwdLoop(x, n, P, scale, step, RND_MIN_INF, out, amax);
  else fwdLoop(x, n, P, scale, step, RND_INF, out, amax);
}

/**
 * Training backward into f: acc[p] = Σ_rows dy·(x_q − x) (each product in float32 as the tf path, summed in
 * float64; f64[P], overwritten). The caller multiplies by −ln2.
 */
export function wrap_bwd(x: usize, dy: usize, n: i32, P: i32, scale: usize, step: usize, m: i32, acc: usize): void {
  for (let p = 0; p < P; p++) store<f64>(acc + (<usize>p << 3), 0);
  if (m == RND) bwdLoop(x, dy, n, P, scale, step, RND, acc);
  else if (m == TRN) bwdLoop(x, dy, n, P, scale, step, TRN, acc);
  else if (m == RND_CONV) bwdLoop(x, dy, n, P, scale, step, RND_CONV, acc);
  else if (m == TRN_ZERO) bwdLoop(x, dy, n, P, scale, step, TRN_ZERO, acc);
  else if (m == RND_ZERO) bwdLoop(x, dy, n, P, scale, step, RND_ZERO, acc);
  else if (m == RND_MIN_INF) bwdLoop(x, dy, n, P, scale, step, RND_MIN_INF, acc);
  else bwdLoop(x, dy, n, P, scale, step, RND_INF, acc);
}

// ---------------------------------------------------------------------------------------------------------
// Inference quantization with RND (the default rounding), exact: the same values as src/quantizer/kernels.ts's
// float64 loops, which store their exact result into float32 once. In float32, y = x·2^f is exact unless it
// overflows or leaves the normal range, and RND codes are exact for every y; codes·2^-f is one rounding of the
// exact product, as the float64 loop's final store. Lanes with |y| >= 2^23 hold integers already (RND(y) = y):
// rounding only passes x through, while WRAP of such a lane takes the float64 scalar path (the fold below is
// exact only for |codes| <= 2^23). Parameters (host-prepared, f32[P] each, element j uses j mod P):
//   prm + 0·P scale 2^f, 1·P step 2^-f, 2·P hi / M = 2^W, 3·P lo / 2^-W, 4·P unused / h (2^(W−1) signed, 0 unsigned),
//   5·P alive (bits: all ones when W > 0, else 0).

const BIG: f32 = 8388608.0; // 2^23

@inline function rndCodes(y: v128): v128 {
  return f32x4.sub(f32x4.floor(f32x4.add(y, y)), f32x4.floor(y));
}

/** out = RND(x·2^f)·2^-f (no overflow handling: the WRAP quantizer while calibrating). */
export function infer_round(x: usize, n: i32, P: i32, prm: usize, out: usize): void {
  const P4 = P & ~3;
  const rowBytes = <usize>P << 2, pB = <usize>P << 2;
  const end = x + (<usize>n << 2);
  const zero = f32x4.splat(0), big = f32x4.splat(BIG);
  for (let r = x, o = out; r < end; r += rowBytes, o += rowBytes) {
    for (let p = 0; p < P4; p += 4) {
      const off = <usize>p << 2;
      const xv = v128.load(r + off);
      const y = f32x4.mul(xv, v128.load(prm + off));
      const q = f32x4.add(f32x4.mul(rndCodes(y), v128.load(prm + pB + off)), zero);
      v128.store(o + off, v128.bitselect(xv, q, f32x4.ge(f32x4.abs(y), big)));
    }
    for (let p = P4; p < P; p++) {
      const off = <usize>p << 2;
      const xs = load<f32>(r + off);
      const y = xs * load<f32>(prm + off);
      store<f32>(o + off, Mathf.abs(y) >= BIG ? xs : (Mathf.floor(y + y) - Mathf.floor(y)) * load<f32>(prm + pB + off) + <f32>0);
    }
  }
}

/** WRAP of one element in float64, as the host loop: c = floor(y + 1/2), c − M·floor((c + h)/M), ·2^-f. */
@inline function wrapScalar(xs: f32, prm: usize, pB: usize, off: usize): f32 {
  if (load<i32>(prm + 5 * pB + off) == 0) return 0;
  const y = <f64>xs * <f64>load<f32>(prm + off);
  const c = Math.floor(y + 0.5);
  const M = <f64>load<f32>(prm + 2 * pB + off);
  const v = (c - M * Math.floor((c + <f64>load<f32>(prm + 4 * pB + off)) * <f64>load<f32>(prm + 3 * pB + off))) * <f64>load<f32>(prm + pB + off);
  return <f32>(v + 0);
}

@inline function quantLoop(x: usize, n: i32, P: i32, prm: usize, out: usize, wrap: bool): void {
  const P4 = P & ~3;
  const rowBytes = <usize>P << 2, pB = <usize>P << 2;
  const end = x + (<usize>n << 2);
  const zero = f32x4.splat(0), big = f32x4.splat(BIG);
  for (let r = x, o = out; r < end; r += rowBytes, o += rowBytes) {
    for (let p = 0; p < P4; p += 4) {
      const off = <usize>p << 2;
      const xv = v128.load(r + off);
      const y = f32x4.mul(xv, v128.load(prm + off));
      let c = rndCodes(y);
      const a = v128.load(prm + 2 * pB + off), b = v128.load(prm + 3 * pB + off);
      if (wrap) {
        if (v128.any_true(f32x4.ge(f32x4.abs(y), big))) {
          for (let l: usize = 0; l < 4; l++) store<f32>(o + off + 4 * l, wrapScalar(load<f32>(r + off + 4 * l), prm + 4 * l, pB, off));
          continue;
        }
        // |c| <= 2^23 and h <= 2^23 whenever the fold can change c (W <= 24): c + h is exact
        c = f32x4.sub(c, f32x4.mul(a, f32x4.floor(f32x4.mul(f32x4.add(c, v128.load(prm + 4 * pB + off)), b))));
      } else {
        c = v128.bitselect(a, v128.bitselect(b, c, f32x4.le(y, b)), f32x4.ge(y, a));
      }
      const q = f32x4.add(f32x4.mul(c, v128.load(prm + pB + off)), zero);
      v128.store(o + off, v128.and(q, v128.load(prm + 5 * pB + off)));
    }
    for (let p = P4; p < P; p++) {
      const off = <usize>p << 2;
      const xs = load<f32>(r + off);
      if (wrap) { store<f32>(o + off, wrapScalar(xs, prm, pB, off)); continue; }
      const y = xs * load<f32>(prm + off);
      const hi = load<f32>(prm + 2 * pB + off), lo = load<f32>(prm + 3 * pB + off);
      const c = y >= hi ? hi : y <= lo ? lo : Mathf.floor(y + y) - Mathf.floor(y);
      store<f32>(o + off, load<i32>(prm + 5 * pB + off) != 0 ? c * load<f32>(prm + pB + off) + <f32>0 : 0);
    }
  }
}

/** Inference quantization, RND: ovf 0 WRAP (fold into W bits), otherwise SAT/SAT_SYM (clip to [lo, hi] codes). */
export function infer_quant(x: usize, n: i32, P: i32, prm: usize, ovf: i32, out: usize): void {
  if (ovf == 0) quantLoop(x, n, P, prm, out, true);
  else quantLoop(x, n, P, prm, out, false);
}
