// hgq training engine kernels (AssemblyScript → wasm simd128, optionally relaxed-SIMD FMA).
//
// Layout: activations are FEATURE-MAJOR per thread chunk: buffer[feature * CB + sample], CB a multiple of 16.
// Vectorizing over the batch keeps any layer width cheap (no padding of features), makes per-activation
// quantizer parameters a splat per row, and turns the batch reductions of the backward pass into row sums.
// Weights are row-major K×N (tfjs kernel layout). All memory is imported (shared, for worker threads);
// this module has no data segments, no runtime and never allocates: the host plans every buffer.
//
// Register tiles hold 8 accumulators: V8's TurboFan (Node 20) issues all loads of a loop iteration before its
// arithmetic and has 15 usable xmm registers, so 8 accumulators + 6 loaded operands is the largest tile that does
// not spill (12-accumulator tiles measured 30% slower); 8 independent FMA chains cover the FMA latency × throughput.
// Measured on the dev machine (quiet): the matmul loops run at ~18–20 GMAC/s per thread, the 12-chain FMA peak
// of this CPU; the rest of a step is epilogues, the loss and transposes.
//
// Quantizer semantics (DESIGN.md §2–3): RND = floor(y + 1/2) computed exactly as floor(y) + (frac(y) >= 1/2);
// parameters are rounded half-to-even (tf.round) with straight-through gradients; SAT/SAT_SYM clip then round;
// WRAP only rounds in training. ∂x_q/∂f = −ln2·(x_q − x); clipped values pass no gradient to x and give
// ∂/∂i = ±ln2·2^i (and ∂/∂f = ln2·2^-f at a SAT/SAT_SYM top, −k·ln2·2^-f at a SAT_SYM bottom).

const LN2: f32 = 0.6931471805599453;

// ---------------------------------------------------------------------------------------------------------
// small helpers

@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Exact RND on a vector already scaled by 2^f: floor(2y) − floor(y) = floor(y) + [frac(y) >= 1/2] (2y is exact). */
@inline function rndv(y: v128): v128 {
  return f32x4.sub(f32x4.floor(f32x4.add(y, y)), f32x4.floor(y));
}

@inline function rnds(y: f32): f32 {
  const fl = Mathf.floor(y);
  return y - fl >= <f32>0.5 ? fl + <f32>1.0 : fl;
}

/** 2^e exactly for integer e (as f32; e in [-149, 127]). */
@inline function pow2(e: f32): f32 {
  return <f32>f64.reinterpret_i64((<i64>(<i32>e + 1023)) << 52);
}

/** Zeroes n vectors at p (a few stores; memory.fill is a runtime call in V8, costly per 64-byte tile). */
@inline function zeroVecs(p: usize, n: i32): void {
  for (let j = 0; j < n; j++) v128.store(p + (<usize>j << 4), f32x4.splat(0));
}

@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function hmax(v: v128): f32 {
  return Mathf.max(Mathf.max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), Mathf.max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** Lanes b..b+3 that are real samples (b + lane < nbValid). */
@inline function validMask(b: i32, nbValid: i32): v128 {
  return i32x4.lt_s(i32x4.add(i32x4.splat(b), i32x4(0, 1, 2, 3)), i32x4.splat(nbValid));
}

// Cephes-style expf (rel. error ~1e-7) for the softmax; x is clamped to [-87.3, 88.3].
@inline function expv(x0: v128): v128 {
  let x = f32x4.pmin(f32x4.pmax(x0, f32x4.splat(-87.33654)), f32x4.splat(88.37626));
  const fx = f32x4.floor(madd(x, f32x4.splat(1.44269504088896341), f32x4.splat(0.5)));
  x = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(0.693359375)));
  x = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(x, x);
  let y = f32x4.splat(1.9875691500e-4);
  y = madd(y, x, f32x4.splat(1.3981999507e-3));
  y = madd(y, x, f32x4.splat(8.3334519073e-3));
  y = madd(y, x, f32x4.splat(4.1665795894e-2));
  y = madd(y, x, f32x4.splat(1.6666665459e-1));
  y = madd(y, x, f32x4.splat(5.0000001201e-1));
  y = f32x4.add(madd(y, z, x), f32x4.splat(1.0));
  const n = i32x4.trunc_sat_f32x4_s(fx);
  const p2 = i32x4.shl(i32x4.add(n, i32x4.splat(127)), 23);
  return f32x4.mul(y, p2);
}

// Cephes-style logf for x > 0 (used for the reported loss only).
@inline function logv(x0: v128): v128 {
  const xi = x0;
  let e = f32x4.convert_i32x4_s(i32x4.sub(i32x4.shr_u(xi, 23), i32x4.splat(126)));
  let m = v128.or(v128.and(xi, i32x4.splat(0x007fffff)), i32x4.splat(0x3f000000)); // in [0.5, 1)
  const small = f32x4.lt(m, f32x4.splat(0.707106781186547524));
  e = f32x4.sub(e, v128.and(small, f32x4.splat(1.0)));
  m = f32x4.sub(f32x4.add(m, v128.and(small, m)), f32x4.splat(1.0));
  const z = f32x4.mul(m, m);
  let y = f32x4.splat(7.0376836292e-2);
  y = madd(y, m, f32x4.splat(-1.1514610310e-1));
  y = madd(y, m, f32x4.splat(1.1676998740e-1));
  y = madd(y, m, f32x4.splat(-1.2420140846e-1));
  y = madd(y, m, f32x4.splat(1.4249322787e-1));
  y = madd(y, m, f32x4.splat(-1.6668057665e-1));
  y = madd(y, m, f32x4.splat(2.0000714765e-1));
  y = madd(y, m, f32x4.splat(-2.4999993993e-1));
  y = madd(y, m, f32x4.splat(3.3333331174e-1));
  y = f32x4.mul(f32x4.mul(y, m), z);
  y = madd(e, f32x4.splat(-2.12194440e-4), y);
  y = f32x4.sub(y, f32x4.mul(f32x4.splat(0.5), z));
  m = f32x4.add(m, y);
  return madd(e, f32x4.splat(0.693359375), m);
}

// ---------------------------------------------------------------------------------------------------------
// activation-quantizer preparation (per feature): prep[4n..4n+3] = [2^f, 2^-f, lo, hi]

/** mode: 0 WRAP, 1 SAT, 2 SAT_SYM. i_eff = max(round(i), −round(f)). */
export function prep_act(n: i32, iraw: usize, fraw: usize, kArr: usize, mode: i32, prep: usize): void {
  for (let j = 0; j < n; j++) {
    const o = <usize>j << 2;
    const f = f32.nearest(load<f32>(fraw + o));
    const i = Mathf.max(f32.nearest(load<f32>(iraw + o)), -f);
    const k = load<f32>(kArr + o);
    const inv = pow2(-f);
    const top = pow2(i);
    const hi = top - inv;
    const lo = mode == 1 ? -k * top : -k * hi;
    const p = prep + (<usize>j << 4);
    store<f32>(p, pow2(f));
    store<f32>(p, inv, 4);
    store<f32>(p, lo, 8);
    store<f32>(p, hi, 12);
  }
}

/** Activation quantizer forward on a feature-major block (layer-0 input quantizer). flags bit2: SAT-like. */
export function act_q(h: usize, a: usize, K: i32, CB: i32, nbPad: i32, nbValid: i32, flags: i32, prep: usize, absmax: usize): void {
  const sat = (flags & 4) != 0;
  for (let k = 0; k < K; k++) {
    const p = prep + (<usize>k << 4);
    const sc = v128.load32_splat(p), inv = v128.load32_splat(p, 4);
    const lo = v128.load32_splat(p, 8), hi = v128.load32_splat(p, 12);
    let amx = f32x4.splat(0);
    const row = <usize>k * <usize>CB << 2;
    // full vectors unmasked, then the vectors holding padded samples
    const nbFull = nbValid & ~3;
    let b = 0;
    for (; b < nbFull; b += 4) {
      const o = row + (<usize>b << 2);
      let y = v128.load(h + o);
      if (sat) y = f32x4.pmin(hi, f32x4.pmax(lo, y));
      const q = f32x4.mul(rndv(f32x4.mul(y, sc)), inv);
      v128.store(a + o, q);
      amx = f32x4.pmax(amx, f32x4.abs(q));
    }
    for (; b < nbPad; b += 4) {
      const o = row + (<usize>b << 2);
      let y = v128.load(h + o);
      if (sat) y = f32x4.pmin(hi, f32x4.pmax(lo, y));
      const q = f32x4.mul(rndv(f32x4.mul(y, sc)), inv);
      v128.store(a + o, q);
      amx = f32x4.pmax(amx, v128.and(f32x4.abs(q), validMask(b, nbValid)));
    }
    const ap = absmax + (<usize>k << 2);
    store<f32>(ap, Mathf.max(load<f32>(ap), hmax(amx)));
  }
}

// ---------------------------------------------------------------------------------------------------------
// dense forward: out[n, b] = act(Σ_k a[k, b]·W[k, n] + bias[n]); optionally the next layer's input quantizer
// fused into the epilogue (aOut = q(out), absmax tracking over valid samples).
// flags: bit0 relu, bit1 quantize, bit2 SAT-like quantizer (clip before rounding).
// The body is specialized per flags value (constant-folded @inline copies): the epilogue is a large part of a
// narrow layer's work (K = 16: 16 FMAs per output vector), so it carries no dead branches.

/** Epilogue of one output row over four vectors (16 samples); the row's |x_q| maximum is kept in scratch (sp). */
@inline function epiRow4(c0: v128, c1: v128, c2: v128, c3: v128, flags: i32, bp: usize, pp: usize, outp: usize, ap: usize, sp: usize, b: i32, nbValid: i32): void {
  let y0 = c0, y1 = c1, y2 = c2, y3 = c3;
  if (bp) {
    const bv = v128.load32_splat(bp);
    y0 = f32x4.add(y0, bv); y1 = f32x4.add(y1, bv); y2 = f32x4.add(y2, bv); y3 = f32x4.add(y3, bv);
  }
  if (flags & 1) {
    y0 = f32x4.pmax(f32x4.splat(0), y0); y1 = f32x4.pmax(f32x4.splat(0), y1);
    y2 = f32x4.pmax(f32x4.splat(0), y2); y3 = f32x4.pmax(f32x4.splat(0), y3);
  }
  v128.store(outp, y0); v128.store(outp, y1, 16); v128.store(outp, y2, 32); v128.store(outp, y3, 48);
  if (flags & 2) {
    if (flags & 4) {
      const lo = v128.load32_splat(pp, 8), hi = v128.load32_splat(pp, 12);
      y0 = f32x4.pmin(hi, f32x4.pmax(lo, y0)); y1 = f32x4.pmin(hi, f32x4.pmax(lo, y1));
      y2 = f32x4.pmin(hi, f32x4.pmax(lo, y2)); y3 = f32x4.pmin(hi, f32x4.pmax(lo, y3));
    }
    const sc = v128.load32_splat(pp), inv = v128.load32_splat(pp, 4);
    let q0 = f32x4.mul(rndv(f32x4.mul(y0, sc)), inv), q1 = f32x4.mul(rndv(f32x4.mul(y1, sc)), inv);
    let q2 = f32x4.mul(rndv(f32x4.mul(y2, sc)), inv), q3 = f32x4.mul(rndv(f32x4.mul(y3, sc)), inv);
    v128.store(ap, q0); v128.store(ap, q1, 16); v128.store(ap, q2, 32); v128.store(ap, q3, 48);
    // after a ReLU q >= 0: no abs needed; padded samples are masked only in the tile that holds them
    if (!(flags & 1)) { q0 = f32x4.abs(q0); q1 = f32x4.abs(q1); q2 = f32x4.abs(q2); q3 = f32x4.abs(q3); }
    if (b + 16 > nbValid) {
      q0 = v128.and(q0, validMask(b, nbValid)); q1 = v128.and(q1, validMask(b + 4, nbValid));
      q2 = v128.and(q2, validMask(b + 8, nbValid)); q3 = v128.and(q3, validMask(b + 12, nbValid));
    }
    v128.store(sp, f32x4.pmax(f32x4.pmax(v128.load(sp), f32x4.pmax(q0, q1)), f32x4.pmax(q2, q3)));
  }
}

// Tiles of 2 output rows × 16 samples (8 accumulators): each k step loads one full cache line of the input row
// and two weight splats, and each row's epilogue constants serve four vectors.
// Wide inputs are cut into blocks of k rows whose slice of the input fits in L1 (MNIST's 784 rows × 1 KB would
// stream from L2 once per output pair): a tile keeps its partial sums in `out` between blocks and continues the
// same FMA chain, so the result is bit-identical to the unblocked loop; the epilogue runs after the last block.

/** Rows per k block of the blocked forward: a 16 KB slice of the nbPad columns the call touches. */
@inline function fwdKBlock(nbPad: i32): i32 {
  return max(8, 4096 / nbPad);
}

/** blocked (a constant after inlining): false runs all K rows as one block, with no partial-sum loads or stores. */
@inline function fwdBody(aIn: usize, K: i32, W: usize, N: i32, bias: usize, out: usize, CB: i32, nbPad: i32,
  flags: i32, prep: usize, aOut: usize, absmax: usize, nbValid: i32, scratch: usize, blocked: bool): void {
  const rowB = <usize>CB << 2;
  const ldw = <usize>N << 2;
  const kb = blocked ? fwdKBlock(nbPad) : K;
  for (let k0 = 0; k0 < K; k0 += kb) {
    const k1 = blocked ? min(K, k0 + kb) : K;
    const first = !blocked || k0 == 0, last = !blocked || k1 == K;
    const aBlk = aIn + <usize>k0 * rowB, wBlk = W + <usize>k0 * ldw;
    let n = 0;
    for (; n + 2 <= N; n += 2) {
      if ((flags & 2) && last) zeroVecs(scratch, 2);
      const pp = prep + (<usize>n << 4);
      const bp = bias ? bias + (<usize>n << 2) : 0;
      for (let b = 0; b < nbPad; b += 16) {
        const o = <usize>n * rowB + (<usize>b << 2);
        let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
        let d0 = f32x4.splat(0), d1 = f32x4.splat(0), d2 = f32x4.splat(0), d3 = f32x4.splat(0);
        if (!first) {
          const q = out + o, r = q + rowB;
          c0 = v128.load(q); c1 = v128.load(q, 16); c2 = v128.load(q, 32); c3 = v128.load(q, 48);
          d0 = v128.load(r); d1 = v128.load(r, 16); d2 = v128.load(r, 32); d3 = v128.load(r, 48);
        }
        let pa = aBlk + (<usize>b << 2);
        let pw = wBlk + (<usize>n << 2);
        for (let k = k0; k < k1; k++) {
          const x0 = v128.load(pa), x1 = v128.load(pa, 16), x2 = v128.load(pa, 32), x3 = v128.load(pa, 48);
          const w0 = v128.load32_splat(pw), w1 = v128.load32_splat(pw, 4);
          c0 = madd(x0, w0, c0); c1 = madd(x1, w0, c1); c2 = madd(x2, w0, c2); c3 = madd(x3, w0, c3);
          d0 = madd(x0, w1, d0); d1 = madd(x1, w1, d1); d2 = madd(x2, w1, d2); d3 = madd(x3, w1, d3);
          pa += rowB; pw += ldw;
        }
        if (last) {
          epiRow4(c0, c1, c2, c3, flags, bp, pp, out + o, aOut + o, scratch, b, nbValid);
          epiRow4(d0, d1, d2, d3, flags, bp ? bp + 4 : 0, pp + 16, out + o + rowB, aOut + o + rowB, scratch + 16, b, nbValid);
        } else {
          const q = out + o, r = q + rowB;
          v128.store(q, c0); v128.store(q, c1, 16); v128.store(q, c2, 32); v128.store(q, c3, 48);
          v128.store(r, d0); v128.store(r, d1, 16); v128.store(r, d2, 32); v128.store(r, d3, 48);
        }
      }
      if ((flags & 2) && last) {
        for (let r = 0; r < 2; r++) {
          const ap = absmax + (<usize>(n + r) << 2);
          store<f32>(ap, Mathf.max(load<f32>(ap), hmax(v128.load(scratch + (<usize>r << 4)))));
        }
      }
    }
    if (n < N) {
      if ((flags & 2) && last) zeroVecs(scratch, 1);
      const pp = prep + (<usize>n << 4);
      const bp = bias ? bias + (<usize>n << 2) : 0;
      for (let b = 0; b < nbPad; b += 16) {
        const o = <usize>n * rowB + (<usize>b << 2);
        let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
        if (!first) { const q = out + o; c0 = v128.load(q); c1 = v128.load(q, 16); c2 = v128.load(q, 32); c3 = v128.load(q, 48); }
        let pa = aBlk + (<usize>b << 2);
        let pw = wBlk + (<usize>n << 2);
        for (let k = k0; k < k1; k++) {
          const w = v128.load32_splat(pw);
          c0 = madd(v128.load(pa), w, c0); c1 = madd(v128.load(pa, 16), w, c1);
          c2 = madd(v128.load(pa, 32), w, c2); c3 = madd(v128.load(pa, 48), w, c3);
          pa += rowB; pw += ldw;
        }
        if (last) epiRow4(c0, c1, c2, c3, flags, bp, pp, out + o, aOut + o, scratch, b, nbValid);
        else { const q = out + o; v128.store(q, c0); v128.store(q, c1, 16); v128.store(q, c2, 32); v128.store(q, c3, 48); }
      }
      if ((flags & 2) && last) {
        const ap = absmax + (<usize>n << 2);
        store<f32>(ap, Mathf.max(load<f32>(ap), hmax(v128.load(scratch))));
      }
    }
  }
}

@inline function fwdFlags(aIn: usize, K: i32, W: usize, N: i32, bias: usize, out: usize, CB: i32, nbPad: i32,
  flags: i32, prep: usize, aOut: usize, absmax: usize, nbValid: i32, scratch: usize, blocked: bool): void {
  if (blocked) fwdBody(aIn, K, W, N, bias, out, CB, nbPad, flags, prep, aOut, absmax, nbValid, scratch, true);
  else fwdBody(aIn, K, W, N, bias, out, CB, nbPad, flags, prep, aOut, absmax, nbValid, scratch, false);
}

@inline function fwdDispatch(aIn: usize, K: i32, W: usize, N: i32, bias: usize, out: usize, CB: i32, nbPad: i32,
  flags: i32, prep: usize, aOut: usize, absmax: usize, nbValid: i32, scratch: usize, blocked: bool): void {
  if (flags == 0) fwdFlags(aIn, K, W, N, bias, out, CB, nbPad, 0, prep, aOut, absmax, nbValid, scratch, blocked);
  else if (flags == 1) fwdFlags(aIn, K, W, N, bias, out, CB, nbPad, 1, prep, aOut, absmax, nbValid, scratch, blocked);
  else if (flags == 2) fwdFlags(aIn, K, W, N, bias, out, CB, nbPad, 2, prep, aOut, absmax, nbValid, scratch, blocked);
  else if (flags == 3) fwdFlags(aIn, K, W, N, bias, out, CB, nbPad, 3, prep, aOut, absmax, nbValid, scratch, blocked);
  else if (flags == 6) fwdFlags(aIn, K, W, N, bias, out, CB, nbPad, 6, prep, aOut, absmax, nbValid, scratch, blocked);
  else fwdFlags(aIn, K, W, N, bias, out, CB, nbPad, 7, prep, aOut, absmax, nbValid, scratch, blocked);
}

/**
 * scratch: 32 bytes of per-thread memory holding the running |x_q| maxima of two rows as vectors.
 * Inputs whose slice exceeds 64 KB (MNIST's 784 rows of a chunk) take the k-blocked loop; narrower ones the plain
 * one (blocking them measured slower: their slice already stays in L1/L2 and the partial sums cost loads and
 * stores), and so do calls over more than 512 columns (the graph path's whole-batch rows), where even an
 * 8-row block would not stay in L1.
 */
export function dense_fwd(aIn: usize, K: i32, W: usize, N: i32, bias: usize, out: usize, CB: i32, nbPad: i32,
  flags: i32, prep: usize, aOut: usize, absmax: usize, nbValid: i32, scratch: usize): void {
  if (nbPad <= 512 && <usize>K * (<usize>nbPad << 2) > 65536) fwdDispatch(aIn, K, W, N, bias, out, CB, nbPad, flags, prep, aOut, absmax, nbValid, scratch, true);
  else fwdDispatch(aIn, K, W, N, bias, out, CB, nbPad, flags, prep, aOut, absmax, nbValid, scratch, false);
}

// ---------------------------------------------------------------------------------------------------------
// dense backward, weights: gW[k, n] += Σ_b a[k, b]·dz[n, b]; gB[n] += Σ_b dz[n, b] (gB may be 0).
// Tiles of 2 k × 4 n (8 accumulators: what V8 keeps in registers) so the four sums of a row reduce with one
// transposing hsum4 into one vector add on gW[k, n..n+3]. The loop order reuses the smaller operand from L1:
// the dz rows across k pairs when N <= K, the a rows across n quads otherwise.

/** [Σa, Σb, Σc, Σd] of four vectors. */
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 1, 4, 5), v128.shuffle<f32>(c, d, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 2, 4, 6), v128.shuffle<f32>(ab, cd, 1, 3, 5, 7));
}

/** gW[k..k+1, n..n+3] += a[k..k+1, :]·dz[n..n+3, :]ᵀ */
@inline function dwTile(a0: usize, a1: usize, d0: usize, d1: usize, d2: usize, d3: usize, nbB: usize, g: usize, ldg: usize): void {
  let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
  let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
  // six running pointers (no per-load address arithmetic, nothing spilled)
  let p0 = a0, p1 = a1, q0 = d0, q1 = d1, q2 = d2, q3 = d3;
  const end = a0 + nbB;
  while (p0 < end) {
    const x0 = v128.load(p0), x1 = v128.load(p1);
    const y0 = v128.load(q0), y1 = v128.load(q1), y2 = v128.load(q2), y3 = v128.load(q3);
    s00 = madd(x0, y0, s00); s01 = madd(x0, y1, s01); s02 = madd(x0, y2, s02); s03 = madd(x0, y3, s03);
    s10 = madd(x1, y0, s10); s11 = madd(x1, y1, s11); s12 = madd(x1, y2, s12); s13 = madd(x1, y3, s13);
    p0 += 16; p1 += 16; q0 += 16; q1 += 16; q2 += 16; q3 += 16;
  }
  v128.store(g, f32x4.add(v128.load(g), hsum4(s00, s01, s02, s03)));
  v128.store(g + ldg, f32x4.add(v128.load(g + ldg), hsum4(s10, s11, s12, s13)));
}

/**
 * dwTile for rows 1024 bytes apart (the default 256-sample chunk): immediate load offsets leave two running
 * pointers instead of six, ~6% faster (the loop issues near the front end's width).
 */
@inline function dwTile1024(a0: usize, d0: usize, nbB: usize, g: usize, ldg: usize): void {
  let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
  let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
  let p = a0, q = d0;
  const end = a0 + nbB;
  while (p < end) {
    const x0 = v128.load(p), x1 = v128.load(p, 1024);
    const y0 = v128.load(q), y1 = v128.load(q, 1024), y2 = v128.load(q, 2048), y3 = v128.load(q, 3072);
    s00 = madd(x0, y0, s00); s01 = madd(x0, y1, s01); s02 = madd(x0, y2, s02); s03 = madd(x0, y3, s03);
    s10 = madd(x1, y0, s10); s11 = madd(x1, y1, s11); s12 = madd(x1, y2, s12); s13 = madd(x1, y3, s13);
    p += 16; q += 16;
  }
  v128.store(g, f32x4.add(v128.load(g), hsum4(s00, s01, s02, s03)));
  v128.store(g + ldg, f32x4.add(v128.load(g + ldg), hsum4(s10, s11, s12, s13)));
}

@inline function dwTileAt(a0: usize, d0: usize, rowB: usize, nbB: usize, g: usize, ldg: usize, c1024: bool): void {
  if (c1024) dwTile1024(a0, d0, nbB, g, ldg);
  else dwTile(a0, a0 + rowB, d0, d0 + rowB, d0 + 2 * rowB, d0 + 3 * rowB, nbB, g, ldg);
}

/**
 * The 2×4 tiles of dense_bwd_dw over the even k rows and the n quads (c1024: rows 1024 bytes apart). The operand
 * reused across the inner loop (the dz rows when N <= K, else the a rows) is cut into groups of rows whose
 * chunk fits in 16 KB of L1 once it exceeds 32 KB (MNIST's dz: 128 rows × 1 KB), so it is not streamed
 * from L2 once per outer step. Each gW element is still one tile's sum: blocking changes no result.
 */
@inline function dwTiles(aIn: usize, K2: i32, dz: usize, N: i32, N4: i32, rowB: usize, nbB: usize, gW: usize, ldg: usize, c1024: bool): void {
  const grp = max(4, <i32>(16384 / rowB) & ~3); // rows per group (a multiple of 4 and of 2)
  if (N <= K2) {
    const NB = <usize>N4 * rowB > 32768 ? grp : N4;
    for (let n0 = 0; n0 < N4; n0 += NB) {
      const n1 = min(N4, n0 + NB);
      for (let k = 0; k < K2; k += 2) {
        const a0 = aIn + <usize>k * rowB;
        for (let n = n0; n < n1; n += 4) dwTileAt(a0, dz + <usize>n * rowB, rowB, nbB, gW + ((<usize>k * <usize>N + <usize>n) << 2), ldg, c1024);
      }
    }
  } else {
    const KB = <usize>K2 * rowB > 32768 ? grp : K2;
    for (let k0 = 0; k0 < K2; k0 += KB) {
      const k1 = min(K2, k0 + KB);
      for (let n = 0; n < N4; n += 4) {
        const d0 = dz + <usize>n * rowB;
        for (let k = k0; k < k1; k += 2) dwTileAt(aIn + <usize>k * rowB, d0, rowB, nbB, gW + ((<usize>k * <usize>N + <usize>n) << 2), ldg, c1024);
      }
    }
  }
}

/** gW[k, n] += a[k, :]·dz[n, :] for one (k, n) (remainders), four accumulators over 16 samples. */
@inline function dwOne(a0: usize, d0: usize, nbB: usize, g: usize): void {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let o: usize = 0; o < nbB; o += 64) {
    s0 = madd(v128.load(a0 + o), v128.load(d0 + o), s0); s1 = madd(v128.load(a0 + o, 16), v128.load(d0 + o, 16), s1);
    s2 = madd(v128.load(a0 + o, 32), v128.load(d0 + o, 32), s2); s3 = madd(v128.load(a0 + o, 48), v128.load(d0 + o, 48), s3);
  }
  store<f32>(g, load<f32>(g) + hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3))));
}

/** gW[k..k+7, n] += a[k..k+7, :]·dz[n, :] (a column of the N % 4 remainder: 8 accumulators, one dz load). */
@inline function dwCol8(a0: usize, rowB: usize, d0: usize, nbB: usize, g: usize, ldg: usize): void {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let s4 = f32x4.splat(0), s5 = f32x4.splat(0), s6 = f32x4.splat(0), s7 = f32x4.splat(0);
  // the eight a rows through one pointer and a stride register (eight pointers would spill)
  let p = a0, q = d0;
  const end = d0 + nbB;
  while (q < end) {
    const y = v128.load(q);
    s0 = madd(v128.load(p), y, s0); s1 = madd(v128.load(p + rowB), y, s1);
    s2 = madd(v128.load(p + 2 * rowB), y, s2); s3 = madd(v128.load(p + 3 * rowB), y, s3);
    s4 = madd(v128.load(p + 4 * rowB), y, s4); s5 = madd(v128.load(p + 5 * rowB), y, s5);
    s6 = madd(v128.load(p + 6 * rowB), y, s6); s7 = madd(v128.load(p + 7 * rowB), y, s7);
    p += 16; q += 16;
  }
  const lo = hsum4(s0, s1, s2, s3), hi = hsum4(s4, s5, s6, s7);
  store<f32>(g, load<f32>(g) + f32x4.extract_lane(lo, 0));
  store<f32>(g + ldg, load<f32>(g + ldg) + f32x4.extract_lane(lo, 1));
  store<f32>(g + 2 * ldg, load<f32>(g + 2 * ldg) + f32x4.extract_lane(lo, 2));
  store<f32>(g + 3 * ldg, load<f32>(g + 3 * ldg) + f32x4.extract_lane(lo, 3));
  store<f32>(g + 4 * ldg, load<f32>(g + 4 * ldg) + f32x4.extract_lane(hi, 0));
  store<f32>(g + 5 * ldg, load<f32>(g + 5 * ldg) + f32x4.extract_lane(hi, 1));
  store<f32>(g + 6 * ldg, load<f32>(g + 6 * ldg) + f32x4.extract_lane(hi, 2));
  store<f32>(g + 7 * ldg, load<f32>(g + 7 * ldg) + f32x4.extract_lane(hi, 3));
}

export function dense_bwd_dw(aIn: usize, K: i32, dz: usize, N: i32, CB: i32, nbPad: i32, gW: usize, gB: usize): void {
  const rowB = <usize>CB << 2;
  const nbB = <usize>nbPad << 2; // a multiple of 64 bytes
  const ldg = <usize>N << 2;
  const K2 = K & ~1, N4 = N & ~3;
  if (rowB == 1024) dwTiles(aIn, K2, dz, N, N4, rowB, nbB, gW, ldg, true);
  else dwTiles(aIn, K2, dz, N, N4, rowB, nbB, gW, ldg, false);
  // remainders: the last k row (K odd) for the n quads, the last N % 4 columns for every k
  if (K2 < K) {
    for (let n = 0; n < N4; n++) dwOne(aIn + <usize>K2 * rowB, dz + <usize>n * rowB, nbB, gW + ((<usize>K2 * <usize>N + <usize>n) << 2));
  }
  for (let n = N4; n < N; n++) {
    const d0 = dz + <usize>n * rowB;
    let k = 0;
    for (; k + 8 <= K; k += 8) dwCol8(aIn + <usize>k * rowB, rowB, d0, nbB, gW + ((<usize>k * <usize>N + <usize>n) << 2), ldg);
    for (; k < K; k++) dwOne(aIn + <usize>k * rowB, d0, nbB, gW + ((<usize>k * <usize>N + <usize>n) << 2));
  }
  if (gB) {
    // two rows at a time, four chains each: eight independent adds hide the add latency (two chains per row
    // made the bias sums a quarter of the K = 16 layer's time)
    let n = 0;
    for (; n + 2 <= N; n += 2) {
      const d0 = dz + <usize>n * rowB, d1 = d0 + rowB;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
      for (let o: usize = 0; o < nbB; o += 64) {
        s0 = f32x4.add(s0, v128.load(d0 + o)); s1 = f32x4.add(s1, v128.load(d0 + o, 16));
        s2 = f32x4.add(s2, v128.load(d0 + o, 32)); s3 = f32x4.add(s3, v128.load(d0 + o, 48));
        t0 = f32x4.add(t0, v128.load(d1 + o)); t1 = f32x4.add(t1, v128.load(d1 + o, 16));
        t2 = f32x4.add(t2, v128.load(d1 + o, 32)); t3 = f32x4.add(t3, v128.load(d1 + o, 48));
      }
      const g = gB + (<usize>n << 2);
      store<f32>(g, load<f32>(g) + hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3))));
      store<f32>(g, load<f32>(g, 4) + hsum(f32x4.add(f32x4.add(t0, t1), f32x4.add(t2, t3))), 4);
    }
    if (n < N) {
      const d0 = dz + <usize>n * rowB;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let o: usize = 0; o < nbB; o += 64) {
        s0 = f32x4.add(s0, v128.load(d0 + o)); s1 = f32x4.add(s1, v128.load(d0 + o, 16));
        s2 = f32x4.add(s2, v128.load(d0 + o, 32)); s3 = f32x4.add(s3, v128.load(d0 + o, 48));
      }
      const g = gB + (<usize>n << 2);
      store<f32>(g, load<f32>(g) + hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3))));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// dense backward, inputs: g[k, b] = Σ_n W[k, n]·dz[n, b], then the input quantizer's and the previous ReLU's
// backward in the epilogue. sums[3k..3k+2] += (Σ_b g·(x_q − clip(h)), Σ_b g·[h > hi], Σ_b g·[h < lo]).
// flags: bit0 input h is a ReLU output (mask by h > 0), bit1 input quantizer present, bit2 SAT-like,
// bit3 write dzOut. Specialized per flags value like the forward; the row sums live as vectors in scratch
// (three per row: 4 rows × 48 bytes) and are reduced once per row block.

@inline function bepiRow(g0: v128, g1: v128, flags: i32, hp: usize, ap: usize, pp: usize, outp: usize, sp: usize): void {
  const h0 = v128.load(hp), h1 = v128.load(hp, 16);
  let d0 = g0, d1 = g1;
  if (flags & 2) {
    const a0 = v128.load(ap), a1 = v128.load(ap, 16);
    if (flags & 4) {
      const lo = v128.load32_splat(pp, 8), hi = v128.load32_splat(pp, 12);
      const top0 = f32x4.gt(h0, hi), bot0 = f32x4.lt(h0, lo), top1 = f32x4.gt(h1, hi), bot1 = f32x4.lt(h1, lo);
      const hc0 = f32x4.pmin(hi, f32x4.pmax(lo, h0)), hc1 = f32x4.pmin(hi, f32x4.pmax(lo, h1));
      v128.store(sp, madd(g1, f32x4.sub(a1, hc1), madd(g0, f32x4.sub(a0, hc0), v128.load(sp))));
      v128.store(sp, f32x4.add(f32x4.add(v128.load(sp, 16), v128.and(g0, top0)), v128.and(g1, top1)), 16);
      v128.store(sp, f32x4.add(f32x4.add(v128.load(sp, 32), v128.and(g0, bot0)), v128.and(g1, bot1)), 32);
      d0 = v128.andnot(g0, v128.or(top0, bot0));
      d1 = v128.andnot(g1, v128.or(top1, bot1));
    } else {
      v128.store(sp, madd(g1, f32x4.sub(a1, h1), madd(g0, f32x4.sub(a0, h0), v128.load(sp))));
    }
  }
  if (flags & 8) {
    if (flags & 1) { d0 = v128.and(d0, f32x4.gt(h0, f32x4.splat(0))); d1 = v128.and(d1, f32x4.gt(h1, f32x4.splat(0))); }
    v128.store(outp, d0);
    v128.store(outp, d1, 16);
  }
}

@inline function flushSums(flags: i32, sums: usize, sp: usize): void {
  if (flags & 2) {
    store<f32>(sums, load<f32>(sums) + hsum(v128.load(sp)));
    if (flags & 4) {
      store<f32>(sums, load<f32>(sums, 4) + hsum(v128.load(sp, 16)), 4);
      store<f32>(sums, load<f32>(sums, 8) + hsum(v128.load(sp, 32)), 8);
    }
  }
}

@inline function dxBody(dz: usize, N: i32, W: usize, K: i32, CB: i32, nbPad: i32, flags: i32,
  hIn: usize, aIn: usize, prep: usize, dzOut: usize, sums: usize, scratch: usize, wt: bool = false): void {
  const rowB = <usize>CB << 2;
  const ldw = <usize>N << 2;
  const ldt = <usize>K << 2;
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    if (flags & 2) zeroVecs(scratch, 12);
    const wr = wt ? W + (<usize>k << 2) : W + <usize>k * ldw;
    for (let b = 0; b < nbPad; b += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let pd = dz + (<usize>b << 2);
      let pw = wr;
      for (let n = 0; n < N; n++) {
        const y0 = v128.load(pd), y1 = v128.load(pd, 16);
        let w0: v128, w1: v128, w2: v128, w3: v128;
        if (wt) {
          w0 = v128.load32_splat(pw); w1 = v128.load32_splat(pw, 4); w2 = v128.load32_splat(pw, 8); w3 = v128.load32_splat(pw, 12);
        } else {
          w0 = v128.load32_splat(pw); w1 = v128.load32_splat(pw + ldw); w2 = v128.load32_splat(pw + 2 * ldw); w3 = v128.load32_splat(pw + 3 * ldw);
        }
        c00 = madd(y0, w0, c00); c01 = madd(y1, w0, c01);
        c10 = madd(y0, w1, c10); c11 = madd(y1, w1, c11);
        c20 = madd(y0, w2, c20); c21 = madd(y1, w2, c21);
        c30 = madd(y0, w3, c30); c31 = madd(y1, w3, c31);
        pd += rowB; pw += wt ? ldt : 4;
      }
      const o = <usize>k * rowB + (<usize>b << 2);
      const pp = prep + (<usize>k << 4);
      bepiRow(c00, c01, flags, hIn + o, aIn + o, pp, dzOut + o, scratch);
      bepiRow(c10, c11, flags, hIn + o + rowB, aIn + o + rowB, pp + 16, dzOut + o + rowB, scratch + 48);
      bepiRow(c20, c21, flags, hIn + o + 2 * rowB, aIn + o + 2 * rowB, pp + 32, dzOut + o + 2 * rowB, scratch + 96);
      bepiRow(c30, c31, flags, hIn + o + 3 * rowB, aIn + o + 3 * rowB, pp + 48, dzOut + o + 3 * rowB, scratch + 144);
    }
    for (let r = 0; r < 4; r++) flushSums(flags, sums + <usize>(k + r) * 12, scratch + <usize>r * 48);
  }
  for (; k < K; k++) {
    if (flags & 2) zeroVecs(scratch, 3);
    const wr = wt ? W + (<usize>k << 2) : W + <usize>k * ldw;
    for (let b = 0; b < nbPad; b += 16) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let pd = dz + (<usize>b << 2);
      for (let n = 0; n < N; n++) {
        const w = v128.load32_splat(wt ? wr + <usize>n * ldt : wr + (<usize>n << 2));
        c0 = madd(v128.load(pd), w, c0); c1 = madd(v128.load(pd, 16), w, c1);
        c2 = madd(v128.load(pd, 32), w, c2); c3 = madd(v128.load(pd, 48), w, c3);
        pd += rowB;
      }
      const o = <usize>k * rowB + (<usize>b << 2);
      const pp = prep + (<usize>k << 4);
      bepiRow(c0, c1, flags, hIn + o, aIn + o, pp, dzOut + o, scratch);
      bepiRow(c2, c3, flags, hIn + o + 32, aIn + o + 32, pp, dzOut + o + 32, scratch);
    }
    flushSums(flags, sums + <usize>k * 12, scratch);
  }
}

@inline function dxDispatch(dz: usize, N: i32, W: usize, K: i32, CB: i32, nbPad: i32, flags: i32,
  hIn: usize, aIn: usize, prep: usize, dzOut: usize, sums: usize, scratch: usize, wt: bool): void {
  switch (flags) {
    case 2: dxBody(dz, N, W, K, CB, nbPad, 2, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    case 6: dxBody(dz, N, W, K, CB, nbPad, 6, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    case 8: dxBody(dz, N, W, K, CB, nbPad, 8, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    case 9: dxBody(dz, N, W, K, CB, nbPad, 9, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    case 10: dxBody(dz, N, W, K, CB, nbPad, 10, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    case 11: dxBody(dz, N, W, K, CB, nbPad, 11, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    case 14: dxBody(dz, N, W, K, CB, nbPad, 14, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    case 15: dxBody(dz, N, W, K, CB, nbPad, 15, hIn, aIn, prep, dzOut, sums, scratch, wt); break;
    default: dxBody(dz, N, W, K, CB, nbPad, flags, hIn, aIn, prep, dzOut, sums, scratch, wt);
  }
}

/** scratch: 192 bytes of per-thread memory for the running sums of four rows. W: K×N row-major. */
export function dense_bwd_dx(dz: usize, N: i32, W: usize, K: i32, CB: i32, nbPad: i32, flags: i32,
  hIn: usize, aIn: usize, prep: usize, dzOut: usize, sums: usize, scratch: usize): void {
  dxDispatch(dz, N, W, K, CB, nbPad, flags, hIn, aIn, prep, dzOut, sums, scratch, false);
}

/**
 * dense_bwd_dx with the weights given transposed (WT: N×K row-major, see transpose_w): the four splat loads
 * of a step are contiguous (immediate offsets, no address arithmetic), ~15% faster.
 */
export function dense_bwd_dx_t(dz: usize, N: i32, WT: usize, K: i32, CB: i32, nbPad: i32, flags: i32,
  hIn: usize, aIn: usize, prep: usize, dzOut: usize, sums: usize, scratch: usize): void {
  dxDispatch(dz, N, WT, K, CB, nbPad, flags, hIn, aIn, prep, dzOut, sums, scratch, true);
}

/** dst[n·K + k] = src[k·N + n] (K×N → N×K), by 4×4 shuffle blocks. */
export function transpose_w(src: usize, K: i32, N: i32, dst: usize): void {
  transpose_w_rows(src, K, N, dst, 0, K);
}

/** Rows [r0, r0 + nr) of transpose_w (r0 a multiple of 4): threads transpose disjoint row ranges. */
export function transpose_w_rows(src: usize, K: i32, N: i32, dst: usize, r0: i32, nr: i32): void {
  const ls = <usize>N << 2, ld = <usize>K << 2;
  const r1 = r0 + nr, K4 = r0 + (nr & ~3), N4 = N & ~3;
  for (let k = r0; k < K4; k += 4) {
    const s = src + <usize>k * ls;
    for (let n = 0; n < N4; n += 4) {
      const sn = s + (<usize>n << 2);
      const q0 = v128.load(sn), q1 = v128.load(sn + ls), q2 = v128.load(sn + 2 * ls), q3 = v128.load(sn + 3 * ls);
      const t0 = v128.shuffle<f32>(q0, q1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(q0, q1, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(q2, q3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(q2, q3, 2, 6, 3, 7);
      const d = dst + <usize>n * ld + (<usize>k << 2);
      v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
      v128.store(d + ld, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
      v128.store(d + 2 * ld, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
      v128.store(d + 3 * ld, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
    }
    for (let n = N4; n < N; n++) {
      for (let kk = k; kk < k + 4; kk++) store<f32>(dst + <usize>n * ld + (<usize>kk << 2), load<f32>(src + <usize>kk * ls + (<usize>n << 2)));
    }
  }
  for (let k = K4; k < r1; k++) {
    for (let n = 0; n < N; n++) store<f32>(dst + <usize>n * ld + (<usize>k << 2), load<f32>(src + <usize>k * ls + (<usize>n << 2)));
  }
}

// ---------------------------------------------------------------------------------------------------------
// losses on the last layer's output z (C×CB feature-major) against targets y (C×CB); dz = ∂(mean loss)/∂z
// over the whole batch (invB = 1/B for cross-entropy, 1/(B·C) for MSE). flags bit0: z is a ReLU output.
// Returns the (un-normalized) sum of per-sample losses over the valid samples of this chunk.

/** Also adds to f64 at `hits` the number of valid samples whose target class (Σ_c y_c·[z_c = max z]) is predicted. */
export function softmax_ce(z: usize, y: usize, C: i32, CB: i32, nbPad: i32, nbValid: i32, invB: f32, dz: usize, flags: i32, hits: usize): f64 {
  const rowB = <usize>CB << 2;
  let lsum = f32x4.splat(0), hsumv = f32x4.splat(0);
  const ib = f32x4.splat(invB);
  for (let b = 0; b < nbPad; b += 4) {
    const o = <usize>b << 2;
    let mx = v128.load(z + o);
    for (let c = 1; c < C; c++) mx = f32x4.pmax(mx, v128.load(z + o + <usize>c * rowB));
    let s = f32x4.splat(0);
    for (let c = 0; c < C; c++) {
      const e = expv(f32x4.sub(v128.load(z + o + <usize>c * rowB), mx));
      v128.store(dz + o + <usize>c * rowB, e);
      s = f32x4.add(s, e);
    }
    const rs = f32x4.div(f32x4.splat(1.0), s);
    const lse = f32x4.add(mx, logv(s));
    const mask = validMask(b, nbValid);
    let ls = f32x4.splat(0);
    for (let c = 0; c < C; c++) {
      const oc = o + <usize>c * rowB;
      const yc = v128.load(y + oc);
      const zc = v128.load(z + oc);
      ls = madd(yc, f32x4.sub(lse, zc), ls);
      hsumv = f32x4.add(hsumv, v128.and(v128.and(yc, f32x4.eq(zc, mx)), mask));
      let d = f32x4.mul(f32x4.sub(f32x4.mul(v128.load(dz + oc), rs), yc), ib);
      if (flags & 1) d = v128.and(d, f32x4.gt(zc, f32x4.splat(0)));
      v128.store(dz + oc, v128.and(d, mask));
    }
    lsum = f32x4.add(lsum, v128.and(ls, mask));
  }
  if (hits) store<f64>(hits, load<f64>(hits) + <f64>hsum(hsumv));
  return <f64>hsum(lsum);
}

export function mse(z: usize, y: usize, C: i32, CB: i32, nbPad: i32, nbValid: i32, invB: f32, dz: usize, flags: i32): f64 {
  const rowB = <usize>CB << 2;
  let lsum = f32x4.splat(0);
  const ib2 = f32x4.splat(invB * 2);
  for (let c = 0; c < C; c++) {
    for (let b = 0; b < nbPad; b += 4) {
      const o = <usize>c * rowB + (<usize>b << 2);
      const zc = v128.load(z + o);
      const mask = validMask(b, nbValid);
      const e = v128.and(f32x4.sub(zc, v128.load(y + o)), mask);
      lsum = madd(e, e, lsum);
      let d = f32x4.mul(e, ib2);
      if (flags & 1) d = v128.and(d, f32x4.gt(zc, f32x4.splat(0)));
      v128.store(dz + o, d);
    }
  }
  return <f64>hsum(lsum);
}

// ---------------------------------------------------------------------------------------------------------
// data movement

/** dst[k·CB + b] = src[(row0 + b)·K + k] for b < nb; zero for nb <= b < nbPad. 4×4 blocks by shuffles. */
export function transpose_in(src: usize, K: i32, row0: i32, nb: i32, dst: usize, CB: i32, nbPad: i32): void {
  const rowB = <usize>CB << 2;
  const ls = <usize>K << 2;
  const K4 = K & ~3, nb4 = nb & ~3;
  for (let b = 0; b < nb4; b += 4) {
    const s = src + (<usize>(row0 + b) * ls);
    const d = dst + (<usize>b << 2);
    for (let k = 0; k < K4; k += 4) {
      const r0 = v128.load(s + (<usize>k << 2)), r1 = v128.load(s + ls + (<usize>k << 2));
      const r2 = v128.load(s + 2 * ls + (<usize>k << 2)), r3 = v128.load(s + 3 * ls + (<usize>k << 2));
      const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
      const o = d + <usize>k * rowB;
      v128.store(o, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
      v128.store(o + rowB, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
      v128.store(o + 2 * rowB, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
      v128.store(o + 3 * rowB, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
    }
    for (let k = K4; k < K; k++) {
      const o = d + <usize>k * rowB, sk = s + (<usize>k << 2);
      store<f32>(o, load<f32>(sk)); store<f32>(o, load<f32>(sk + ls), 4);
      store<f32>(o, load<f32>(sk + 2 * ls), 8); store<f32>(o, load<f32>(sk + 3 * ls), 12);
    }
  }
  for (let b = nb4; b < nb; b++) {
    const s = src + (<usize>(row0 + b) * ls);
    const d = dst + (<usize>b << 2);
    for (let k = 0; k < K; k++) store<f32>(d + <usize>k * rowB, load<f32>(s + (<usize>k << 2)));
  }
  for (let k = 0; k < K; k++) {
    for (let b = nb; b < nbPad; b++) store<f32>(dst + <usize>k * rowB + (<usize>b << 2), 0);
  }
}

export function zero(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 2);
}

/** dst[j] += src[j] */
export function add_into(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

/** dst[j] = max(dst[j], src[j]) */
export function max_into(dst: usize, src: usize, n: i32): void {
  for (let j = 0; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(dst + o, Mathf.max(load<f32>(dst + o), load<f32>(src + o)));
  }
}

// ---------------------------------------------------------------------------------------------------------
// the per-thread training slice: forward + loss + backward over a range of samples, chunk by chunk,
// accumulating gradients into this thread's gradient block. The plan is an i32 table written by the host:
//   plan[0] L, [1] CB, [2] K0, [3] C, [4] loss (0 softmax-CE, 1 MSE), [5] x ptr (B×K0 row-major),
//   [6] y ptr (B×C), [7] invB (f32 bits), [8] thread base, [9] thread stride (bytes),
//   [10] X off, [11] Y off, [12] D0 off, [13] D1 off, [14] grad off, [15] grad floats, [16] loss off (f64 loss sum, then f64 hit count),
//   [17] Z off, [18] last-layer ReLU flag, [19] scratch off (192 bytes), [20] shared chunk counter (dynamic
//   scheduling), [21] batch size
// per layer l at plan + 4·(32 + 16·l):
//   +0 K, +1 N, +2 flags (bit0 input is a ReLU output, bit1 input quantizer, bit2 its SAT-like mode,
//   bit3 this layer has ReLU), +3 Wq ptr, +4 bq ptr or 0, +5 input-quantizer prep ptr, +6 H off (pre-quant
//   input), +7 A off (quantized input), +8 gW off, +9 gB off (or -1), +10 sums off, +11 absmax off,
//   +12 WqT ptr (the quantized kernel transposed, N×K, for dense_bwd_dx_t; 0: dense_bwd_dx reads Wq)

@inline function P(plan: usize, j: i32): i32 { return load<i32>(plan + (<usize>j << 2)); }

/**
 * count >= 0: samples [start, start + count); count < 0: dynamic scheduling — chunks of CB samples are taken
 * from the shared counter plan[20] (atomic) until the batch plan[21] is exhausted, so a descheduled thread
 * delays one chunk rather than half the batch.
 */
export function run_slice(plan: usize, t: i32, start: i32, count: i32): void {
  const L = P(plan, 0), CB = P(plan, 1), K0 = P(plan, 2), C = P(plan, 3), lossKind = P(plan, 4);
  const xPtr = <usize>P(plan, 5), yPtr = <usize>P(plan, 6);
  const invB = f32.reinterpret_i32(P(plan, 7));
  const base = <usize>P(plan, 8) + <usize>t * <usize>P(plan, 9);
  const X = base + <usize>P(plan, 10), Y = base + <usize>P(plan, 11);
  const D0 = base + <usize>P(plan, 12), D1 = base + <usize>P(plan, 13);
  const G = base + <usize>P(plan, 14);
  const lossP = G + <usize>P(plan, 16);
  const Z = base + <usize>P(plan, 17);
  const lastRelu = P(plan, 18);
  const S = base + <usize>P(plan, 19);
  memory.fill(G, 0, <usize>P(plan, 15) << 2);
  let loss: f64 = 0;
  const dyn = count < 0;
  const end = dyn ? P(plan, 21) : start + count;
  for (let c0 = dyn ? atomic.add<i32>(plan + 80, CB) : start; c0 < end; c0 = dyn ? atomic.add<i32>(plan + 80, CB) : c0 + CB) {
    const nb = min(CB, end - c0);
    const nbPad = (nb + 15) & ~15;
    transpose_in(xPtr, K0, c0, nb, X, CB, nbPad);
    transpose_in(yPtr, C, c0, nb, Y, CB, nbPad);
    // forward
    for (let l = 0; l < L; l++) {
      const lp = plan + (<usize>(32 + 16 * l) << 2);
      const K = load<i32>(lp), N = load<i32>(lp, 4), fl = load<i32>(lp, 8);
      const H = base + <usize>load<i32>(lp, 24), A = base + <usize>load<i32>(lp, 28);
      if (l == 0 && (fl & 2)) act_q(H, A, K, CB, nbPad, nb, fl, <usize>load<i32>(lp, 20), G + <usize>load<i32>(lp, 44));
      let out = Z, aOut: usize = 0, qfl = 0, prep: usize = 0, amx: usize = 0;
      if (l + 1 < L) {
        const np = lp + 64;
        const nfl = load<i32>(np, 8);
        out = base + <usize>load<i32>(np, 24);
        aOut = base + <usize>load<i32>(np, 28);
        prep = <usize>load<i32>(np, 20);
        amx = G + <usize>load<i32>(np, 44);
        qfl = nfl & 6;
      }
      const relu = (fl & 8) ? 1 : 0;
      dense_fwd(A, K, <usize>load<i32>(lp, 12), N, <usize>load<i32>(lp, 16), out, CB, nbPad, relu | qfl, prep, aOut, amx, nb, S);
    }
    // loss
    if (lossKind == 0) loss += softmax_ce(Z, Y, C, CB, nbPad, nb, invB, D0, lastRelu, lossP + 8);
    else loss += mse(Z, Y, C, CB, nbPad, nb, invB, D0, lastRelu);
    // backward
    let dz = D0, dzPrev = D1;
    for (let l = L - 1; l >= 0; l--) {
      const lp = plan + (<usize>(32 + 16 * l) << 2);
      const K = load<i32>(lp), N = load<i32>(lp, 4), fl = load<i32>(lp, 8);
      const H = base + <usize>load<i32>(lp, 24), A = base + <usize>load<i32>(lp, 28);
      const gBo = load<i32>(lp, 36);
      dense_bwd_dw(A, K, dz, N, CB, nbPad, G + <usize>load<i32>(lp, 32), gBo >= 0 ? G + <usize>gBo : 0);
      if (l > 0 || (fl & 2)) {
        const bfl = (fl & 7) | (l > 0 ? 8 : 0);
        const WT = <usize>load<i32>(lp, 48);
        if (WT) dense_bwd_dx_t(dz, N, WT, K, CB, nbPad, bfl, H, A, <usize>load<i32>(lp, 20), dzPrev, G + <usize>load<i32>(lp, 40), S);
        else dense_bwd_dx(dz, N, <usize>load<i32>(lp, 12), K, CB, nbPad, bfl, H, A, <usize>load<i32>(lp, 20), dzPrev, G + <usize>load<i32>(lp, 40), S);
      }
      const tmp = dz; dz = dzPrev; dzPrev = tmp;
    }
  }
  store<f64>(lossP, loss);
}

// ---------------------------------------------------------------------------------------------------------
// per-parameter kernels (run once per step on the reduced gradients; sizes are the parameter counts)

/** 2^e for an integer-valued vector e in [-126, 127]: the exponent field set directly. */
@inline function pow2v(e: v128): v128 {
  return i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(e), i32x4.splat(127)), 23);
}

/**
 * Weight quantizer (KBI) forward: wq = RND(clip(w)·2^f)·2^-f, b = round(b_raw), i = max(round(i_raw), −f),
 * f = b − round(i_raw). mode: 1 SAT, 2 SAT_SYM (WRAP on weights is not supported by the engine).
 * Vectorized; exact for b within its bounds [0, 23] and |i| <= 24 (every power of two involved is normal).
 */
export function kbi_fwd(n: i32, w: usize, braw: usize, iraw: usize, kArr: usize, mode: i32, out: usize): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const b = f32x4.nearest(v128.load(braw + o));
    const i0 = f32x4.nearest(v128.load(iraw + o));
    const f = f32x4.sub(b, i0);
    const nf = f32x4.neg(f);
    const i = f32x4.max(i0, nf);
    const inv = pow2v(nf), top = pow2v(i);
    const hi = f32x4.sub(top, inv);
    const nk = f32x4.neg(v128.load(kArr + o));
    const lo = mode == 1 ? f32x4.mul(nk, top) : f32x4.mul(nk, hi);
    const x = f32x4.pmin(hi, f32x4.pmax(lo, v128.load(w + o)));
    // + 0: no -0 (src/fixed never returns -0)
    v128.store(out + o, f32x4.add(f32x4.mul(rndv(f32x4.mul(x, pow2v(f))), inv), f32x4.splat(0)));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const b = f32.nearest(load<f32>(braw + o));
    const i0 = f32.nearest(load<f32>(iraw + o));
    const f = b - i0;
    const i = Mathf.max(i0, -f);
    const inv = pow2(-f), top = pow2(i);
    const hi = top - inv;
    const k = load<f32>(kArr + o);
    const lo = mode == 1 ? -k * top : -k * hi;
    let x = load<f32>(w + o);
    if (x > hi) x = hi; else if (x < lo) x = lo;
    store<f32>(out + o, rnds(x * pow2(f)) * inv + <f32>0);
  }
}

/** KBI backward: from g = ∂L/∂wq write ∂L/∂w, ∂L/∂b_raw, ∂L/∂i_raw (f = b − i, straight-through rounding). */
export function kbi_bwd(n: i32, w: usize, braw: usize, iraw: usize, kArr: usize, mode: i32, wq: usize, g: usize,
  gw: usize, gb: usize, gi: usize): void {
  let j = 0;
  const ln2 = f32x4.splat(LN2), nln2 = f32x4.splat(-LN2);
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const b = f32x4.nearest(v128.load(braw + o));
    const i0 = f32x4.nearest(v128.load(iraw + o));
    const f = f32x4.sub(b, i0);
    const nf = f32x4.neg(f);
    const i = f32x4.max(i0, nf);
    const inv = pow2v(nf), top = pow2v(i);
    const hi = f32x4.sub(top, inv);
    const nk = f32x4.neg(v128.load(kArr + o));
    const lo = mode == 1 ? f32x4.mul(nk, top) : f32x4.mul(nk, hi);
    const x = v128.load(w + o);
    const gg = v128.load(g + o);
    const over = f32x4.gt(x, hi), under = v128.andnot(f32x4.lt(x, lo), over);
    const clipped = v128.or(over, under);
    const dx = v128.andnot(gg, clipped);
    const dfIn = f32x4.mul(f32x4.mul(nln2, gg), f32x4.sub(v128.load(wq + o), x));
    const gl = f32x4.mul(gg, ln2), kgl = f32x4.mul(f32x4.mul(nk, gg), ln2);
    const df = v128.bitselect(f32x4.mul(gl, inv), v128.bitselect(mode == 2 ? f32x4.mul(kgl, inv) : f32x4.splat(0), dfIn, under), over);
    const di = v128.bitselect(f32x4.mul(gl, top), v128.and(f32x4.mul(kgl, top), under), over);
    v128.store(gw + o, dx);
    v128.store(gb + o, df);
    v128.store(gi + o, f32x4.sub(di, df));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const b = f32.nearest(load<f32>(braw + o));
    const i0 = f32.nearest(load<f32>(iraw + o));
    const f = b - i0;
    const i = Mathf.max(i0, -f);
    const inv = pow2(-f), top = pow2(i);
    const hi = top - inv;
    const k = load<f32>(kArr + o);
    const lo = mode == 1 ? -k * top : -k * hi;
    const x = load<f32>(w + o);
    const gg = load<f32>(g + o);
    let dx: f32 = 0, df: f32 = 0, di: f32 = 0;
    if (x > hi) {
      di = gg * LN2 * top; df = gg * LN2 * inv;
    } else if (x < lo) {
      di = -k * gg * LN2 * top;
      if (mode == 2) df = -k * gg * LN2 * inv;
    } else {
      dx = gg; df = -LN2 * gg * (load<f32>(wq + o) - x);
    }
    store<f32>(gw + o, dx);
    store<f32>(gb + o, df);
    store<f32>(gi + o, di - df);
  }
}

/** Activation (KIF) parameter gradients from the batch sums: writes ∂L/∂f_raw and ∂L/∂i_raw. */
export function kif_grads(n: i32, iraw: usize, fraw: usize, kArr: usize, mode: i32, sums: usize, gi: usize, gf: usize): void {
  for (let j = 0; j < n; j++) {
    const o = <usize>j << 2;
    const f = f32.nearest(load<f32>(fraw + o));
    const i = Mathf.max(f32.nearest(load<f32>(iraw + o)), -f);
    const k = load<f32>(kArr + o);
    const sp = sums + <usize>j * 12;
    const sd = load<f32>(sp), st = load<f32>(sp, 4), sb = load<f32>(sp, 8);
    let df: f32 = -LN2 * sd, di: f32 = 0;
    if (mode != 0) {
      const top = pow2(i), inv = pow2(-f);
      di = LN2 * top * st - k * LN2 * top * sb;
      df += LN2 * inv * st;
      if (mode == 2) df -= k * LN2 * inv * sb;
    }
    store<f32>(gf + o, df);
    store<f32>(gi + o, di);
  }
}

/** WRAP integer-bit tracking: i ← clamp(max(i − decay, ceil(log2(absmax + 2^-f))), iLo, iHi). */
export function wrap_track(n: i32, iraw: usize, fraw: usize, absmax: usize, decay: f32, iLo: f32, iHi: f32): void {
  for (let j = 0; j < n; j++) {
    const o = <usize>j << 2;
    const f = f32.nearest(load<f32>(fraw + o));
    const x = load<f32>(absmax + o) + pow2(-f);
    // exact ceil(log2(x)) for normal positive x: exponent, plus one unless x is a power of two
    const bits = reinterpret<i32>(x);
    const e = ((bits >>> 23) & 0xff) - 127;
    const need = <f32>((bits & 0x7fffff) != 0 ? e + 1 : e);
    const v = Mathf.max(load<f32>(iraw + o) - decay, need);
    store<f32>(iraw + o, Mathf.min(iHi, Mathf.max(iLo, v)));
  }
}

/**
 * EBOPs of a dense layer: Σ_k bitsIn[k]·Σ_n bitsW[k, n] + mean(bitsB)·N, and β times its straight-through
 * gradients added into the raw bit parameters' gradients. bitsIn = relu(round i + round f) (+k under SAT);
 * bitsW = round(b) (+k under SAT). inMode/wMode: 0 WRAP, 1 SAT, 2 SAT_SYM.
 */
export function ebops_dense(K: i32, N: i32, iI: usize, iF: usize, iK: usize, inMode: i32,
  wB: usize, wK: usize, wMode: i32, bB: usize, bK: usize, bMode: i32, beta: f32,
  gInI: usize, gInF: usize, gWB: usize, gBB: usize): f64 {
  let total: f64 = 0;
  for (let k = 0; k < K; k++) {
    const ok = <usize>k << 2;
    total += ebopsRow(N, iI + ok, iF + ok, iK + ok, inMode, wB + ok * N, wK + ok * N, wMode, beta, gInI + ok, gInF + ok, gWB + ok * N);
  }
  if (bB) total += ebopsBias(N, bB, bK, bMode, beta, gBB); // mean(bits_bias)·units = Σ bits_bias
  return total;
}

/**
 * ebops_dense's input rows one by one (pointers at the first row): row k's EBOPs bitsIn[k]·Σ_n bitsW[k, n] go to
 * f64 out[k] (the caller sums them in order, as ebops_dense does) and its gradients as there. Threads take
 * disjoint rows.
 */
export function ebops_dense_rows(nr: i32, N: i32, iI: usize, iF: usize, iK: usize, inMode: i32,
  wB: usize, wK: usize, wMode: i32, beta: f32, gInI: usize, gInF: usize, gWB: usize, out: usize): void {
  for (let k = 0; k < nr; k++) {
    const ok = <usize>k << 2;
    store<f64>(out + (<usize>k << 3), ebopsRow(N, iI + ok, iF + ok, iK + ok, inMode, wB + ok * N, wK + ok * N, wMode, beta, gInI + ok, gInF + ok, gWB + ok * N));
  }
}

@inline function ebopsRow(N: i32, iI: usize, iF: usize, iK: usize, inMode: i32, wB: usize, wK: usize, wMode: i32, beta: f32,
  gInI: usize, gInF: usize, gWB: usize): f64 {
  const s = f32.nearest(load<f32>(iI)) + f32.nearest(load<f32>(iF));
  const on: f32 = s > 0 ? 1 : 0;
  const bin = Mathf.max(s, 0) + (inMode == 1 ? load<f32>(iK) : 0);
  let rowSum: f32 = 0;
  for (let n = 0; n < N; n++) {
    const o = <usize>n << 2;
    const bw = f32.nearest(load<f32>(wB + o)) + (wMode == 1 ? load<f32>(wK + o) : 0);
    rowSum += bw;
    store<f32>(gWB + o, load<f32>(gWB + o) + beta * bin);
  }
  const gIn = beta * on * rowSum;
  store<f32>(gInF, load<f32>(gInF) + gIn);
  if (inMode != 0) store<f32>(gInI, load<f32>(gInI) + gIn);
  return <f64>bin * <f64>rowSum;
}

/** The bias term of ebops_dense to f64 out: Σ bits_bias, β added into each bias bit gradient. */
export function ebops_bias(N: i32, bB: usize, bK: usize, bMode: i32, beta: f32, gBB: usize, out: usize): void {
  store<f64>(out, ebopsBias(N, bB, bK, bMode, beta, gBB));
}

@inline function ebopsBias(N: i32, bB: usize, bK: usize, bMode: i32, beta: f32, gBB: usize): f64 {
  let sb: f64 = 0;
  for (let n = 0; n < N; n++) {
    const o = <usize>n << 2;
    sb += <f64>(f32.nearest(load<f32>(bB + o)) + (bMode == 1 ? load<f32>(bK + o) : 0));
    store<f32>(gBB + o, load<f32>(gBB + o) + beta);
  }
  return sb;
}

/** HGQ2's MonoL1 pressure λ·Σp on raw bit parameters: adds λ into g, returns Σp (unscaled, summed in f64). */
export function l1(n: i32, p: usize, lambda: f32, g: usize): f64 {
  add_scalar(n, g, lambda);
  return sum_f64(n, p);
}

/** Σp in f64 (two lanes over groups of four, then the tail): l1's sum, for callers that split the gradient. */
export function sum_f64(n: i32, p: usize): f64 {
  let s2 = f64x2.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const v = v128.load(p + (<usize>j << 2));
    s2 = f64x2.add(s2, f64x2.add(f64x2.promote_low_f32x4(v), f64x2.promote_low_f32x4(v128.swizzle(v, i8x16(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)))));
  }
  let s: f64 = f64x2.extract_lane(s2, 0) + f64x2.extract_lane(s2, 1);
  for (; j < n; j++) s += <f64>load<f32>(p + (<usize>j << 2));
  return s;
}

/** g[j] += c (l1's gradient: λ into every element). */
export function add_scalar(n: i32, g: usize, c: f32): void {
  const cv = f32x4.splat(c);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    v128.store(g + o, f32x4.add(v128.load(g + o), cv));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(g + o, load<f32>(g + o) + c);
  }
}

/** p ← clamp(p, lo, hi) (the bit parameters' bounds, applied before each step's forward as the tfjs path does). */
export function clamp(n: i32, p: usize, lo: f32, hi: f32): void {
  const lv = f32x4.splat(lo), hv = f32x4.splat(hi);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    v128.store(p + o, f32x4.min(hv, f32x4.max(lv, v128.load(p + o)))); // min/max keep a NaN, as the tail does
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(p + o, Mathf.min(hi, Mathf.max(lo, load<f32>(p + o))));
  }
}

/**
 * Adam as tf.train.adam applies it (float32 throughout), but for the subnormal flush below:
 *   m ← m·β1 + g·(1−β1); v ← v·β2 + g²·(1−β2); p ← (m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + ε)·(−lr) + p,
 * then clamps p to [lo, hi] (±Inf: none). omb1/omb2 are 1−β^t as tfjs keeps them (f32 products).
 */
export function adam(n: i32, p: usize, g: usize, m: usize, v: usize, lr: f32, b1: f32, b2: f32, eps: f32,
  omb1: f32, omb2: f32, c1: f32, c2: f32, lo: f32, hi: f32): void {
  // Subnormal floats cost ~100 cycles per operation on x86: the moments of pruned parameters (zero gradient) decay
  // into that range and made Adam 4x slower late in a run. So gradients below 2^-100 count as 0 for m; for v,
  // gradients below ε·2^-30 count as 0 and v below (ε·2^-30)² is stored as 0 (then √v is under 2^-30·ε, which
  // moves the denominator √v + ε by less than a float32 ulp); m below 2^-120 is stored as 0 (its step m/ε·lr is
  // below any parameter's ulp for ε >= 1e-20). The thresholds follow ε, so a tiny ε keeps its meaning.
  let j = 0;
  const B1 = f32x4.splat(b1), B2 = f32x4.splat(b2), C1 = f32x4.splat(c1), C2 = f32x4.splat(c2);
  const O1 = f32x4.splat(omb1), O2 = f32x4.splat(omb2), E = f32x4.splat(eps), NLR = f32x4.splat(-lr);
  const LO = f32x4.splat(lo), HI = f32x4.splat(hi);
  const g2min: f32 = eps * ADAM_EPS_REL, vmin: f32 = g2min * g2min;
  const GMIN = f32x4.splat(ADAM_GMIN), G2MIN = f32x4.splat(g2min), MMIN = f32x4.splat(ADAM_MMIN), VMIN = f32x4.splat(vmin);
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const g0 = v128.load(g + o), ga = f32x4.abs(g0);
    const gm = v128.andnot(g0, f32x4.lt(ga, GMIN)), gv = v128.andnot(g0, f32x4.lt(ga, G2MIN)); // NaN stays NaN
    let nm = f32x4.add(f32x4.mul(v128.load(m + o), B1), f32x4.mul(gm, C1));
    let nv = f32x4.add(f32x4.mul(v128.load(v + o), B2), f32x4.mul(f32x4.mul(gv, gv), C2));
    nm = v128.andnot(nm, f32x4.lt(f32x4.abs(nm), MMIN));
    nv = v128.andnot(nv, f32x4.lt(nv, VMIN));
    v128.store(m + o, nm);
    v128.store(v + o, nv);
    const upd = f32x4.mul(f32x4.div(f32x4.div(nm, O1), f32x4.add(f32x4.sqrt(f32x4.div(nv, O2)), E)), NLR);
    v128.store(p + o, f32x4.min(HI, f32x4.max(LO, f32x4.add(upd, v128.load(p + o))))); // min/max keep a NaN (pmin/pmax gave -inf)
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const g0 = load<f32>(g + o);
    const gm: f32 = Mathf.abs(g0) < ADAM_GMIN ? 0 : g0, gv: f32 = Mathf.abs(g0) < g2min ? 0 : g0;
    let nm = load<f32>(m + o) * b1 + gm * c1;
    let nv = load<f32>(v + o) * b2 + (gv * gv) * c2;
    if (Mathf.abs(nm) < ADAM_MMIN) nm = 0;
    if (nv < vmin) nv = 0;
    store<f32>(m + o, nm);
    store<f32>(v + o, nv);
    const mh = nm / omb1;
    const vh = nv / omb2;
    let np = (mh / (Mathf.sqrt(vh) + eps)) * -lr + load<f32>(p + o);
    np = Mathf.min(hi, Mathf.max(lo, np));
    store<f32>(p + o, np);
  }
}

const ADAM_GMIN: f32 = 7.888609052210118e-31; // 2^-100
const ADAM_EPS_REL: f32 = 9.313225746154785e-10; // 2^-30
const ADAM_MMIN: f32 = 7.52316384526264e-37; // 2^-120

// =========================================================================================================
// graph path (src/engine/graph.ts): host-orchestrated, layer by layer over the whole batch, for models the
// chunked chain cannot run (batch norm needs whole-batch statistics; conv, pooling and residual adds).
// Buffers are feature-major with row stride S floats: buf[feature·S + sample]; S and every column count are
// multiples of 16 (padding samples carry zero gradients: the loss masks them).

/**
 * Input-quantizer backward on K rows of n columns: d = g where h was not clipped (SAT-like), else g;
 * flags bit2 SAT-like (bounds from prep), bit3 write d to dst, bit4 accumulate (dst += d) instead.
 * sums[3k..3k+2] += (Σ g·(a − clip(h)), Σ g·[h > hi], Σ g·[h < lo]).
 */
export function act_q_bwd(g: usize, h: usize, a: usize, K: i32, S: i32, n: i32, flags: i32, prep: usize, dst: usize, sums: usize): void {
  const sat = (flags & 4) != 0;
  const rowB = <usize>S << 2;
  const nB = <usize>n << 2;
  for (let k = 0; k < K; k++) {
    const r = <usize>k * rowB;
    const pp = prep + (<usize>k << 4);
    const lo = sat ? v128.load32_splat(pp, 8) : f32x4.splat(0), hi = sat ? v128.load32_splat(pp, 12) : f32x4.splat(0);
    let sd = f32x4.splat(0), st = f32x4.splat(0), sb = f32x4.splat(0);
    for (let o: usize = 0; o < nB; o += 16) {
      const gg = v128.load(g + r + o);
      const hh = v128.load(h + r + o);
      let d = gg;
      if (sat) {
        const top = f32x4.gt(hh, hi), bot = f32x4.lt(hh, lo);
        sd = madd(gg, f32x4.sub(v128.load(a + r + o), f32x4.pmin(hi, f32x4.pmax(lo, hh))), sd);
        st = f32x4.add(st, v128.and(gg, top));
        sb = f32x4.add(sb, v128.and(gg, bot));
        d = v128.andnot(gg, v128.or(top, bot));
      } else {
        sd = madd(gg, f32x4.sub(v128.load(a + r + o), hh), sd);
      }
      if (flags & 16) v128.store(dst + r + o, f32x4.add(v128.load(dst + r + o), d));
      else if (flags & 8) v128.store(dst + r + o, d);
    }
    const sp = sums + <usize>k * 12;
    store<f32>(sp, load<f32>(sp) + hsum(sd));
    if (sat) {
      store<f32>(sp, load<f32>(sp, 4) + hsum(st), 4);
      store<f32>(sp, load<f32>(sp, 8) + hsum(sb), 8);
    }
  }
}

/** d[j] = out[j] > 0 ? d[j] : 0 (ReLU backward on n floats, n a multiple of 4). */
export function relu_mask(d: usize, out: usize, n: i32): void {
  const nB = <usize>n << 2;
  const z = f32x4.splat(0);
  for (let o: usize = 0; o < nB; o += 16) v128.store(d + o, v128.and(v128.load(d + o), f32x4.gt(v128.load(out + o), z)));
}

/** dst[j] = src[j] for n floats. */
export function copy_f32(dst: usize, src: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

/** Row permutation of len-float rows: dst row (b·A + a) (stride dstS) = src row (a·Bn + b) (stride srcS). */
export function perm_rows(src: usize, srcS: i32, dst: usize, dstS: i32, A: i32, Bn: i32, len: i32): void {
  const lenB = <usize>len << 2;
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < Bn; b++) {
      memory.copy(dst + ((<usize>(b * A + a) * <usize>dstS) << 2), src + ((<usize>(a * Bn + b) * <usize>srcS) << 2), lenB);
    }
  }
}

/**
 * im2col for one chunk of cb samples (columns c0..c0+cb of A, row stride S): P[(j·C + c)][p·cb + t] =
 * A[(idx[p·KK + j]·C + c)][c0 + t], zero where idx < 0 (padding). idx: i32 [Pn·KK] input position of
 * window offset j at output position p.
 */
export function im2col(A: usize, S: i32, c0: i32, C: i32, idx: usize, KK: i32, Pn: i32, P: usize, cb: i32): void {
  const cbB = <usize>cb << 2;
  const prow = <usize>Pn * cbB;
  for (let p = 0; p < Pn; p++) {
    for (let j = 0; j < KK; j++) {
      const s = load<i32>(idx + (<usize>(p * KK + j) << 2));
      let d = P + <usize>j * <usize>C * prow + <usize>p * cbB;
      if (s < 0) {
        for (let c = 0; c < C; c++) { memory.fill(d, 0, cbB); d += prow; }
      } else {
        let sp = A + ((<usize>s * <usize>C * <usize>S + <usize>c0) << 2);
        for (let c = 0; c < C; c++) { memory.copy(d, sp, cbB); d += prow; sp += <usize>S << 2; }
      }
    }
  }
}

/** The adjoint of im2col: dA[(idx·C + c)][c0 + t] += dP[(j·C + c)][p·cb + t]. */
export function col2im_add(dP: usize, cb: i32, C: i32, idx: usize, KK: i32, Pn: i32, dA: usize, S: i32, c0: i32): void {
  const cbB = <usize>cb << 2;
  const prow = <usize>Pn * cbB;
  for (let p = 0; p < Pn; p++) {
    for (let j = 0; j < KK; j++) {
      const s = load<i32>(idx + (<usize>(p * KK + j) << 2));
      if (s < 0) continue;
      let sp = dP + <usize>j * <usize>C * prow + <usize>p * cbB;
      let d = dA + ((<usize>s * <usize>C * <usize>S + <usize>c0) << 2);
      for (let c = 0; c < C; c++) {
        for (let o: usize = 0; o < cbB; o += 16) v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(sp + o)));
        sp += prow; d += <usize>S << 2;
      }
    }
  }
}

/** Max pooling forward: out[(p·C + c)] = max over valid window offsets of A[(idx·C + c)] (n columns, stride S). */
export function pool_max_fwd(A: usize, S: i32, n: i32, C: i32, idx: usize, KK: i32, Pn: i32, out: usize): void {
  const nB = <usize>n << 2, rowB = <usize>S << 2;
  for (let p = 0; p < Pn; p++) {
    for (let c = 0; c < C; c++) {
      const d = out + <usize>(p * C + c) * rowB;
      let first = true;
      for (let j = 0; j < KK; j++) {
        const s = load<i32>(idx + (<usize>(p * KK + j) << 2));
        if (s < 0) continue;
        const sp = A + <usize>(s * C + c) * rowB;
        if (first) memory.copy(d, sp, nB);
        else for (let o: usize = 0; o < nB; o += 16) v128.store(d + o, f32x4.max(v128.load(d + o), v128.load(sp + o)));
        first = false;
      }
    }
  }
}

/** Max pooling backward as tf.max's gradient: every window element equal to the max gets dz (ties included). dA += … */
export function pool_max_bwd(A: usize, S: i32, n: i32, C: i32, idx: usize, KK: i32, Pn: i32, out: usize, dz: usize, dA: usize): void {
  const nB = <usize>n << 2, rowB = <usize>S << 2;
  for (let p = 0; p < Pn; p++) {
    for (let c = 0; c < C; c++) {
      const r = <usize>(p * C + c) * rowB;
      for (let j = 0; j < KK; j++) {
        const s = load<i32>(idx + (<usize>(p * KK + j) << 2));
        if (s < 0) continue;
        const q = <usize>(s * C + c) * rowB;
        for (let o: usize = 0; o < nB; o += 16) {
          const m = f32x4.eq(v128.load(A + q + o), v128.load(out + r + o));
          v128.store(dA + q + o, f32x4.add(v128.load(dA + q + o), v128.and(v128.load(dz + r + o), m)));
        }
      }
    }
  }
}

/**
 * Average pooling forward: window sum (window order, padding skipped) then ÷ div[p] (mode 0, as tf.div by the
 * counts) or × div[p] (mode 1, a reciprocal: global pooling's tf.mul(sum, 1/n)).
 */
export function pool_avg_fwd(A: usize, S: i32, n: i32, C: i32, idx: usize, KK: i32, Pn: i32, out: usize, div: usize, mode: i32): void {
  const nB = <usize>n << 2, rowB = <usize>S << 2;
  for (let p = 0; p < Pn; p++) {
    const dv = v128.load32_splat(div + (<usize>p << 2));
    for (let c = 0; c < C; c++) {
      const d = out + <usize>(p * C + c) * rowB;
      memory.fill(d, 0, nB);
      for (let j = 0; j < KK; j++) {
        const s = load<i32>(idx + (<usize>(p * KK + j) << 2));
        if (s < 0) continue;
        const sp = A + <usize>(s * C + c) * rowB;
        for (let o: usize = 0; o < nB; o += 16) v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(sp + o)));
      }
      for (let o: usize = 0; o < nB; o += 16) v128.store(d + o, mode == 0 ? f32x4.div(v128.load(d + o), dv) : f32x4.mul(v128.load(d + o), dv));
    }
  }
}

/** Average pooling backward: dA[window] += dz ÷ div[p] (mode 0) or dz × div[p] (mode 1). */
export function pool_avg_bwd(S: i32, n: i32, C: i32, idx: usize, KK: i32, Pn: i32, dz: usize, div: usize, mode: i32, dA: usize): void {
  const nB = <usize>n << 2, rowB = <usize>S << 2;
  for (let p = 0; p < Pn; p++) {
    const dv = v128.load32_splat(div + (<usize>p << 2));
    for (let c = 0; c < C; c++) {
      const r = <usize>(p * C + c) * rowB;
      for (let j = 0; j < KK; j++) {
        const s = load<i32>(idx + (<usize>(p * KK + j) << 2));
        if (s < 0) continue;
        const q = <usize>(s * C + c) * rowB;
        for (let o: usize = 0; o < nB; o += 16) {
          const g = mode == 0 ? f32x4.div(v128.load(dz + r + o), dv) : f32x4.mul(v128.load(dz + r + o), dv);
          v128.store(dA + q + o, f32x4.add(v128.load(dA + q + o), g));
        }
      }
    }
  }
}

/** Batch moments of K rows over their first nValid columns (as tf.moments): mean, then mean of squared deviations. */
export function bn_stats(A: usize, K: i32, S: i32, nValid: i32, mean: usize, variance: usize): void {
  const rowB = <usize>S << 2;
  for (let k = 0; k < K; k++) {
    const r = A + <usize>k * rowB;
    let s: f64 = 0;
    for (let b = 0; b < nValid; b++) s += <f64>load<f32>(r + (<usize>b << 2));
    const m = <f32>(s / <f64>nValid);
    let v: f64 = 0;
    for (let b = 0; b < nValid; b++) { const d = <f64>(load<f32>(r + (<usize>b << 2)) - m); v += d * d; }
    store<f32>(mean + (<usize>k << 2), m);
    store<f32>(variance + (<usize>k << 2), <f32>(v / <f64>nValid));
  }
}

/** Batch-norm statistics backward: dA[k, b] += gm[k] + gv[k]·(A[k, b] − mean[k]) for the valid columns b < nValid. */
export function bn_dx_add(dA: usize, A: usize, K: i32, S: i32, nValid: i32, gm: usize, gv: usize, mean: usize): void {
  const rowB = <usize>S << 2;
  for (let k = 0; k < K; k++) {
    const r = <usize>k * rowB;
    const m = load<f32>(mean + (<usize>k << 2)), a = load<f32>(gm + (<usize>k << 2)), v = load<f32>(gv + (<usize>k << 2));
    for (let b = 0; b < nValid; b++) {
      const o = r + (<usize>b << 2);
      store<f32>(dA + o, load<f32>(dA + o) + (a + v * (load<f32>(A + o) - m)));
    }
  }
}

/** Per-channel affine on feature-major rows (channel = row % C): out[r] = A[r]·s[c] + o[c], rows r0..r0+R of n columns. */
export function chan_affine(A: usize, S: i32, n: i32, r0: i32, R: i32, C: i32, s: usize, o: usize, out: usize): void {
  const rowB = <usize>S << 2, nB = <usize>n << 2;
  for (let r = r0; r < r0 + R; r++) {
    const c = r % C;
    const sv = v128.load32_splat(s + (<usize>c << 2)), ov = v128.load32_splat(o + (<usize>c << 2));
    const q = <usize>r * rowB;
    for (let j: usize = 0; j < nB; j += 16) v128.store(out + q + j, f32x4.add(f32x4.mul(v128.load(A + q + j), sv), ov));
  }
}

/** Its backward: dA[r] = dy[r]·s[c]; gs[c] += Σ dy·A, go[c] += Σ dy (per-channel sums, f32). */
export function chan_affine_bwd(dy: usize, A: usize, S: i32, n: i32, r0: i32, R: i32, C: i32, s: usize, dA: usize, gs: usize, go: usize): void {
  const rowB = <usize>S << 2, nB = <usize>n << 2;
  for (let r = r0; r < r0 + R; r++) {
    const c = r % C;
    const sv = v128.load32_splat(s + (<usize>c << 2));
    const q = <usize>r * rowB;
    let a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    for (let j: usize = 0; j < nB; j += 16) {
      const g = v128.load(dy + q + j);
      a1 = madd(g, v128.load(A + q + j), a1);
      a2 = f32x4.add(a2, g);
      v128.store(dA + q + j, f32x4.mul(g, sv));
    }
    const cs = <usize>c << 2;
    store<f32>(gs + cs, load<f32>(gs + cs) + hsum(a1));
    store<f32>(go + cs, load<f32>(go + cs) + hsum(a2));
  }
}

/** Elementwise merge of two operands over n floats: op 0 a+b, 1 a−b, 2 a·b, 3 max(a, b), 4 min(a, b). */
export function ew_fwd(op: i32, a: usize, b: usize, out: usize, n: i32): void {
  const nB = <usize>n << 2;
  for (let o: usize = 0; o < nB; o += 16) {
    const x = v128.load(a + o), y = v128.load(b + o);
    let r: v128;
    if (op == 0) r = f32x4.add(x, y);
    else if (op == 1) r = f32x4.sub(x, y);
    else if (op == 2) r = f32x4.mul(x, y);
    else if (op == 3) r = f32x4.max(x, y);
    else r = f32x4.min(x, y);
    v128.store(out + o, r);
  }
}

/**
 * Its backward as tfjs differentiates it: ga, gb from g (ga may alias g); max/min pass g to a on ties
 * (tf.maximum: a ≥ b, tf.minimum: a ≤ b).
 */
export function ew_bwd(op: i32, a: usize, b: usize, g: usize, ga: usize, gb: usize, n: i32): void {
  const nB = <usize>n << 2;
  for (let o: usize = 0; o < nB; o += 16) {
    const gg = v128.load(g + o), x = v128.load(a + o), y = v128.load(b + o);
    let ra = gg, rb = gg;
    if (op == 1) rb = f32x4.neg(gg);
    else if (op == 2) { ra = f32x4.mul(gg, y); rb = f32x4.mul(gg, x); }
    else if (op >= 3) {
      const m = op == 3 ? f32x4.ge(x, y) : f32x4.le(x, y);
      ra = v128.and(gg, m); rb = v128.andnot(gg, m);
    }
    v128.store(gb + o, rb);
    v128.store(ga + o, ra);
  }
}

// =========================================================================================================
// HGQ-LUT table layers (QDenseT, src/layers/table-dense.ts) on the graph path. Every edge e = i·nOut + o (the
// tfjs [n_in, n_out] order) runs its own MLP 1 → d (nHl hidden layers) → 1 on the input row i. Work is
// edge-major: one edge's weights are splatted once per block of 16 samples (4 vectors) and reused across the
// block; the block's hidden activations live in per-thread scratch (L1-resident). A thread owns whole input rows
// i (all nOut edges of each), so it owns their parameter gradients and the input-gradient rows.
// wtab/gtab: i32 tables [W_0, B_0, …, W_{nHl−1}, B_{nHl−1}, W_out, B_out] of weight / gradient addresses in the
// tfjs layouts (hidden l kernel [E, dIn, d], bias [E, d]; output kernel [E, dLast], bias [E]); bias 0 = none.
// Sub-network activations: 0 linear, 1 relu, 2 tanh, 3 sigmoid.
// Scratch (per thread, bytes): 128 + nHl·d·64 (H) + 2·max(d,1)·64 (GH) + 64 (GY) + 16·(parameters per edge) (AC).
// Convolutions (QConvT*) run on im2col rows: every row has Pn position blocks of S columns (row length Pn·S); the
// weights are shared by the positions, the quantizers' per-edge arrays (prep, sums, amx) are per (e, p): e·Pn + p.

/**
 * tanh as a 13/6 rational minimax approximation on [−7.905, 7.905] (clamped beyond, where tanh rounds to ±1 in
 * float32); within 4e-7 of Math.tanh in float32. One division, no exp: the sub-networks' hot spot.
 */
@inline function tanhv(x0: v128): v128 {
  const x = f32x4.pmin(f32x4.splat(7.90531110763549805), f32x4.pmax(f32x4.splat(-7.90531110763549805), x0));
  const z = f32x4.mul(x, x);
  let p = f32x4.splat(-2.76076847742355e-16);
  p = madd(p, z, f32x4.splat(2.00018790482477e-13));
  p = madd(p, z, f32x4.splat(-8.60467152213735e-11));
  p = madd(p, z, f32x4.splat(5.12229709037114e-8));
  p = madd(p, z, f32x4.splat(1.48572235717979e-5));
  p = madd(p, z, f32x4.splat(6.37261928875436e-4));
  p = madd(p, z, f32x4.splat(4.89352455891786e-3));
  let q = f32x4.splat(1.19825839466702e-6);
  q = madd(q, z, f32x4.splat(1.18534705686654e-4));
  q = madd(q, z, f32x4.splat(2.268434632439e-3));
  q = madd(q, z, f32x4.splat(4.89352518554385e-3));
  return f32x4.div(f32x4.mul(p, x), q);
}

@inline function subAct(x: v128, act: i32): v128 {
  if (act == 1) return f32x4.max(x, f32x4.splat(0));
  if (act == 2) return tanhv(x);
  if (act == 3) return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), expv(f32x4.neg(x))));
  return x;
}

/** The activation's derivative from its output h (tfjs: relu step(x) = [h > 0], tanh 1 − h², sigmoid h·(1 − h)). */
@inline function subActGrad(g: v128, h: v128, act: i32): v128 {
  if (act == 1) return v128.and(g, f32x4.gt(h, f32x4.splat(0)));
  if (act == 2) return f32x4.mul(g, f32x4.sub(f32x4.splat(1), f32x4.mul(h, h)));
  if (act == 3) return f32x4.mul(g, f32x4.mul(h, f32x4.sub(f32x4.splat(1), h)));
  return g;
}

@inline function tabAt(tab: usize, j: i32): usize {
  return <usize>load<i32>(tab + (<usize>j << 2));
}

/**
 * Quantizes a block of 16 samples of row xr (input quantizer of one edge, prep [2^f, 2^-f, lo, hi]; flags bit0
 * on, bit2 SAT-like) into XQ (XR keeps the raw values); the |x_q| maximum over valid samples into *amx (if ≠ 0).
 */
@inline function lutQuantIn(xr: usize, XR: usize, XQ: usize, flags: i32, pp: usize, amx: usize, b: i32, nbValid: i32): void {
  const sc = v128.load32_splat(pp), inv = v128.load32_splat(pp, 4);
  const lo = v128.load32_splat(pp, 8), hi = v128.load32_splat(pp, 12);
  let m = f32x4.splat(0);
  for (let v = 0; v < 4; v++) {
    const o = <usize>v << 4;
    const x = v128.load(xr + o);
    v128.store(XR + o, x);
    let q = x;
    if (flags & 1) {
      let y = x;
      if (flags & 4) y = f32x4.pmin(hi, f32x4.pmax(lo, y));
      q = f32x4.mul(rndv(f32x4.mul(y, sc)), inv);
      m = f32x4.pmax(m, v128.and(f32x4.abs(q), validMask(b + v * 4, nbValid)));
    }
    v128.store(XQ + o, q);
  }
  if (amx && (flags & 1)) store<f32>(amx, Mathf.max(load<f32>(amx), hmax(m)));
}

/** One edge's MLP on a block (4 vectors at XQ): hidden activations into H (layer l at H + l·d·64), y into Yo. */
@inline function lutMlpFwd(e: usize, nHl: i32, d: i32, act: i32, wtab: usize, XQ: usize, H: usize, Yo: usize): void {
  let prev = XQ;
  let dIn = 1;
  for (let l = 0; l < nHl; l++) {
    const W = tabAt(wtab, 2 * l) + ((e * <usize>dIn * <usize>d) << 2);
    const Bp = tabAt(wtab, 2 * l + 1);
    const Hl = H + ((<usize>l * <usize>d) << 6);
    for (let j = 0; j < d; j++) {
      let w = v128.load32_splat(W + (<usize>j << 2));
      let a0 = f32x4.mul(v128.load(prev), w), a1 = f32x4.mul(v128.load(prev, 16), w);
      let a2 = f32x4.mul(v128.load(prev, 32), w), a3 = f32x4.mul(v128.load(prev, 48), w);
      for (let k = 1; k < dIn; k++) {
        w = v128.load32_splat(W + ((<usize>k * <usize>d + <usize>j) << 2));
        const pk = prev + (<usize>k << 6);
        a0 = madd(v128.load(pk), w, a0);
        a1 = madd(v128.load(pk, 16), w, a1);
        a2 = madd(v128.load(pk, 32), w, a2);
        a3 = madd(v128.load(pk, 48), w, a3);
      }
      if (Bp) {
        const bj = v128.load32_splat(Bp + ((e * <usize>d + <usize>j) << 2));
        a0 = f32x4.add(a0, bj);
        a1 = f32x4.add(a1, bj);
        a2 = f32x4.add(a2, bj);
        a3 = f32x4.add(a3, bj);
      }
      const hj = Hl + (<usize>j << 6);
      v128.store(hj, subAct(a0, act));
      v128.store(hj, subAct(a1, act), 16);
      v128.store(hj, subAct(a2, act), 32);
      v128.store(hj, subAct(a3, act), 48);
    }
    prev = Hl;
    dIn = d;
  }
  const W = tabAt(wtab, 2 * nHl) + ((e * <usize>dIn) << 2);
  const Bp = tabAt(wtab, 2 * nHl + 1);
  let w = v128.load32_splat(W);
  let a0 = f32x4.mul(v128.load(prev), w), a1 = f32x4.mul(v128.load(prev, 16), w);
  let a2 = f32x4.mul(v128.load(prev, 32), w), a3 = f32x4.mul(v128.load(prev, 48), w);
  for (let k = 1; k < dIn; k++) {
    w = v128.load32_splat(W + (<usize>k << 2));
    const pk = prev + (<usize>k << 6);
    a0 = madd(v128.load(pk), w, a0);
    a1 = madd(v128.load(pk, 16), w, a1);
    a2 = madd(v128.load(pk, 32), w, a2);
    a3 = madd(v128.load(pk, 48), w, a3);
  }
  if (Bp) {
    const bo = v128.load32_splat(Bp + (e << 2));
    a0 = f32x4.add(a0, bo);
    a1 = f32x4.add(a1, bo);
    a2 = f32x4.add(a2, bo);
    a3 = f32x4.add(a3, bo);
  }
  v128.store(Yo, a0);
  v128.store(Yo, a1, 16);
  v128.store(Yo, a2, 32);
  v128.store(Yo, a3, 48);
}

/**
 * Table forward, part 1: for input rows r0..r0+nr (all nOut edges each) the edge's input quantizer and MLP over
 * all S columns into Y[e·S + b] (pre-normalization edge values); per-edge |x_q| maxima into amx (WRAP tracking).
 */
export function lut_fwd(X: usize, S: i32, nbValid: i32, r0: i32, nr: i32, nOut: i32, Pn: i32, iqPrep: usize, iqFlags: i32, amx: usize,
  nHl: i32, d: i32, act: i32, wtab: usize, Y: usize, scratch: usize): void {
  // one copy per activation (constant-folded): no per-element branch on act in the MLP loops
  if (act == 2) lutFwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, amx, nHl, d, 2, wtab, Y, scratch);
  else if (act == 1) lutFwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, amx, nHl, d, 1, wtab, Y, scratch);
  else if (act == 3) lutFwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, amx, nHl, d, 3, wtab, Y, scratch);
  else lutFwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, amx, nHl, d, 0, wtab, Y, scratch);
}

@inline function lutFwdBody(X: usize, S: i32, nbValid: i32, r0: i32, nr: i32, nOut: i32, Pn: i32, iqPrep: usize, iqFlags: i32, amx: usize,
  nHl: i32, d: i32, act: i32, wtab: usize, Y: usize, scratch: usize): void {
  const XR = scratch, XQ = scratch + 64, H = scratch + 128;
  const rowB = <usize>(Pn * S) << 2;
  for (let i = r0; i < r0 + nr; i++) {
    const xr = X + <usize>i * rowB;
    for (let o = 0; o < nOut; o++) {
      const e = <usize>i * <usize>nOut + <usize>o;
      const yr = Y + e * rowB;
      for (let p = 0; p < Pn; p++) {
        const pe = e * <usize>Pn + <usize>p;
        for (let b = 0; b < S; b += 16) {
          const col = <usize>(p * S + b) << 2;
          lutQuantIn(xr + col, XR, XQ, iqFlags, iqPrep + (pe << 4), amx ? amx + (pe << 2) : 0, b, nbValid);
          lutMlpFwd(e, nHl, d, act, wtab, XQ, H, yr + col);
        }
      }
    }
  }
}

/** The normalized edge value: (y·s + r)/√n_in with batch norm (coef[o] = [s, r, …]), else y itself (as the tfjs layer). */
@inline function lutNorm(y: v128, bn: bool, s: v128, r: v128, sq: v128): v128 {
  return bn ? f32x4.div(f32x4.add(f32x4.mul(y, s), r), sq) : y;
}

/**
 * Table forward, part 2: the table output quantizer on every edge value (per-edge prep, SAT-like) summed over the
 * thread's input rows into part[o·S + b] (the first row writes). flags bit0: batch norm (coef: 8 floats per o).
 */
export function lut_q(Y: usize, S: i32, r0: i32, nr: i32, nOut: i32, Pn: i32, coef: usize, sqrtN: f32, flags: i32, tqPrep: usize, part: usize): void {
  const rowB = <usize>(Pn * S) << 2, blockB = <usize>S << 2;
  const bn = (flags & 1) != 0;
  const sq = f32x4.splat(sqrtN);
  for (let i = r0; i < r0 + nr; i++) {
    for (let o = 0; o < nOut; o++) for (let p = 0; p < Pn; p++) {
      const e = <usize>i * <usize>nOut + <usize>o;
      const pp = tqPrep + ((e * <usize>Pn + <usize>p) << 4);
      const sc = v128.load32_splat(pp), inv = v128.load32_splat(pp, 4);
      const lo = v128.load32_splat(pp, 8), hi = v128.load32_splat(pp, 12);
      const cp = coef + (<usize>o << 5);
      const s = v128.load32_splat(cp), r = v128.load32_splat(cp, 4);
      const yr = Y + e * rowB + <usize>p * blockB, pr = part + <usize>o * rowB + <usize>p * blockB;
      for (let b: usize = 0; b < blockB; b += 16) {
        const v = f32x4.pmin(hi, f32x4.pmax(lo, lutNorm(v128.load(yr + b), bn, s, r, sq)));
        const t = f32x4.mul(rndv(f32x4.mul(v, sc)), inv);
        v128.store(pr + b, i == r0 ? t : f32x4.add(v128.load(pr + b), t));
      }
    }
  }
}

/**
 * Table backward, part 1: from dz (∂L/∂(Σ_i t), rows o) through each edge's output quantizer: sums[3e..] +=
 * (Σ g·(t − clip v), Σ g·[v > hi], Σ g·[v < lo]); G[e] = g·[in range] (with batch norm ∂L/∂(y·s + r), ÷ √n_in); with batch norm
 * rsum[2e..] = (Σ G, Σ G·y) for the statistics' and γ/β's gradients.
 */
export function lut_q_bwd(Y: usize, S: i32, r0: i32, nr: i32, nOut: i32, Pn: i32, coef: usize, sqrtN: f32, flags: i32, tqPrep: usize,
  dz: usize, G: usize, tqSums: usize, rsum: usize): void {
  const rowB = <usize>(Pn * S) << 2, blockB = <usize>S << 2;
  const bn = (flags & 1) != 0;
  const sq = f32x4.splat(sqrtN);
  for (let i = r0; i < r0 + nr; i++) {
    for (let o = 0; o < nOut; o++) {
      const e = <usize>i * <usize>nOut + <usize>o;
      const cp = coef + (<usize>o << 5);
      const s = v128.load32_splat(cp), r = v128.load32_splat(cp, 4);
      let s1 = f32x4.splat(0), s2 = f32x4.splat(0);
      for (let p = 0; p < Pn; p++) {
      const pe = e * <usize>Pn + <usize>p;
      const pp = tqPrep + (pe << 4);
      const sc = v128.load32_splat(pp), inv = v128.load32_splat(pp, 4);
      const lo = v128.load32_splat(pp, 8), hi = v128.load32_splat(pp, 12);
      const off = <usize>p * blockB;
      const yr = Y + e * rowB + off, gr = G + e * rowB + off, dr = dz + <usize>o * rowB + off;
      let sd = f32x4.splat(0), st = f32x4.splat(0), sb = f32x4.splat(0);
      for (let b: usize = 0; b < blockB; b += 16) {
        const y = v128.load(yr + b);
        const v = lutNorm(y, bn, s, r, sq);
        const top = f32x4.gt(v, hi), bot = f32x4.lt(v, lo);
        const vc = f32x4.pmin(hi, f32x4.pmax(lo, v));
        const t = f32x4.mul(rndv(f32x4.mul(vc, sc)), inv);
        const g = v128.load(dr + b);
        sd = madd(g, f32x4.sub(t, vc), sd);
        st = f32x4.add(st, v128.and(g, top));
        sb = f32x4.add(sb, v128.and(g, bot));
        const gv = v128.andnot(g, v128.or(top, bot));
        const gz = bn ? f32x4.div(gv, sq) : gv;
        v128.store(gr + b, gz);
        s1 = f32x4.add(s1, gz);
        s2 = madd(gz, y, s2);
      }
      const sp = tqSums + pe * 12;
      store<f32>(sp, load<f32>(sp) + hsum(sd));
      store<f32>(sp, load<f32>(sp, 4) + hsum(st), 4);
      store<f32>(sp, load<f32>(sp, 8) + hsum(sb), 8);
      }
      if (bn) {
        store<f32>(rsum + (e << 3), hsum(s1));
        store<f32>(rsum + (e << 3), hsum(s2), 4);
      }
    }
  }
}

/** acc (one vector per parameter) += Σ_v g_v·p_v over a block's 4 vectors. */
@inline function acc4(acc: usize, g: usize, p: usize): void {
  let a = v128.load(acc);
  a = madd(v128.load(g), v128.load(p), a);
  a = madd(v128.load(g, 16), v128.load(p, 16), a);
  a = madd(v128.load(g, 32), v128.load(p, 32), a);
  a = madd(v128.load(g, 48), v128.load(p, 48), a);
  v128.store(acc, a);
}
@inline function accSum4(acc: usize, g: usize): void {
  v128.store(acc, f32x4.add(v128.load(acc), f32x4.add(f32x4.add(v128.load(g), v128.load(g, 16)), f32x4.add(v128.load(g, 32), v128.load(g, 48)))));
}

/**
 * One edge's MLP backward on a block: gy (4 vectors at GY) → parameter-gradient accumulators (AC, one vector per
 * parameter: output kernel, output bias, then per hidden layer from the last: kernel, bias) and ∂L/∂x_q into GX.
 */
@inline function lutMlpBwd(e: usize, nHl: i32, d: i32, act: i32, wtab: usize, XQ: usize, H: usize, GH: usize, GY: usize, AC: usize, GX: usize): void {
  const dLast = nHl > 0 ? d : 1;
  const last = nHl > 0 ? H + ((<usize>(nHl - 1) * <usize>d) << 6) : XQ;
  const Wo = tabAt(wtab, 2 * nHl) + ((e * <usize>dLast) << 2);
  let ac = AC;
  for (let k = 0; k < dLast; k++) acc4(ac + (<usize>k << 4), GY, last + (<usize>k << 6));
  ac += <usize>dLast << 4;
  if (tabAt(wtab, 2 * nHl + 1)) accSum4(ac, GY);
  ac += 16;
  const gy0 = v128.load(GY), gy1 = v128.load(GY, 16), gy2 = v128.load(GY, 32), gy3 = v128.load(GY, 48);
  // ∂L/∂(last layer's input) into gCur (times the activation's derivative when it is a hidden layer)
  let gCur = nHl > 0 ? GH : GX;
  for (let k = 0; k < dLast; k++) {
    const w = v128.load32_splat(Wo + (<usize>k << 2));
    const gk = gCur + (<usize>k << 6), hk = last + (<usize>k << 6);
    if (nHl > 0) {
      v128.store(gk, subActGrad(f32x4.mul(gy0, w), v128.load(hk), act));
      v128.store(gk, subActGrad(f32x4.mul(gy1, w), v128.load(hk, 16), act), 16);
      v128.store(gk, subActGrad(f32x4.mul(gy2, w), v128.load(hk, 32), act), 32);
      v128.store(gk, subActGrad(f32x4.mul(gy3, w), v128.load(hk, 48), act), 48);
    } else {
      v128.store(gk, f32x4.mul(gy0, w));
      v128.store(gk, f32x4.mul(gy1, w), 16);
      v128.store(gk, f32x4.mul(gy2, w), 32);
      v128.store(gk, f32x4.mul(gy3, w), 48);
    }
  }
  for (let l = nHl - 1; l >= 0; l--) {
    const dIn = l > 0 ? d : 1;
    const prev = l > 0 ? H + ((<usize>(l - 1) * <usize>d) << 6) : XQ;
    const W = tabAt(wtab, 2 * l) + ((e * <usize>dIn * <usize>d) << 2);
    for (let k = 0; k < dIn; k++)
      for (let j = 0; j < d; j++) acc4(ac + ((<usize>k * <usize>d + <usize>j) << 4), gCur + (<usize>j << 6), prev + (<usize>k << 6));
    ac += (<usize>dIn * <usize>d) << 4;
    if (tabAt(wtab, 2 * l + 1)) for (let j = 0; j < d; j++) accSum4(ac + (<usize>j << 4), gCur + (<usize>j << 6));
    ac += <usize>d << 4;
    const gNext = l > 0 ? (gCur == GH ? GH + (<usize>d << 6) : GH) : GX;
    for (let k = 0; k < dIn; k++) {
      let w = v128.load32_splat(W + ((<usize>k * <usize>d) << 2));
      let a0 = f32x4.mul(v128.load(gCur), w), a1 = f32x4.mul(v128.load(gCur, 16), w);
      let a2 = f32x4.mul(v128.load(gCur, 32), w), a3 = f32x4.mul(v128.load(gCur, 48), w);
      for (let j = 1; j < d; j++) {
        w = v128.load32_splat(W + ((<usize>k * <usize>d + <usize>j) << 2));
        const gj = gCur + (<usize>j << 6);
        a0 = madd(v128.load(gj), w, a0);
        a1 = madd(v128.load(gj, 16), w, a1);
        a2 = madd(v128.load(gj, 32), w, a2);
        a3 = madd(v128.load(gj, 48), w, a3);
      }
      const gk = gNext + (<usize>k << 6);
      if (l > 0) {
        const hk = prev + (<usize>k << 6);
        a0 = subActGrad(a0, v128.load(hk), act);
        a1 = subActGrad(a1, v128.load(hk, 16), act);
        a2 = subActGrad(a2, v128.load(hk, 32), act);
        a3 = subActGrad(a3, v128.load(hk, 48), act);
      }
      v128.store(gk, a0);
      v128.store(gk, a1, 16);
      v128.store(gk, a2, 32);
      v128.store(gk, a3, 48);
    }
    gCur = gNext;
  }
}

/** g[j] += lane sum of the accumulator vector j at ac, j < n. */
@inline function lutPut(g: usize, n: i32, ac: usize): void {
  for (let j = 0; j < n; j++) {
    const p = g + (<usize>j << 2);
    store<f32>(p, load<f32>(p) + hsum(v128.load(ac + (<usize>j << 4))));
  }
}

/** Adds the lane sums of the accumulators AC into the edge's gradient arrays (gtab, the AC order of lutMlpBwd). */
@inline function lutFlushGrads(e: usize, nHl: i32, d: i32, wtab: usize, gtab: usize, AC: usize): void {
  const dLast = nHl > 0 ? d : 1;
  let ac = AC;
  lutPut(tabAt(gtab, 2 * nHl) + ((e * <usize>dLast) << 2), dLast, ac);
  ac += <usize>dLast << 4;
  if (tabAt(wtab, 2 * nHl + 1)) lutPut(tabAt(gtab, 2 * nHl + 1) + (e << 2), 1, ac);
  ac += 16;
  for (let l = nHl - 1; l >= 0; l--) {
    const dIn = l > 0 ? d : 1;
    lutPut(tabAt(gtab, 2 * l) + ((e * <usize>dIn * <usize>d) << 2), dIn * d, ac);
    ac += (<usize>dIn * <usize>d) << 4;
    if (tabAt(wtab, 2 * l + 1)) lutPut(tabAt(gtab, 2 * l + 1) + ((e * <usize>d) << 2), d, ac);
    ac += <usize>d << 4;
  }
}

/**
 * Table backward, part 2: per edge gy = G·s + [valid]·(gm + gv·(y − μ)) (coef[o] = [s, r, μ, gm, gv, …]; without
 * batch norm gy = G), the MLP backward (forward recomputed per block) into the weight gradients, the input
 * quantizer's backward (sums[3e..] as act_q_bwd) and ∂L/∂x summed over o into dA rows (if dA ≠ 0).
 */
export function lut_bwd(X: usize, S: i32, nbValid: i32, r0: i32, nr: i32, nOut: i32, Pn: i32, iqPrep: usize, iqFlags: i32, iqSums: usize,
  nHl: i32, d: i32, act: i32, wtab: usize, gtab: usize, G: usize, Y: usize, coef: usize, flags: i32, dA: usize, nAcc: i32,
  scratch: usize): void {
  if (act == 2) lutBwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, iqSums, nHl, d, 2, wtab, gtab, G, Y, coef, flags, dA, nAcc, scratch);
  else if (act == 1) lutBwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, iqSums, nHl, d, 1, wtab, gtab, G, Y, coef, flags, dA, nAcc, scratch);
  else if (act == 3) lutBwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, iqSums, nHl, d, 3, wtab, gtab, G, Y, coef, flags, dA, nAcc, scratch);
  else lutBwdBody(X, S, nbValid, r0, nr, nOut, Pn, iqPrep, iqFlags, iqSums, nHl, d, 0, wtab, gtab, G, Y, coef, flags, dA, nAcc, scratch);
}

@inline function lutBwdBody(X: usize, S: i32, nbValid: i32, r0: i32, nr: i32, nOut: i32, Pn: i32, iqPrep: usize, iqFlags: i32, iqSums: usize,
  nHl: i32, d: i32, act: i32, wtab: usize, gtab: usize, G: usize, Y: usize, coef: usize, flags: i32, dA: usize, nAcc: i32,
  scratch: usize): void {
  const XR = scratch, XQ = scratch + 64, H = scratch + 128;
  const GH = H + ((<usize>nHl * <usize>d) << 6);
  const dMax = d > 1 ? d : 1;
  const GY = GH + (<usize>dMax << 7), GX = GY + 64, AC = GX + 64;
  const rowB = <usize>(Pn * S) << 2;
  const bn = (flags & 1) != 0;
  const sat = (iqFlags & 4) != 0;
  for (let i = r0; i < r0 + nr; i++) {
    const xr = X + <usize>i * rowB;
    for (let o = 0; o < nOut; o++) {
      const e = <usize>i * <usize>nOut + <usize>o;
      const cp = coef + (<usize>o << 5);
      const s = v128.load32_splat(cp), mu = v128.load32_splat(cp, 8), gm = v128.load32_splat(cp, 12), gv = v128.load32_splat(cp, 16);
      zeroVecs(AC, nAcc);
      const yr = Y + e * rowB, gr = G + e * rowB;
      for (let p = 0; p < Pn; p++) {
      const pe = e * <usize>Pn + <usize>p;
      const pp = iqPrep + (pe << 4);
      const lo = v128.load32_splat(pp, 8), hi = v128.load32_splat(pp, 12);
      let sd = f32x4.splat(0), st = f32x4.splat(0), sb = f32x4.splat(0);
      for (let b = 0; b < S; b += 16) {
        const bo = <usize>(p * S + b) << 2;
        let zero = true;
        for (let v = 0; v < 4; v++) {
          const vo = <usize>v << 4;
          let g = v128.load(gr + bo + vo);
          if (bn) g = madd(g, s, v128.and(madd(gv, f32x4.sub(v128.load(yr + bo + vo), mu), gm), validMask(b + v * 4, nbValid)));
          v128.store(GY + vo, g);
          if (v128.any_true(g)) zero = false;
        }
        if (zero) {
          if (dA) for (let v = 0; v < 4; v++) v128.store(dA + <usize>i * rowB + bo + (<usize>v << 4), o == 0 ? f32x4.splat(0) : v128.load(dA + <usize>i * rowB + bo + (<usize>v << 4)));
          continue;
        }
        lutQuantIn(xr + bo, XR, XQ, iqFlags, pp, 0, b, nbValid);
        lutMlpFwd(e, nHl, d, act, wtab, XQ, H, GX); // y itself is not needed: GX is overwritten below
        lutMlpBwd(e, nHl, d, act, wtab, XQ, H, GH, GY, AC, GX);
        for (let v = 0; v < 4; v++) {
          const vo = <usize>v << 4;
          const g = v128.load(GX + vo), x = v128.load(XR + vo), xq = v128.load(XQ + vo);
          let dx = g;
          if (iqFlags & 1) {
            if (sat) {
              const top = f32x4.gt(x, hi), bot = f32x4.lt(x, lo);
              sd = madd(g, f32x4.sub(xq, f32x4.pmin(hi, f32x4.pmax(lo, x))), sd);
              st = f32x4.add(st, v128.and(g, top));
              sb = f32x4.add(sb, v128.and(g, bot));
              dx = v128.andnot(g, v128.or(top, bot));
            } else sd = madd(g, f32x4.sub(xq, x), sd);
          }
          if (dA) {
            const p = dA + <usize>i * rowB + bo + vo;
            v128.store(p, o == 0 ? dx : f32x4.add(v128.load(p), dx));
          }
        }
      }
      if (iqFlags & 1) {
        const sp = iqSums + pe * 12;
        store<f32>(sp, load<f32>(sp) + hsum(sd));
        store<f32>(sp, load<f32>(sp, 4) + hsum(st), 4);
        store<f32>(sp, load<f32>(sp, 8) + hsum(sb), 8);
      }
      }
      lutFlushGrads(e, nHl, d, wtab, gtab, AC);
    }
  }
}

/** p[j] = max(p[j], 0) in place on n floats (n a multiple of 4): a layer's ReLU after a reduction. */
export function relu_fwd(p: usize, n: i32): void {
  const nB = <usize>n << 2;
  for (let o: usize = 0; o < nB; o += 16) v128.store(p + o, f32x4.max(v128.load(p + o), f32x4.splat(0)));
}
