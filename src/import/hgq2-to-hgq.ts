/**
 * HGQ2 quantizer state → our quantizer options (src/quantizer/config.ts) and initial parameter values.
 * Type-only dependency on src/quantizer: this file runs without tfjs.
 */
import type { QuantizerOptions } from '../quantizer/config.ts';
import type { HgqQuantizer } from './hgq2-model.ts';

/** HGQ2 writes i_decay_speed = Infinity ("recompute i every step"); our config needs a finite number. */
export const INFINITE_DECAY = 1e9;

function regularizerL1(r: any): number | undefined {
  if (!r) return undefined;
  const l1 = r.config?.l1;
  return typeof l1 === 'number' ? l1 : undefined;
}

/**
 * HGQ2's bounds widened to cover the stored values: with no constraint HGQ2 allows any value, and its
 * WRAP integer-bit update discards the constrained value (fixed_point_quantizer.py), so a stored `i`
 * can leave its MinMax (i = 24 for channels pruned to f = −24 in the fixtures).
 */
function coverBounds(raw: Float32Array | null, bounds: [number, number]): [number, number] {
  let lo = bounds[0];
  let hi = bounds[1];
  if (raw)
    for (const v of raw) {
      lo = Math.min(lo, Math.floor(v));
      hi = Math.max(hi, Math.ceil(v));
    }
  return [lo, hi];
}

/**
 * Options that make our Quantizer behave like this HGQ2 quantizer. Initial values (k0/b0/i0/f0) are
 * HGQ2's config initialisers; load the stored per-element values with `hgq2QuantizerValues`.
 */
export function hgq2QuantizerOptions(q: HgqQuantizer): QuantizerOptions {
  const c = q.config;
  const place = q.place === 'weight' || q.place === 'bias' || q.place === 'table' ? q.place : 'datalane';
  const o: QuantizerOptions = {
    qType: q.qType,
    place,
    k0: Number(c.k0) ? 1 : 0,
    roundMode: q.roundMode,
    overflowMode: q.overflowMode,
    iDecaySpeed: q.iDecaySpeed === null || !Number.isFinite(q.iDecaySpeed) ? INFINITE_DECAY : q.iDecaySpeed,
    trainable: q.trainable,
    // HGQ2 marks bias quantizers is_weight too (our default is place === 'weight'): it makes WRAP round-only
    isWeight: q.isWeight,
  };
  if (q.qType === 'kbi') {
    o.b0 = Number(c.b0);
    o.i0 = Number(c.i0);
    o.bBounds = coverBounds(q.bRaw, q.bounds.b ?? [0, 23]);
    o.iBounds = coverBounds(q.iRaw, q.bounds.i ?? [-24, 24]);
    o.l1 = regularizerL1(c.br) ?? 0;
  } else {
    o.i0 = Number(c.i0);
    o.f0 = Number(c.f0);
    o.iBounds = coverBounds(q.iRaw, q.bounds.i ?? [-24, 24]);
    o.fBounds = coverBounds(q.fRaw, q.bounds.f ?? [-24, 24]);
    o.l1 = regularizerL1(c.fr) ?? regularizerL1(c.ir) ?? 0;
  }
  if (Array.isArray(c.heterogeneous_axis)) o.heterogeneousAxes = [...c.heterogeneous_axis];
  else if (Array.isArray(c.homogeneous_axis)) o.homogeneousAxes = [...c.homogeneous_axis];
  return o;
}

/** The stored per-element parameters (raw, unrounded) in our variable names, shaped `q.shape`. */
export function hgq2QuantizerValues(q: HgqQuantizer): {
  shape: number[];
  k: Uint8Array;
  i: Float32Array;
  b?: Float32Array;
  f?: Float32Array;
  iDecaySpeed?: number;
} {
  const out: ReturnType<typeof hgq2QuantizerValues> = { shape: q.shape, k: q.k, i: q.iRaw };
  if (q.bRaw) out.b = q.bRaw;
  if (q.fRaw) out.f = q.fRaw;
  if (q.iDecaySpeed !== null) out.iDecaySpeed = Number.isFinite(q.iDecaySpeed) ? q.iDecaySpeed : INFINITE_DECAY;
  return out;
}
