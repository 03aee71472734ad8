/**
 * The graph path's HGQ-LUT table layer (QDenseT, TableDesc): every edge e = i·n_out + o runs its own small MLP
 * on input row i. Kernels (assembly/engine.ts, lut_*) work edge-major over blocks of 16 samples; a thread owns
 * whole input rows (their n_out edges, their parameter gradients, their input-gradient rows). Per step:
 *   forward  lut_fwd (iq + MLP → Y), [batch-norm statistics], lut_q (toq, Σ_i into per-thread partial sums),
 *            the partial sums reduced, ReLU;
 *   backward lut_q_bwd (toq backward → G, batch-norm row sums), [statistics' gradients], lut_bwd (MLP backward
 *            with the forward recomputed per block, iq backward, ∂L/∂x).
 * The quantizers' per-edge constants (prep), their parameter gradients from the per-edge sums, WRAP tracking and
 * EBOPs (tableEbops: QDenseT.ebopsTensor's formula) are O(edges) host loops; parameters may be shared by edges.
 * QConvT1D/2D: the input is first expanded by im2col into n_in rows of Pn position blocks (the weights are shared by
 * the positions, the quantizers per (edge, position)); the output comes back to the engine's (position, filter) rows
 * by perm_rows, and the input gradient by col2im_add.
 */
import type { KernelExports } from './kernels.ts';
import { checkArr, type KbiMem, type KifMem, type ParamArena } from './params.ts';
import type { Call } from './pool.ts';
import type { Param, TableDesc } from './types.ts';

const fr = Math.fround;
const LN2 = Math.LN2;
/** round half to even, as tf.round */
const rte = (x: number): number => {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const ACT_CODE = { linear: 0, relu: 1, tanh: 2, sigmoid: 3 } as const;

/** What a table layer needs from the graph engine for one pass. */
/** A convolution's window gather, as graph.ts lays it out (see GraphEngine.windows). */
export interface TableConv {
  C: number;
  KK: number;
  idx: number;
  /** features of the layer input (spatial positions × C) */
  K: number;
}

export interface TableCtx {
  k: KernelExports;
  f32(): Float32Array;
  threads: number;
  S: number;
  B: number;
  par(callsOf: (t: number) => Call[]): number;
  rows(t: number, K: number): [number, number];
  flat(t: number, n: number): [number, number];
}

interface BnMem {
  pG?: Param;
  pB?: Param;
  pMM: Param;
  pMV: Param;
  rowMean: number;
  rowVar: number;
  rsum: number;
  mean: Float64Array;
  rsq: Float64Array;
  inv: Float64Array;
}

/** Each edge's parameter index for a quantizer's parameters (default: one per edge), checked. */
function edgeIndex(idx: Int32Array | undefined, E: number, n: number, what: string): Int32Array {
  if (!idx) {
    if (n !== E) throw new Error(`hgq engine: ${what} has ${n} parameters; give an edge index for ${E} edges`);
    return Int32Array.from({ length: E }, (_, e) => e);
  }
  if (idx.length !== E || idx.some((p) => !(p >= 0 && p < n)))
    throw new Error(`hgq engine: ${what} index must give each of the ${E} edges a parameter in 0..${n - 1}`);
  return idx;
}

export class TableLayer {
  readonly nIn: number;
  readonly nOut: number;
  readonly E: number;
  /** output positions (1 for QDenseT) and the (edge, position) entries of the quantizers' arrays */
  readonly Pn: number;
  private readonly EP: number;
  private readonly conv: TableConv | null;
  private readonly d: TableDesc;
  private readonly act: number;
  private readonly hidden: { W: Param; B?: Param }[] = [];
  private readonly outW: Param;
  private readonly outB?: Param;
  private readonly iq: KifMem | null;
  private readonly toq: KbiMem;
  private readonly iqIdx: Int32Array | null;
  private readonly toqIdx: Int32Array;
  private readonly bn: BnMem | null;
  private readonly wtab: number;
  private readonly gtab: number;
  private readonly nAcc: number;
  private readonly sqrtN: number;
  // per-edge quantizer constants and sums, per-output coefficients, per-thread scratch
  private readonly iqPrep: number;
  private readonly iqSums: number;
  private readonly amx: number;
  private readonly tqPrep: number;
  private readonly tqSums: number;
  private readonly coef: number;
  private readonly scratch: number[] = [];
  // batch-dependent
  private Y = 0;
  private G = 0;
  private parts: number[] = [];
  /** convolutions: the im2col rows, their gradient, the output and its gradient in (filter, position) row order */
  private Xp = 0;
  private dXp = 0;
  private outP = 0;
  private dzP = 0;

  constructor(ar: ParamArena, d: TableDesc, pre: string, threads: number, Pn = 1, conv: TableConv | null = null) {
    const { nIn, nOut, nHl, dHl } = d;
    this.Pn = Pn;
    this.conv = conv;
    for (const [v, what, min] of [
      [nIn, 'nIn', 1],
      [nOut, 'nOut', 1],
      [nHl, 'nHl', 0],
      [dHl, 'dHl', 1],
    ] as const)
      if (!(Number.isInteger(v) && v >= min)) throw new Error(`hgq engine: ${pre} ${what} must be an integer ≥ ${min}, got ${v}`);
    if (!(d.subnnActivation in ACT_CODE))
      throw new Error(
        `hgq engine: ${pre} sub-network activation ${d.subnnActivation} is not supported (linear, relu, tanh, sigmoid)`,
      );
    this.d = d;
    this.nIn = nIn;
    this.nOut = nOut;
    const E = (this.E = nIn * nOut);
    const EP = (this.EP = E * Pn);
    this.act = ACT_CODE[d.subnnActivation];
    this.sqrtN = fr(Math.sqrt(nIn));
    if (d.hiddenKernels.length !== nHl || (d.hiddenBiases.length !== 0 && d.hiddenBiases.length !== nHl))
      throw new Error(`hgq engine: ${pre} needs ${nHl} hidden kernels and ${nHl} (or no) hidden biases`);
    let dIn = 1;
    let nAcc = 0;
    for (let l = 0; l < nHl; l++) {
      const W = ar.param(
        `${pre}.hidden${l}.kernel`,
        checkArr(d.hiddenKernels[l], E * dIn * dHl, `${pre}.hidden${l}.kernel`),
        true,
      );
      const hb = d.hiddenBiases[l];
      const B = hb ? ar.param(`${pre}.hidden${l}.bias`, checkArr(hb, E * dHl, `${pre}.hidden${l}.bias`), true) : undefined;
      this.hidden.push({ W, B });
      nAcc += dIn * dHl + dHl;
      dIn = dHl;
    }
    this.outW = ar.param(`${pre}.out.kernel`, checkArr(d.outKernel, E * dIn, `${pre}.out.kernel`), true);
    if (d.outBias) this.outB = ar.param(`${pre}.out.bias`, checkArr(d.outBias, E, `${pre}.out.bias`), true);
    this.nAcc = nAcc + dIn + 1;
    const tab = (field: 'ptr' | 'grad') =>
      ar.put(
        Int32Array.from([
          ...this.hidden.flatMap((h) => [h.W[field], h.B ? h.B[field] : 0]),
          this.outW[field],
          this.outB ? this.outB[field] : 0,
        ]),
      );
    this.wtab = tab('ptr');
    this.gtab = tab('grad');
    this.iq = d.iq ? ar.kif(d.iq, d.iq.k.length, `${pre}.iq`) : null;
    this.iqIdx = d.iq ? edgeIndex(d.iqIndex, EP, d.iq.k.length, `${pre}.iq`) : null;
    this.toq = ar.kbi(d.toq, d.toq.k.length, `${pre}.toq`);
    this.toqIdx = edgeIndex(d.toqIndex, EP, d.toq.k.length, `${pre}.toq`);
    const bn = d.batchNorm;
    if (bn) {
      if (!(bn.momentum >= 0 && bn.momentum < 1 && bn.epsilon > 0))
        throw new Error(`hgq engine: ${pre} batch norm needs momentum in [0,1) and epsilon > 0`);
      this.bn = {
        pG: bn.gamma ? ar.param(`${pre}.bn.gamma`, checkArr(bn.gamma, nOut, `${pre}.bn.gamma`), true) : undefined,
        pB: bn.beta ? ar.param(`${pre}.bn.beta`, checkArr(bn.beta, nOut, `${pre}.bn.beta`), true) : undefined,
        pMM: ar.param(`${pre}.movingMean`, checkArr(bn.movingMean, nOut, `${pre}.movingMean`), false),
        pMV: ar.param(`${pre}.movingVariance`, checkArr(bn.movingVariance, nOut, `${pre}.movingVariance`), false),
        rowMean: ar.alloc(EP * 4),
        rowVar: ar.alloc(EP * 4),
        rsum: ar.alloc(E * 8),
        mean: new Float64Array(nOut),
        rsq: new Float64Array(nOut),
        inv: new Float64Array(nOut),
      };
    } else this.bn = null;
    this.iqPrep = ar.alloc(EP * 16);
    this.iqSums = ar.alloc(EP * 12);
    this.amx = ar.alloc(EP * 4);
    this.tqPrep = ar.alloc(EP * 16);
    this.tqSums = ar.alloc(EP * 12);
    this.coef = ar.alloc(nOut * 32);
    const scratchBytes = 128 + nHl * dHl * 64 + 2 * Math.max(dHl, 1) * 64 + 128 + this.nAcc * 16;
    for (let t = 0; t < threads; t++) this.scratch.push(ar.alloc(scratchBytes));
  }

  /** Per-batch buffers: Y and G (E rows of S), the other threads' partial sums (n_out rows). */
  layout(alloc: (floats: number) => number, S: number, threads: number): void {
    const W = this.Pn * S;
    this.Y = alloc(this.E * W);
    this.G = alloc(this.E * W);
    this.parts = [];
    for (let t = 1; t < threads; t++) this.parts.push(alloc(this.nOut * W));
    if (this.conv) {
      this.Xp = alloc(this.nIn * W);
      this.dXp = alloc(this.nIn * W);
      this.outP = alloc(this.nOut * W);
      this.dzP = alloc(this.nOut * W);
    }
  }

  private get iqFlags(): number {
    return this.iq ? 1 | (this.iq.mode === 0 ? 0 : 4) : 0;
  }

  /** The quantizers' per-edge constants [2^f, 2^-f, lo, hi] from their (clamped) parameters; sums and maxima zeroed. */
  private prepare(c: TableCtx): void {
    const f = c.f32(),
      E = this.EP;
    const put = (prep: number, e: number, fb: number, i0: number, k: number, mode: number) => {
      const i = Math.max(i0, -fb);
      const inv = 2 ** -fb,
        top = 2 ** i;
      const hi = fr(top - inv);
      const p = prep / 4 + 4 * e;
      f[p] = 2 ** fb;
      f[p + 1] = inv;
      f[p + 2] = mode === 1 ? -k * top : -k * hi;
      f[p + 3] = hi;
    };
    const iq = this.iq;
    if (iq) {
      const I = iq.i / 4,
        F = iq.f / 4,
        K = iq.k / 4;
      for (let e = 0; e < E; e++) {
        const p = this.iqIdx![e]!;
        const fb = rte(f[F + p]!);
        put(this.iqPrep, e, fb, rte(f[I + p]!), f[K + p]!, iq.mode);
      }
    }
    const q = this.toq,
      Bq = q.b / 4,
      Iq = q.i / 4,
      Kq = q.k / 4;
    for (let e = 0; e < E; e++) {
      const p = this.toqIdx[e]!;
      const i0 = rte(f[Iq + p]!);
      put(this.tqPrep, e, rte(f[Bq + p]!) - i0, i0, f[Kq + p]!, q.mode);
    }
    f.fill(0, this.iqSums / 4, this.iqSums / 4 + 3 * E);
    f.fill(0, this.amx / 4, this.amx / 4 + E);
    f.fill(0, this.tqSums / 4, this.tqSums / 4 + 3 * E);
    // per output [s, r, μ, gm, gv, …]: without batch norm the identity (s = 1) and no statistics' gradient
    const coef = this.coef / 4;
    f.fill(0, coef, coef + 8 * this.nOut);
    for (let o = 0; o < this.nOut; o++) f[coef + 8 * o] = 1;
  }

  /** in: the input rows (n_in × S); out: the layer output (n_out × S), after the activation. */
  forward(c: TableCtx, input: number, out: number): void {
    const S = c.S,
      B = c.B,
      nIn = this.nIn,
      nOut = this.nOut,
      Pn = this.Pn,
      d = this.d,
      cv = this.conv;
    this.prepare(c);
    if (cv) c.k.im2col(input, S, 0, cv.C, cv.idx, cv.KK, Pn, this.Xp, S);
    const X = cv ? this.Xp : input,
      sum = cv ? this.outP : out;
    c.par((t) => {
      const [r0, n] = c.rows(t, nIn);
      return n > 0
        ? [
            [
              'lut_fwd',
              X,
              S,
              B,
              r0,
              n,
              nOut,
              Pn,
              this.iqPrep,
              this.iqFlags,
              this.amx,
              d.nHl,
              d.dHl,
              this.act,
              this.wtab,
              this.Y,
              this.scratch[t]!,
            ],
          ]
        : [];
    });
    if (this.iq?.mode === 0) this.wrapTrack(c.f32());
    if (this.bn) this.bnForward(c);
    const flags = this.bn ? 1 : 0;
    const used: number[] = [];
    c.par((t) => {
      const [r0, n] = c.rows(t, nIn);
      if (n === 0) return [];
      const part = t === 0 ? sum : this.parts[t - 1]!;
      return [['lut_q', this.Y, S, r0, n, nOut, Pn, this.coef, this.sqrtN, flags, this.tqPrep, part]];
    });
    for (let t = 1; t < c.threads; t++) if (c.rows(t, nIn)[1] > 0) used.push(this.parts[t - 1]!);
    if (used.length)
      c.par((t) => {
        const [o, m] = c.flat(t, nOut * Pn * S);
        return m > 0 ? used.map((p): Call => ['add_into', sum + 4 * o, p + 4 * o, m]) : [];
      });
    if (cv) c.k.perm_rows(this.outP, S, out, S, nOut, Pn, S); // (filter, position) rows → (position, filter)
    if (d.activation === 'relu')
      c.par((t) => {
        const [o, m] = c.flat(t, nOut * Pn * S);
        return m > 0 ? [['relu_fwd', out + 4 * o, m]] : [];
      });
  }

  /** WRAP input quantizer: i ← clamp(max(i − decay, ceil(log2(max|x_q| + 2^-f)))) per parameter (Quantizer.trackI). */
  private wrapTrack(f: Float32Array): void {
    const q = this.iq!,
      n = q.pi.n;
    const amx = new Float64Array(n);
    for (let e = 0; e < this.EP; e++) {
      const p = this.iqIdx![e]!;
      amx[p] = Math.max(amx[p]!, f[this.amx / 4 + e]!);
    }
    const [lo, hi] = q.iBounds;
    for (let p = 0; p < n; p++) {
      const x = fr(amx[p]! + 2 ** -rte(f[q.f / 4 + p]!));
      const need = Math.ceil(Math.log2(x));
      const v = Math.max(fr(f[q.i / 4 + p]! - fr(q.decay)), need);
      f[q.i / 4 + p] = Math.min(hi, Math.max(lo, v));
    }
  }

  /**
   * Batch statistics over samples and inputs per output (rows' moments combined), the moving statistics
   * (Keras momentum rule, float32), and the coefficients s = rsqrt(σ²+ε)·γ, r = β − μ·s (tfjs op order).
   */
  private bnForward(c: TableCtx): void {
    const bn = this.bn!,
      S = c.S,
      B = c.B,
      nIn = this.nIn,
      nOut = this.nOut;
    const d = this.d.batchNorm!;
    // the (edge, position) blocks of S columns as rows
    const EP = this.EP,
      Pn = this.Pn,
      m1 = nIn * Pn;
    c.par((t) => {
      const [r0, n] = c.rows(t, EP);
      return n > 0 ? [['bn_stats', this.Y + 4 * r0 * S, n, S, B, bn.rowMean + 4 * r0, bn.rowVar + 4 * r0]] : [];
    });
    const f = c.f32();
    const rm = f.subarray(bn.rowMean / 4, bn.rowMean / 4 + EP),
      rv = f.subarray(bn.rowVar / 4, bn.rowVar / 4 + EP);
    /** row of (input i, position p) for output o */
    const row = (o: number, j: number) => (Math.floor(j / Pn) * nOut + o) * Pn + (j % Pn);
    const mm = f.subarray(bn.pMM.ptr / 4, bn.pMM.ptr / 4 + nOut),
      mv = f.subarray(bn.pMV.ptr / 4, bn.pMV.ptr / 4 + nOut);
    const mom = fr(d.momentum),
      omm = fr(1 - d.momentum),
      eps = fr(d.epsilon);
    for (let o = 0; o < nOut; o++) {
      let m = 0;
      for (let j = 0; j < m1; j++) m += rm[row(o, j)]!;
      m /= m1;
      let q = 0;
      for (let j = 0; j < m1; j++) {
        const dm = rm[row(o, j)]! - m;
        q += rv[row(o, j)]! + dm * dm;
      }
      const mean = fr(m),
        vr = fr(q / m1);
      mm[o] = fr(fr(mm[o]! * mom) + fr(mean * omm));
      mv[o] = fr(fr(mv[o]! * mom) + fr(vr * omm));
      const rsq = fr(1 / Math.sqrt(fr(vr + eps)));
      const s = bn.pG ? fr(rsq * f[bn.pG.ptr / 4 + o]!) : rsq;
      const r0 = fr(-mean * s);
      const r = bn.pB ? fr(r0 + f[bn.pB.ptr / 4 + o]!) : r0;
      bn.mean[o] = mean;
      bn.rsq[o] = rsq;
      bn.inv[o] = s;
      const cp = this.coef / 4 + 8 * o;
      f[cp] = s;
      f[cp + 1] = r;
      f[cp + 2] = mean;
    }
  }

  /** dz: ∂L/∂(layer output before the activation); dA: where ∂L/∂x goes (0: not needed). */
  backward(c: TableCtx, input: number, dz: number, dA: number): void {
    const S = c.S,
      B = c.B,
      nIn = this.nIn,
      nOut = this.nOut,
      Pn = this.Pn,
      d = this.d,
      cv = this.conv;
    const flags = this.bn ? 1 : 0;
    if (cv) c.k.perm_rows(dz, S, this.dzP, S, Pn, nOut, S); // (position, filter) rows → (filter, position)
    const g = cv ? this.dzP : dz,
      X = cv ? this.Xp : input,
      dX = cv && dA ? this.dXp : dA;
    c.par((t) => {
      const [r0, n] = c.rows(t, nIn);
      return n > 0
        ? [
            [
              'lut_q_bwd',
              this.Y,
              S,
              r0,
              n,
              nOut,
              Pn,
              this.coef,
              this.sqrtN,
              flags,
              this.tqPrep,
              g,
              this.G,
              this.tqSums,
              this.bn ? this.bn.rsum : 0,
            ],
          ]
        : [];
    });
    if (this.bn) this.bnBackward(c);
    c.par((t) => {
      const [r0, n] = c.rows(t, nIn);
      return n > 0
        ? [
            [
              'lut_bwd',
              X,
              S,
              B,
              r0,
              n,
              nOut,
              Pn,
              this.iqPrep,
              this.iqFlags,
              this.iqSums,
              d.nHl,
              d.dHl,
              this.act,
              this.wtab,
              this.gtab,
              this.G,
              this.Y,
              this.coef,
              flags,
              dX,
              this.nAcc,
              this.scratch[t]!,
            ],
          ]
        : [];
    });
    if (cv && dA) {
      c.k.zero(dA, cv.K * S);
      c.k.col2im_add(this.dXp, S, cv.C, cv.idx, cv.KK, Pn, dA, S, 0);
    }
    this.quantizerGrads(c.f32());
  }

  /**
   * Batch norm backward from the rows' (Σ G, Σ G·y): γ and β gradients, and the statistics' part of ∂L/∂y as
   * coefficients gm + gv·(y − μ) (∂μ/∂y = 1/n, ∂σ²/∂y = 2(y − μ)/n, n = batch·n_in; tf.moments).
   */
  private bnBackward(c: TableCtx): void {
    const bn = this.bn!,
      f = c.f32(),
      nIn = this.nIn,
      nOut = this.nOut;
    const n = c.B * nIn * this.Pn;
    const gamma = bn.pG ? f.subarray(bn.pG.ptr / 4, bn.pG.ptr / 4 + nOut) : null;
    const rs = bn.rsum / 4;
    for (let o = 0; o < nOut; o++) {
      let s1 = 0,
        s2 = 0;
      for (let i = 0; i < nIn; i++) {
        s1 += f[rs + 2 * (i * nOut + o)]!;
        s2 += f[rs + 2 * (i * nOut + o) + 1]!;
      }
      const mu = bn.mean[o]!,
        rsq = bn.rsq[o]!,
        s = bn.inv[o]!;
      if (bn.pB) f[bn.pB.grad / 4 + o] = s1;
      const gs = s2 - s1 * mu; // r = β − μ·s
      if (bn.pG) f[bn.pG.grad / 4 + o] = gs * rsq;
      const grsq = gamma ? gs * gamma[o]! : gs;
      const gvar = grsq * -0.5 * rsq * rsq * rsq;
      const gmu = -s1 * s;
      const cp = this.coef / 4 + 8 * o;
      f[cp + 3] = gmu / n;
      f[cp + 4] = (2 * gvar) / n;
    }
  }

  /** The quantizers' bit-parameter gradients from the per-edge sums (formulas of kif_grads / kbi_bwd), per parameter. */
  private quantizerGrads(f: Float32Array): void {
    const E = this.EP;
    const grads = (
      sums: number,
      idx: Int32Array,
      mode: number,
      fOf: (p: number) => number,
      iOf: (p: number) => number,
      kOf: (p: number) => number,
      n: number,
    ) => {
      const gf = new Float64Array(n),
        gi = new Float64Array(n);
      for (let e = 0; e < E; e++) {
        const p = idx[e]!;
        const fb = fOf(p),
          i = Math.max(iOf(p), -fb),
          k = kOf(p);
        const sd = f[sums / 4 + 3 * e]!,
          st = f[sums / 4 + 3 * e + 1]!,
          sb = f[sums / 4 + 3 * e + 2]!;
        gf[p]! += -LN2 * sd;
        if (mode !== 0) {
          const top = 2 ** i,
            inv = 2 ** -fb;
          gi[p]! += LN2 * top * st - k * LN2 * top * sb;
          gf[p]! += LN2 * inv * st - (mode === 2 ? k * LN2 * inv * sb : 0);
        }
      }
      return { gf, gi };
    };
    const iq = this.iq;
    if (iq) {
      const { gf, gi } = grads(
        this.iqSums,
        this.iqIdx!,
        iq.mode,
        (p) => rte(f[iq.f / 4 + p]!),
        (p) => rte(f[iq.i / 4 + p]!),
        (p) => f[iq.k / 4 + p]!,
        iq.pi.n,
      );
      for (let p = 0; p < iq.pi.n; p++) {
        f[iq.pf.grad / 4 + p] = fr(f[iq.pf.grad / 4 + p]! + gf[p]!);
        if (iq.mode !== 0) f[iq.pi.grad / 4 + p] = fr(f[iq.pi.grad / 4 + p]! + gi[p]!);
      }
    }
    const q = this.toq;
    const { gf, gi } = grads(
      this.tqSums,
      this.toqIdx,
      q.mode,
      (p) => rte(f[q.b / 4 + p]!) - rte(f[q.i / 4 + p]!),
      (p) => rte(f[q.i / 4 + p]!),
      (p) => f[q.k / 4 + p]!,
      q.pb.n,
    );
    // KBI: f = b − i, so ∂/∂b = ∂/∂f and ∂/∂i_raw = ∂/∂i − ∂/∂f
    for (let p = 0; p < q.pb.n; p++) {
      f[q.pb.grad / 4 + p] = fr(f[q.pb.grad / 4 + p]! + gf[p]!);
      f[q.pi.grad / 4 + p] = fr(f[q.pi.grad / 4 + p]! + gi[p]! - gf[p]!);
    }
  }

  /**
   * EBOPs as QDenseT.ebopsTensor (HGQ2 fbits: every bit incl. the sign): per edge small = 2^(bits_in − b) if
   * bits_in ≥ b else bits_in / b; (Σ small·bits_out·2^(b−B) + Σ bits_out)·pfScale; β times its straight-through
   * gradients added into the bit parameters' gradients.
   */
  ebops(f: Float32Array, beta: number): number {
    const [BB, bb] = this.d.tableIdxs;
    const scale = this.d.pfScale ?? 1,
      c2 = 2 ** (bb - BB);
    const q = this.toq,
      iq = this.iq;
    const gB = new Float64Array(q.pb.n);
    const gIn = iq ? new Float64Array(iq.pi.n) : null;
    let sumSmall = 0,
      sumOut = 0;
    for (let e = 0; e < this.EP; e++) {
      const p = this.toqIdx[e]!;
      const bitsOut = rte(f[q.b / 4 + p]!) + f[q.k / 4 + p]!;
      let bitsIn = 0;
      let on = false;
      let pi = 0;
      if (iq) {
        pi = this.iqIdx![e]!;
        const s = rte(f[iq.i / 4 + pi]!) + rte(f[iq.f / 4 + pi]!);
        on = s > 0;
        bitsIn = Math.max(s, 0) + f[iq.k / 4 + pi]!;
      }
      const big = bitsIn >= bb;
      const small = big ? 2 ** (bitsIn - bb) : bitsIn / bb;
      sumSmall += small * bitsOut;
      sumOut += bitsOut;
      gB[p]! += small * c2 + 1;
      if (gIn && on) gIn[pi]! += bitsOut * c2 * (big ? LN2 * 2 ** (bitsIn - bb) : 1 / bb);
    }
    const g = fr(beta * scale);
    for (let p = 0; p < q.pb.n; p++) f[q.pb.grad / 4 + p] = fr(f[q.pb.grad / 4 + p]! + fr(g * gB[p]!));
    if (iq && gIn)
      for (let p = 0; p < iq.pi.n; p++) {
        if (gIn[p] === 0) continue;
        const x = fr(g * gIn[p]!);
        f[iq.pf.grad / 4 + p] = fr(f[iq.pf.grad / 4 + p]! + x);
        if (iq.mode !== 0) f[iq.pi.grad / 4 + p] = fr(f[iq.pi.grad / 4 + p]! + x);
      }
    return (sumSmall * c2 + sumOut) * scale;
  }
}
