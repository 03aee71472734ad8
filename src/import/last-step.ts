/**
 * The quantizer state an HGQ2 checkpoint had *before* its last optimizer step, recovered by undoing
 * that step with the optimizer state Keras saves alongside the weights.
 *
 * Why: HGQ2 writes a layer's `ebops` variable during the forward pass of a training step; the
 * optimizer then moves every bit-width variable once more before the checkpoint is saved. HGQ training
 * parks many of those variables right at a rounding boundary (x.5 ± a few 1e-6), so that one step flips
 * some rounded bit widths, and the stored EBOPs no longer follow from the saved state. Adam's update is
 * `θ ← θ − α·m/(√v + ε)` with the moments m, v *after* the update, which is exactly what is saved, so the
 * step can be undone: `θ_before = θ_saved + α·m/(√v + ε)` (HGQ2-SEMANTICS.md §5).
 *
 * Only the bit-width variables (b, i, f of the quantizers) are restored; kernels and biases do not
 * enter EBOPs. No tfjs.
 */
import type { H5Tensor } from './keras-archive.ts';
import type { HgqLayer, HgqModel, HgqQuantizer } from './hgq2-model.ts';
import { roundHalfEven } from '../util/rounding.ts';

export interface LastStepUndone {
  /** the model with every trainable quantizer variable as it was during the last training step */
  model: HgqModel;
  /** bit-width elements whose rounded value the undo changed */
  flipped: number;
  /**
   * elements where float32 rounding leaves two candidate previous values that round to different
   * integers (the undo cannot tell which one HGQ2 had); 0 on every fixture
   */
  ambiguous: number;
}

/** One entry of Keras' `model.trainable_variables`; `raw` is set for the bit-width variables we restore. */
interface TrainableVar {
  what: string;
  size: number;
  raw: Float32Array | null;
  bounds: [number, number] | undefined;
}

/** Undo the last Adam step on the quantizer variables, or say why it cannot be done for this file. */
export function undoLastOptimizerStep(model: HgqModel): LastStepUndone | { reason: string } {
  const opt = model.optimizer;
  if (!opt) return { reason: 'the file holds no optimizer state (saved without compiling, or without the optimizer)' };
  if (opt.className !== 'Adam') return { reason: `optimizer ${opt.className} (only Adam's step can be undone)` };
  const c = opt.config;
  if (c.amsgrad || c.use_ema || (c.weight_decay ?? 0) !== 0 || (c.gradient_accumulation_steps ?? 1) > 1) {
    return {
      reason: 'Adam with amsgrad, EMA, weight decay or gradient accumulation (its last step cannot be undone from m and v)',
    };
  }
  const copy = cloneQuantizerState(model);
  const tv = trainableVariables(copy);
  if (opt.vars.length !== 2 + 2 * tv.length) {
    return {
      reason: `the optimizer holds ${opt.vars.length} variables; Adam over ${tv.length} trainable variables holds ${2 + 2 * tv.length}`,
    };
  }
  for (let j = 0; j < tv.length; j++) {
    for (const slot of [opt.vars[2 + 2 * j]!, opt.vars[3 + 2 * j]!]) {
      if (slot.data.length !== tv[j]!.size)
        return { reason: `optimizer slot ${2 + 2 * j} has ${slot.data.length} values, ${tv[j]!.what} has ${tv[j]!.size}` };
    }
  }
  const f = Math.fround;
  // Keras Adam.update_step, in float32: local_step = iterations + 1 before the increment, i.e. the saved count.
  const t = f(Number(opt.vars[0]!.data[0]));
  const lr = f(Number(opt.vars[1]!.data[0]));
  const beta1 = f(c.beta_1 ?? 0.9);
  const beta2 = f(c.beta_2 ?? 0.999);
  const eps = f(c.epsilon ?? 1e-7);
  const alpha = f(f(lr * f(Math.sqrt(f(1 - f(beta2 ** t))))) / f(1 - f(beta1 ** t)));
  let flipped = 0;
  let ambiguous = 0;
  tv.forEach((v, j) => {
    if (!v.raw) return;
    const m = asNumbers(opt.vars[2 + 2 * j]!);
    const s = asNumbers(opt.vars[3 + 2 * j]!);
    for (let e = 0; e < v.raw.length; e++) {
      const step = f(f(m[e]! * alpha) / f(f(Math.sqrt(s[e]!)) + eps));
      const saved = v.raw[e]!;
      const { value, ambiguous: amb } = beforeStep(saved, step, v.bounds);
      if (amb) ambiguous++;
      if (roundHalfEven(value) !== roundHalfEven(saved)) flipped++;
      v.raw[e] = value;
    }
  });
  return { model: copy, flipped, ambiguous };
}

const asNumbers = (t: H5Tensor): ArrayLike<number> =>
  t.data instanceof BigInt64Array || t.data instanceof BigUint64Array ? Array.from(t.data, Number) : t.data;

/**
 * The float32 value x with fround(x − step) = saved, clipped to the variable's MinMax constraint (which
 * held before the step). Up to three float32 neighbours of saved + step can satisfy it; when they round
 * to different integers the result is ambiguous. A saved value clipped at a bound by the last step is
 * restored as that bound + step, which rounds like the bound (bounds are integers, |step| ≪ 0.5).
 */
function beforeStep(saved: number, step: number, bounds: [number, number] | undefined): { value: number; ambiguous: boolean } {
  const clip = (x: number) => (bounds ? Math.min(bounds[1], Math.max(bounds[0], x)) : x);
  const x0 = Math.fround(saved + step);
  const candidates = [nextFloat32(x0, -1), x0, nextFloat32(x0, 1)].filter((x) => Math.fround(x - step) === saved);
  const rounded = new Set(candidates.map((x) => roundHalfEven(clip(x))));
  return { value: clip(x0), ambiguous: rounded.size > 1 };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The adjacent float32 toward +∞ (dir 1) or −∞ (dir −1) of a finite nonzero float32 x. */
function nextFloat32(x: number, dir: 1 | -1): number {
  if (x === 0) return dir * 2 ** -149;
  f32[0] = x;
  u32[0]! += x > 0 === dir > 0 ? 1 : -1;
  return f32[0]!;
}

/**
 * Keras' `model.trainable_variables` order: layers in `model.layers` order; per layer its own
 * trainable variables in creation order, then its sub-layers' (iq, kq, bq as HGQ2 creates them); per
 * quantizer its trainable variables in creation order (KBI: b, then i unless WRAP; KIF: i unless WRAP,
 * then f). A layer or quantizer with `trainable: false` contributes none.
 */
function trainableVariables(model: HgqModel): TrainableVar[] {
  const out: TrainableVar[] = [];
  for (const layer of model.layers) {
    if (layer.config?.trainable === false) continue;
    for (const name of ownTrainable(layer)) {
      const v = layer.vars[name]!;
      out.push({ what: `${layer.name}/${name}`, size: v.data.length, raw: null, bounds: undefined });
    }
    for (const q of [layer.iq, ...(layer.iqs ?? []), layer.kq, layer.bq]) if (q) out.push(...quantizerTrainable(q));
  }
  return out;
}

function ownTrainable(layer: HgqLayer): string[] {
  switch (layer.className) {
    case 'QEinsumDenseBatchnorm':
      return ['kernel', 'bias', 'gamma'];
    case 'QDense':
    case 'QEinsumDense':
    case 'QConv1D':
      return layer.vars.bias ? ['kernel', 'bias'] : ['kernel'];
    default:
      return [];
  }
}

function quantizerTrainable(q: HgqQuantizer): TrainableVar[] {
  if (!q.trainable) return [];
  const v = (name: string, raw: Float32Array, bounds: [number, number] | undefined): TrainableVar => ({
    what: `${q.group}/${name}`,
    size: raw.length,
    raw,
    bounds,
  });
  const wrap = q.overflowMode === 'WRAP';
  if (q.qType === 'kbi') return [v('b', q.bRaw!, q.bounds.b), ...(wrap ? [] : [v('i', q.iRaw, q.bounds.i)])];
  return [...(wrap ? [] : [v('i', q.iRaw, q.bounds.i)]), v('f', q.fRaw!, q.bounds.f)];
}

/** A copy of the model whose quantizers own their raw bit-width arrays (everything else shared). */
function cloneQuantizerState(model: HgqModel): HgqModel {
  const cq = (q: HgqQuantizer | null): HgqQuantizer | null =>
    q && { ...q, iRaw: q.iRaw.slice(), bRaw: q.bRaw?.slice() ?? null, fRaw: q.fRaw?.slice() ?? null };
  const layers = model.layers.map((l) => ({
    ...l,
    iq: cq(l.iq),
    kq: cq(l.kq),
    bq: cq(l.bq),
    iqs: l.iqs?.map((q) => cq(q)!) ?? null,
  }));
  return { ...model, layers, byName: new Map(layers.map((l) => [l.name, l])) };
}
