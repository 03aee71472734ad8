/**
 * β schedules (docs/quantizers.md §6): piecewise constant / linear / log interpolation between key epochs,
 * and a PID controller that steers β toward a target EBOPs. Pure functions of numbers; the callbacks
 * that apply them to a model live in callbacks.ts.
 */

export type Interp = 'constant' | 'linear' | 'log';
export const INTERPS: readonly Interp[] = ['constant', 'linear', 'log'];

/** The largest β: β lives in a float32 (tfjs variable, engine), where anything larger is Infinity. */
export const MAX_BETA = 3.4e38;

/** A key point: from `epoch` on, β starts at `beta` and moves toward the next key point by `interp`. */
export interface KeyPoint {
  epoch: number;
  beta: number;
  interp: Interp;
}

/**
 * β(epoch) from key points (same semantics as HGQ2's PieceWiseSchedule): before the first key the first
 * β holds; between keys e0 < e1 the interval's interpolation applies
 *   constant: β0;  linear: β0 + (β1−β0)·t;  log: β0·(β1/β0)^t,  t = (epoch−e0)/(e1−e0);
 * after the last key its β holds.
 */
export function piecewiseSchedule(keys: readonly KeyPoint[]): (epoch: number) => number {
  if (keys.length === 0) throw new Error('piecewiseSchedule: give at least one key point');
  const ks = [...keys].sort((a, b) => a.epoch - b.epoch);
  for (let j = 0; j < ks.length; j++) {
    const k = ks[j]!;
    if (!INTERPS.includes(k.interp))
      throw new Error(`piecewiseSchedule: unknown interpolation '${k.interp}' (use ${INTERPS.join(', ')})`);
    if (!Number.isFinite(k.beta) || k.beta < 0)
      throw new Error(`piecewiseSchedule: β must be finite and ≥ 0, got ${k.beta} at epoch ${k.epoch}`);
    if (j > 0 && ks[j - 1]!.epoch === k.epoch) throw new Error(`piecewiseSchedule: two key points at epoch ${k.epoch}`);
    if (k.interp === 'log' && j + 1 < ks.length && (k.beta <= 0 || ks[j + 1]!.beta <= 0)) {
      throw new Error(`piecewiseSchedule: log interpolation from epoch ${k.epoch} needs β > 0 at both ends`);
    }
  }
  return (epoch: number) => {
    if (epoch <= ks[0]!.epoch) return ks[0]!.beta;
    let j = ks.length - 1;
    while (ks[j]!.epoch > epoch) j--;
    const a = ks[j]!;
    const b = ks[j + 1];
    if (!b) return a.beta;
    const t = (epoch - a.epoch) / (b.epoch - a.epoch);
    switch (a.interp) {
      case 'constant':
        return a.beta;
      case 'linear':
        return a.beta + (b.beta - a.beta) * t;
      case 'log':
        return a.beta * (b.beta / a.beta) ** t;
    }
  };
}

/** Parses `"0:0:linear,10:1e-6:log,40:1e-4"` (epoch:beta[:interp], interp defaults to constant). */
export function parseSchedule(spec: string): KeyPoint[] {
  return spec.split(',').map((part) => {
    const [e, b, i] = part.trim().split(':');
    const epoch = Number(e),
      beta = Number(b);
    const decimal = (v: string | undefined) => v !== undefined && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v);
    if (!decimal(e) || !Number.isSafeInteger(epoch) || epoch < 0 || !decimal(b) || !(beta >= 0 && beta <= MAX_BETA)) {
      throw new Error(
        `β schedule: bad key point '${part}' (expected epoch:beta[:constant|linear|log] with an integer epoch >= 0 and 0 <= beta <= ${MAX_BETA}, e.g. 0:1e-7:log)`,
      );
    }
    const interp = (i ?? 'constant') as Interp;
    if (!INTERPS.includes(interp))
      throw new Error(`β schedule: unknown interpolation '${i}' in '${part}' (use ${INTERPS.join(', ')})`);
    return { epoch, beta, interp };
  });
}

export interface PidOptions {
  targetEbops: number;
  /** Gains on the error e = log10(ebops/target) (log mode) or ebops/target − 1 (linear mode). */
  p?: number;
  i?: number;
  d?: number;
  /** Work on log10 β and log10 of the EBOPs ratio (default true: EBOPs spans decades). */
  log?: boolean;
  minBeta?: number;
  maxBeta?: number;
}

/**
 * PID controller on EBOPs: too many EBOPs raises β. In log mode
 *   log10 β = p·e + i·Σe + d·Δe,  e = log10(ebops / target),
 * and `start(β0, ebops0)` primes the integral so the first output equals β0 (bumpless start, as HGQ2 does).
 */
export class BetaPid {
  readonly targetEbops: number;
  readonly p: number;
  readonly i: number;
  readonly d: number;
  readonly log: boolean;
  readonly minBeta: number;
  readonly maxBeta: number;
  private integral = 0;
  private prevErr = 0;

  constructor(o: PidOptions) {
    if (!(o.targetEbops > 0)) throw new Error(`BetaPid: targetEbops must be > 0, got ${o.targetEbops}`);
    this.targetEbops = o.targetEbops;
    this.p = o.p ?? 1;
    this.i = o.i ?? 2e-3;
    this.d = o.d ?? 0;
    this.log = o.log ?? true;
    this.minBeta = o.minBeta ?? 0;
    this.maxBeta = o.maxBeta ?? Infinity;
    if (this.i === 0) throw new Error('BetaPid: the integral gain i must be non-zero');
  }

  private error(ebops: number): number {
    return this.log ? Math.log10(Math.max(ebops, 1e-9) / this.targetEbops) : ebops / this.targetEbops - 1;
  }

  /** Primes the integral so that `update(ebops0)` returns `beta0` (before clamping). */
  start(beta0: number, ebops0: number): void {
    const e = this.error(ebops0);
    const out = this.log ? Math.log10(Math.max(beta0, 1e-30)) : beta0;
    this.prevErr = e;
    // out = p·e + i·(integral + e) + d·0
    this.integral = (out - this.p * e) / this.i - e;
  }

  /** Next β from the latest EBOPs. */
  update(ebops: number): number {
    const e = this.error(ebops);
    this.integral += e;
    const de = e - this.prevErr;
    this.prevErr = e;
    const out = this.p * e + this.i * this.integral + this.d * de;
    const beta = this.log ? 10 ** out : out;
    return Math.min(this.maxBeta, Math.max(this.minBeta, beta));
  }
}
