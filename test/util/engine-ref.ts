/**
 * A straightforward float64 reference of one HGQ MLP training step (docs/fixed-point.md, docs/quantizers.md), written batch-major with
 * plain loops and no fusion, to check the wasm engine's kernels against. Same semantics as the engine:
 * WRAP activations only round in training, SAT/SAT_SYM clip then round, straight-through parameter rounding,
 * the WRAP integer bits are updated from this batch before EBOPs are taken.
 */
import type { DenseDesc, ModelDesc } from '../../src/engine/engine.ts';

const LN2 = Math.LN2;
const rnd = (y: number) => Math.floor(y + 0.5); // exact in float64 for the magnitudes used in tests
const rte = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
const MODE = { WRAP: 0, SAT: 1, SAT_SYM: 2 } as const;

export interface RefGrads {
  [name: string]: Float64Array;
}
export interface RefResult {
  taskLoss: number;
  ebops: number;
  l1: number;
  grads: RefGrads;
  absmax: Float64Array[];
  accuracy: number;
}

function kbiForward(w: number, b0: number, i0: number, k: number, mode: number) {
  const b = rte(b0),
    ir = rte(i0),
    f = b - ir,
    i = Math.max(ir, -f);
  const hi = 2 ** i - 2 ** -f,
    lo = mode === 1 ? -k * 2 ** i : -k * hi;
  const x = w > hi ? hi : w < lo ? lo : w;
  return { q: rnd(x * 2 ** f) * 2 ** -f, top: w > hi, bot: w < lo, i, f };
}

/** Gradients of one step at the description's current state (no parameter update). */
export function referenceStep(desc0: ModelDesc, x: Float32Array, y: Float32Array): RefResult {
  // the bit parameters are clamped to their bounds before the forward pass (as the tfjs quantizers do)
  const cl = (a: Float32Array, bnd: [number, number] | undefined, dflt: [number, number]) => {
    const [lo, hi] = bnd ?? dflt;
    return a.map((v) => Math.min(hi, Math.max(lo, v)));
  };
  const desc: ModelDesc = {
    ...desc0,
    layers: desc0.layers.map((d) => ({
      ...d,
      iq: d.iq ? { ...d.iq, i: cl(d.iq.i, d.iq.iBounds, [-24, 24]), f: cl(d.iq.f, d.iq.fBounds, [-24, 24]) } : d.iq,
      kq: d.kq ? { ...d.kq, b: cl(d.kq.b, d.kq.bBounds, [0, 23]), i: cl(d.kq.i, d.kq.iBounds, [-24, 24]) } : d.kq,
      bq: d.bq ? { ...d.bq, b: cl(d.bq.b, d.bq.bBounds, [0, 23]), i: cl(d.bq.i, d.bq.iBounds, [-24, 24]) } : d.bq,
    })),
  };
  const L = desc.layers.length;
  const K0 = desc.layers[0].inputs,
    C = desc.layers[L - 1].units;
  const B = x.length / K0;
  const grads: RefGrads = {};
  const hs: Float64Array[] = [],
    as: Float64Array[] = [],
    Wqs: Float64Array[] = [],
    bqs: Float64Array[] = [];
  const absmax: Float64Array[] = [];
  let h = Float64Array.from(x);
  for (let l = 0; l < L; l++) {
    const d = desc.layers[l];
    const K = d.inputs,
      N = d.units;
    hs.push(h);
    const a = new Float64Array(B * K);
    const am = new Float64Array(K);
    for (let b = 0; b < B; b++)
      for (let k = 0; k < K; k++) {
        let v = h[b * K + k];
        if (d.iq) {
          const q = d.iq,
            f = rte(q.f[k]),
            i = Math.max(rte(q.i[k]), -f),
            m = MODE[q.overflow];
          if (m !== 0) {
            const hi = 2 ** i - 2 ** -f,
              lo = m === 1 ? -q.k[k] * 2 ** i : -q.k[k] * hi;
            v = Math.min(hi, Math.max(lo, v));
          }
          v = rnd(v * 2 ** f) * 2 ** -f;
          am[k] = Math.max(am[k], Math.abs(v));
        }
        a[b * K + k] = v;
      }
    as.push(a);
    absmax.push(am);
    const Wq = new Float64Array(K * N),
      bq = new Float64Array(N);
    for (let j = 0; j < K * N; j++)
      Wq[j] = d.kq ? kbiForward(d.kernel[j], d.kq.b[j], d.kq.i[j], d.kq.k[j], MODE[d.kq.overflow]).q : d.kernel[j];
    for (let n = 0; n < N; n++)
      bq[n] = !d.bias ? 0 : d.bq ? kbiForward(d.bias[n], d.bq.b[n], d.bq.i[n], d.bq.k[n], MODE[d.bq.overflow]).q : d.bias[n];
    Wqs.push(Wq);
    bqs.push(bq);
    const z = new Float64Array(B * N);
    for (let b = 0; b < B; b++)
      for (let n = 0; n < N; n++) {
        let s = bq[n];
        for (let k = 0; k < K; k++) s += a[b * K + k] * Wq[k * N + n];
        z[b * N + n] = d.activation === 'relu' ? Math.max(0, s) : s;
      }
    h = z;
  }
  // loss
  let taskLoss = 0,
    hits = 0;
  let dz = new Float64Array(B * C);
  for (let b = 0; b < B; b++) {
    const zr = h.subarray(b * C, b * C + C);
    if (desc.loss === 'softmax_cross_entropy') {
      const mx = Math.max(...zr);
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(zr[c] - mx);
      const lse = mx + Math.log(s);
      for (let c = 0; c < C; c++) if (zr[c] === mx) hits += y[b * C + c];
      for (let c = 0; c < C; c++) {
        taskLoss += y[b * C + c] * (lse - zr[c]);
        dz[b * C + c] = (Math.exp(zr[c] - lse) - y[b * C + c]) / B;
      }
    } else {
      for (let c = 0; c < C; c++) {
        const e = zr[c] - y[b * C + c];
        taskLoss += e * e;
        dz[b * C + c] = (2 * e) / (B * C);
      }
    }
    if (desc.layers[L - 1].activation === 'relu') for (let c = 0; c < C; c++) if (!(zr[c] > 0)) dz[b * C + c] = 0;
  }
  taskLoss /= desc.loss === 'mse' ? B * C : B;
  // backward
  for (let l = L - 1; l >= 0; l--) {
    const d = desc.layers[l],
      K = d.inputs,
      N = d.units,
      a = as[l],
      hh = hs[l],
      pre = `layers[${l}]`;
    const gWq = new Float64Array(K * N),
      gbq = new Float64Array(N);
    for (let b = 0; b < B; b++)
      for (let n = 0; n < N; n++) {
        const g = dz[b * N + n];
        gbq[n] += g;
        for (let k = 0; k < K; k++) gWq[k * N + n] += a[b * K + k] * g;
      }
    // weight quantizer backward
    const gW = new Float64Array(K * N),
      gKb = new Float64Array(K * N),
      gKi = new Float64Array(K * N);
    const kbiBack = (
      w: number,
      q: { b: Float32Array; i: Float32Array; k: Float32Array; overflow: string },
      j: number,
      g: number,
    ) => {
      const m = MODE[q.overflow as keyof typeof MODE];
      const r = kbiForward(w, q.b[j], q.i[j], q.k[j], m);
      let dx = 0,
        df = 0,
        di = 0;
      if (r.top) {
        di = g * LN2 * 2 ** r.i;
        df = g * LN2 * 2 ** -r.f;
      } else if (r.bot) {
        di = -q.k[j] * g * LN2 * 2 ** r.i;
        if (m === 2) df = -q.k[j] * g * LN2 * 2 ** -r.f;
      } else {
        dx = g;
        df = -LN2 * g * (r.q - w);
      }
      return { dx, db: df, di: di - df };
    };
    for (let j = 0; j < K * N; j++) {
      if (d.kq) {
        const r = kbiBack(d.kernel[j], d.kq, j, gWq[j]);
        gW[j] = r.dx;
        gKb[j] = r.db;
        gKi[j] = r.di;
      } else gW[j] = gWq[j];
    }
    grads[`${pre}.kernel`] = gW;
    if (d.kq) {
      grads[`${pre}.kq.b`] = gKb;
      grads[`${pre}.kq.i`] = gKi;
    }
    if (d.bias) {
      const gB = new Float64Array(N),
        gBb = new Float64Array(N),
        gBi = new Float64Array(N);
      for (let n = 0; n < N; n++) {
        if (d.bq) {
          const r = kbiBack(d.bias[n], d.bq, n, gbq[n]);
          gB[n] = r.dx;
          gBb[n] = r.db;
          gBi[n] = r.di;
        } else gB[n] = gbq[n];
      }
      grads[`${pre}.bias`] = gB;
      if (d.bq) {
        grads[`${pre}.bq.b`] = gBb;
        grads[`${pre}.bq.i`] = gBi;
      }
    }
    // input gradient and input quantizer backward
    const dPrev = new Float64Array(B * K);
    const sd = new Float64Array(K),
      st = new Float64Array(K),
      sb = new Float64Array(K);
    for (let b = 0; b < B; b++)
      for (let k = 0; k < K; k++) {
        let g = 0;
        for (let n = 0; n < N; n++) g += Wqs[l][k * N + n] * dz[b * N + n];
        let dh = g;
        const v = hh[b * K + k];
        if (d.iq) {
          const q = d.iq,
            f = rte(q.f[k]),
            i = Math.max(rte(q.i[k]), -f),
            m = MODE[q.overflow];
          let vc = v;
          if (m !== 0) {
            const hi = 2 ** i - 2 ** -f,
              lo = m === 1 ? -q.k[k] * 2 ** i : -q.k[k] * hi;
            vc = Math.min(hi, Math.max(lo, v));
            if (v > hi) {
              st[k] += g;
              dh = 0;
            } else if (v < lo) {
              sb[k] += g;
              dh = 0;
            }
          }
          sd[k] += g * (a[b * K + k] - vc);
        }
        if (l > 0 && desc.layers[l - 1].activation === 'relu' && !(v > 0)) dh = 0;
        dPrev[b * K + k] = dh;
      }
    if (d.iq) {
      const q = d.iq,
        m = MODE[q.overflow];
      const gf = new Float64Array(K),
        gi = new Float64Array(K);
      for (let k = 0; k < K; k++) {
        const f = rte(q.f[k]),
          i = Math.max(rte(q.i[k]), -f);
        gf[k] = -LN2 * sd[k];
        if (m !== 0) {
          gi[k] = LN2 * 2 ** i * st[k] - q.k[k] * LN2 * 2 ** i * sb[k];
          gf[k] += LN2 * 2 ** -f * st[k];
          if (m === 2) gf[k] -= q.k[k] * LN2 * 2 ** -f * sb[k];
        }
      }
      grads[`${pre}.iq.f`] = gf;
      grads[`${pre}.iq.i`] = gi;
    }
    dz = dPrev;
  }
  // WRAP tracking, then EBOPs and L1 on the (tracked) parameters
  const iNow = desc.layers.map((d, l) => {
    if (!d.iq) return null;
    const q = d.iq;
    return Float64Array.from(q.i, (iv, k) => {
      if (q.overflow !== 'WRAP') return iv;
      const f = rte(q.f[k]);
      const need = Math.ceil(Math.log2(Math.fround(absmax[l][k] + 2 ** -f)));
      const [lo, hi] = q.iBounds ?? [-24, 24];
      return Math.min(hi, Math.max(lo, Math.max(Math.fround(iv - Math.fround(q.decay ?? 0.01)), need)));
    });
  });
  let ebops = 0,
    l1 = 0;
  desc.layers.forEach((d: DenseDesc, l) => {
    const pre = `layers[${l}]`,
      K = d.inputs,
      N = d.units,
      beta = d.beta ?? 0;
    if (d.iq && d.kq) {
      const q = d.iq,
        m = MODE[q.overflow];
      for (let k = 0; k < K; k++) {
        const s = rte(iNow[l]![k]) + rte(q.f[k]);
        const bin = Math.max(s, 0) + (m === 1 ? q.k[k] : 0);
        let row = 0;
        for (let n = 0; n < N; n++) {
          const bw = rte(d.kq.b[k * N + n]) + (d.kq.overflow === 'SAT' ? d.kq.k[k * N + n] : 0);
          row += bw;
          grads[`${pre}.kq.b`][k * N + n] += beta * bin;
        }
        ebops += bin * row;
        const gIn = s > 0 ? beta * row : 0;
        grads[`${pre}.iq.f`][k] += gIn;
        if (m !== 0) grads[`${pre}.iq.i`][k] += gIn;
      }
      if (d.bq)
        for (let n = 0; n < N; n++) {
          ebops += rte(d.bq.b[n]) + (d.bq.overflow === 'SAT' ? d.bq.k[n] : 0);
          grads[`${pre}.bq.b`][n] += beta;
        }
    }
    // HGQ2's MonoL1: λ·Σ raw (KBI: b; KIF: i and f — i counts in the loss even under WRAP, untrained there)
    const addL1 = (name: string, arr: ArrayLike<number>, lam: number | undefined) => {
      if (!lam) return;
      for (let j = 0; j < arr.length; j++) {
        l1 += lam * arr[j];
        if (grads[name]) grads[name][j] += lam;
      }
    };
    if (d.iq) {
      addL1(`${pre}.iq.f`, d.iq.f, d.iq.l1);
      addL1(`${pre}.iq.i`, iNow[l]!, d.iq.l1);
    }
    if (d.kq) addL1(`${pre}.kq.b`, d.kq.b, d.kq.l1);
    if (d.bq) addL1(`${pre}.bq.b`, d.bq.b, d.bq.l1);
  });
  return { taskLoss, ebops, l1, grads, absmax, accuracy: hits / B };
}
