/** Minimal row-major n-d helpers for the import module (plain typed arrays, no tfjs). */

export const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

export function strides(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    st[d] = acc;
    acc *= shape[d]!;
  }
  return st;
}

/**
 * numpy broadcasting of `from` (right-aligned) onto `to`: for each flat index of `to`, the flat index
 * into `from`. Throws if the shapes do not broadcast.
 */
export function broadcastIndex(from: readonly number[], to: readonly number[]): Int32Array {
  if (from.length > to.length) throw new Error(`cannot broadcast [${from}] to [${to}]`);
  const pad = to.length - from.length;
  const f = [...new Array<number>(pad).fill(1), ...from];
  f.forEach((n, d) => {
    if (n !== 1 && n !== to[d]) throw new Error(`cannot broadcast [${from}] to [${to}]`);
  });
  const fs = strides(f);
  const n = prod(to);
  const out = new Int32Array(n);
  const idx = new Array<number>(to.length).fill(0);
  for (let j = 0; j < n; j++) {
    let o = 0;
    for (let d = 0; d < to.length; d++) if (f[d] !== 1) o += idx[d]! * fs[d]!;
    out[j] = o;
    for (let d = to.length - 1; d >= 0; d--) {
      if (++idx[d]! < to[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Broadcast `data` of shape `from` to shape `to` (a copy). */
export function broadcastTo(data: ArrayLike<number>, from: readonly number[], to: readonly number[]): Float64Array {
  const ix = broadcastIndex(from, to);
  const out = new Float64Array(ix.length);
  for (let j = 0; j < ix.length; j++) out[j] = data[ix[j]!]!;
  return out;
}

/** A parsed two-operand einsum such as 'bnc,cC->bnC' (letters only, no ellipsis). */
export interface Einsum {
  a: string;
  b: string;
  out: string;
}

export function parseEinsum(eq: string): Einsum {
  const m = /^([A-Za-z]+),([A-Za-z]+)->([A-Za-z]*)$/.exec(eq.replace(/\s+/g, ''));
  if (!m) throw new Error(`unsupported einsum equation '${eq}' (two operands, letters only)`);
  return { a: m[1]!, b: m[2]!, out: m[3]! };
}

/**
 * Two-operand einsum on row-major arrays, accumulated in float64 (exact for dyadic values of moderate
 * width). Returns the output (shape given by `out` letters; [] for a full contraction → length 1).
 */
export function einsum(
  eq: Einsum,
  A: ArrayLike<number>,
  shapeA: readonly number[],
  B: ArrayLike<number>,
  shapeB: readonly number[],
): { data: Float64Array; shape: number[] } {
  const size = new Map<string, number>();
  const bind = (letters: string, shape: readonly number[]) => {
    if (letters.length !== shape.length) throw new Error(`einsum: '${letters}' does not match shape [${shape}]`);
    [...letters].forEach((l, d) => {
      const s = size.get(l);
      if (s !== undefined && s !== shape[d]) throw new Error(`einsum: axis '${l}' has sizes ${s} and ${shape[d]}`);
      size.set(l, shape[d]!);
    });
  };
  bind(eq.a, shapeA);
  bind(eq.b, shapeB);
  const mm = matmulForm(eq);
  if (mm) {
    // '<P>x,xy-><P>y': a plain (rows × K) · (K × N) product, much faster than the generic loop
    const K = size.get(mm.x)!;
    const N = size.get(mm.y)!;
    const rows = prod(shapeA) / K;
    const out = new Float64Array(rows * N);
    for (let r = 0; r < rows; r++) {
      const o = r * N;
      for (let k = 0; k < K; k++) {
        const a = A[r * K + k]!;
        if (a === 0) continue;
        const bRow = k * N;
        for (let n = 0; n < N; n++) out[o + n] += a * B[bRow + n]!;
      }
    }
    return { data: out, shape: [...shapeA.slice(0, -1), N] };
  }
  const letters = [...size.keys()];
  for (const l of eq.out) if (!size.has(l)) throw new Error(`einsum: output axis '${l}' is on no operand`);
  const dims = letters.map((l) => size.get(l)!);
  const strideIn = (ls: string) => {
    const st = strides([...ls].map((l) => size.get(l)!));
    return letters.map((l) => {
      const d = ls.indexOf(l);
      return d < 0 ? 0 : st[d]!;
    });
  };
  const sa = strideIn(eq.a);
  const sb = strideIn(eq.b);
  const so = strideIn(eq.out);
  const outShape = [...eq.out].map((l) => size.get(l)!);
  const out = new Float64Array(prod(outShape));
  const n = prod(dims);
  const idx = new Array<number>(dims.length).fill(0);
  let ia = 0;
  let ib = 0;
  let io = 0;
  for (let j = 0; j < n; j++) {
    out[io] += A[ia]! * B[ib]!;
    for (let d = dims.length - 1; d >= 0; d--) {
      idx[d]!++;
      ia += sa[d]!;
      ib += sb[d]!;
      io += so[d]!;
      if (idx[d]! < dims[d]!) break;
      ia -= sa[d]! * dims[d]!;
      ib -= sb[d]! * dims[d]!;
      io -= so[d]! * dims[d]!;
      idx[d] = 0;
    }
  }
  return { data: out, shape: outShape };
}

/** If `eq` is '<P>x,xy-><P>y' (P: letters only on the first operand), its contracted and new axis. */
function matmulForm(eq: Einsum): { x: string; y: string } | null {
  if (eq.b.length !== 2 || eq.a.length < 1 || eq.out.length !== eq.a.length) return null;
  const x = eq.a.at(-1)!;
  const y = eq.b[1]!;
  const P = eq.a.slice(0, -1);
  if (eq.b[0] !== x || x === y || P.includes(x) || P.includes(y) || new Set(eq.a).size !== eq.a.length) return null;
  return eq.out === P + y ? { x, y } : null;
}

export interface Conv1dSpec {
  kernelSize: number;
  stride: number;
  dilation: number;
  padding: 'valid' | 'same' | 'causal';
}

/** Output length and left padding of a 1-D convolution (TensorFlow's SAME/VALID/causal rules). */
export function conv1dGeometry(L: number, s: Conv1dSpec): { Lout: number; padLeft: number } {
  const span = (s.kernelSize - 1) * s.dilation + 1;
  if (s.padding === 'valid') return { Lout: Math.floor((L - span) / s.stride) + 1, padLeft: 0 };
  if (s.padding === 'causal') return { Lout: Math.floor((L - 1) / s.stride) + 1, padLeft: span - 1 };
  const Lout = Math.ceil(L / s.stride);
  const padTotal = Math.max((Lout - 1) * s.stride + span - L, 0);
  return { Lout, padLeft: Math.floor(padTotal / 2) };
}

/**
 * channels_last 1-D convolution (cross-correlation, like Keras): x [B, L, Cin], kernel [K, Cin, Cout]
 * → [B, Lout, Cout]; zero padding. Accumulates in float64.
 */
export function conv1d(
  x: ArrayLike<number>,
  xShape: readonly number[],
  kernel: ArrayLike<number>,
  kShape: readonly number[],
  s: Conv1dSpec,
): { data: Float64Array; shape: number[] } {
  const [B, L, Cin] = xShape as [number, number, number];
  const [K, Kin, Cout] = kShape as [number, number, number];
  if (Kin !== Cin || K !== s.kernelSize) throw new Error(`conv1d: kernel [${kShape}] does not fit input [${xShape}]`);
  const { Lout, padLeft } = conv1dGeometry(L, s);
  const out = new Float64Array(B * Lout * Cout);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < Lout; o++)
      for (let t = 0; t < K; t++) {
        const p = o * s.stride + t * s.dilation - padLeft;
        if (p < 0 || p >= L) continue;
        for (let c = 0; c < Cin; c++) {
          const xv = x[(b * L + p) * Cin + c]!;
          if (xv === 0) continue;
          const kb = (t * Cin + c) * Cout;
          const ob = (b * Lout + o) * Cout;
          for (let u = 0; u < Cout; u++) out[ob + u] += xv * kernel[kb + u]!;
        }
      }
  return { data: out, shape: [B, Lout, Cout] };
}
