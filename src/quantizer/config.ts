/**
 * Quantizer configuration: defaults per (parametrization, place), scoped overrides, validation (docs/quantizers.md §7).
 * Field names follow HGQ2's QuantizerConfig in camelCase (k0, b0, i0, f0, round/overflow mode, bounds in place of
 * its MinMax constraints, l1 in place of its MonoL1 regularizers, iDecaySpeed, homogeneous/heterogeneous axes).
 */
import { OVERFLOW_MODES, ROUND_MODES, type OverflowMode, type RoundMode } from '../fixed/types.ts';

export type QType = 'kbi' | 'kif';
/** Where a quantizer sits; only selects defaults. 'activation' is accepted as an alias of 'datalane'. */
export type Place = 'weight' | 'bias' | 'datalane' | 'table';
export const PLACES: readonly Place[] = ['weight', 'bias', 'datalane', 'table'];
/** Shorthands for homogeneous axes: element = none shared; activation = batch axis shared; channel = all but the last; tensor = all. */
export type Granularity = 'element' | 'activation' | 'channel' | 'tensor';

export interface QuantizerConfig {
  qType: QType;
  place: Place;
  /** keep a sign bit (not trained; WRAP calibration may raise it to 1) */
  k0: 0 | 1;
  /** KBI: initial bits without sign */
  b0: number;
  /** initial integer bits without sign */
  i0: number;
  /** KIF: initial fractional bits */
  f0: number;
  roundMode: RoundMode;
  overflowMode: OverflowMode;
  /** inclusive bounds on the (rounded) parameters; stored values are clamped to them */
  bBounds: [number, number];
  iBounds: [number, number];
  fBounds: [number, number];
  /** L1 pressure factor on the raw bit parameters (KBI: b; KIF: i and f), HGQ2's MonoL1 */
  l1: number;
  /** WRAP only: integer bits given up per training step when the data allows */
  iDecaySpeed: number;
  /** Axes sharing one parameter (negative counts from the end). Exactly one of the two axis lists is non-null. */
  homogeneousAxes: number[] | null;
  /** Axes with their own parameters (the complement of homogeneousAxes). */
  heterogeneousAxes: number[] | null;
  trainable: boolean;
  /**
   * HGQ2's is_weight: a trainable WRAP quantizer of a weight only rounds in inference (no wrap, no zeroing;
   * KBI only with RND). Only matters under WRAP, which is not a weight default here; imports set it.
   */
  isWeight: boolean;
}

/** What a caller may override: any config field, plus `granularity` as a shorthand for the axis lists. */
export type QuantizerOptions = Partial<Omit<QuantizerConfig, 'place'>> & {
  place?: Place | 'activation';
  granularity?: Granularity;
};

/** Scoped defaults: `default` applies to every place, the place keys after it. `activation` = `datalane`. */
export interface QuantizerScope {
  default?: QuantizerOptions;
  weight?: QuantizerOptions;
  bias?: QuantizerOptions;
  datalane?: QuantizerOptions;
  activation?: QuantizerOptions;
  table?: QuantizerOptions;
}

const DEFAULT_Q_TYPE: Record<Place, QType> = { weight: 'kbi', bias: 'kbi', datalane: 'kif', table: 'kbi' };

function baseDefaults(qType: QType, place: Place): QuantizerConfig {
  const datalane = place === 'datalane';
  return {
    qType,
    place,
    k0: 1,
    b0: 8,
    i0: 2,
    f0: 6,
    roundMode: 'RND',
    overflowMode: datalane ? 'WRAP' : 'SAT_SYM',
    bBounds: [0, 23],
    iBounds: [-24, 24],
    fBounds: [-24, 24],
    l1: 1e-8,
    iDecaySpeed: 0.01,
    homogeneousAxes: datalane ? [0] : place === 'table' ? null : [],
    heterogeneousAxes: place === 'table' ? [] : null,
    trainable: true,
    isWeight: place === 'weight',
  };
}

const scopeStack: QuantizerScope[] = [];

/**
 * Run `fn` with scoped quantizer defaults (synchronous; scopes nest, inner wins), e.g.
 * `withQuantizerConfig({ weight: { b0: 6 }, datalane: { roundMode: 'TRN' } }, () => buildModel())`.
 */
export function withQuantizerConfig<T>(scope: QuantizerScope, fn: () => T): T {
  for (const key of Object.keys(scope)) {
    if (!['default', 'activation', ...PLACES].includes(key))
      throw new Error(`withQuantizerConfig: unknown key '${key}'; use default, weight, bias, datalane (activation) or table`);
    validateOptions((scope as Record<string, QuantizerOptions>)[key]!, `withQuantizerConfig.${key}`);
  }
  scopeStack.push(scope);
  try {
    const r = fn();
    if (r instanceof Promise)
      throw new Error(
        'withQuantizerConfig: fn returned a Promise; the scope is synchronous, build models inside it synchronously',
      );
    return r;
  } finally {
    scopeStack.pop();
  }
}

export function normalizePlace(place: string): Place {
  const p = place === 'activation' ? 'datalane' : place;
  if (!(PLACES as readonly string[]).includes(p))
    throw new Error(`quantizer: unknown place '${place}'; use weight, bias, datalane (activation) or table`);
  return p as Place;
}

function scopeOptions(scope: QuantizerScope, place: Place): QuantizerOptions[] {
  const out: QuantizerOptions[] = [];
  if (scope.default) out.push(scope.default);
  if (place === 'datalane' && scope.activation) out.push(scope.activation);
  if (scope[place]) out.push(scope[place]!);
  return out;
}

/** The full config for a quantizer at `place`: defaults, then the active scopes (outer to inner), then `options`. */
export function resolveQuantizerConfig(options: QuantizerOptions = {}): QuantizerConfig {
  validateOptions(options, 'quantizer options');
  const place = normalizePlace(options.place ?? 'datalane');
  const layers: QuantizerOptions[] = [];
  for (const s of scopeStack) layers.push(...scopeOptions(s, place));
  layers.push(options);
  let qType: QType = DEFAULT_Q_TYPE[place];
  for (const o of layers) if (o.qType !== undefined) qType = o.qType;
  const cfg = baseDefaults(qType, place);
  for (const o of layers) applyOptions(cfg, o);
  cfg.place = place;
  cfg.qType = qType;
  checkConfig(cfg);
  return cfg;
}

const KEYS = new Set<string>([
  'qType',
  'place',
  'k0',
  'b0',
  'i0',
  'f0',
  'roundMode',
  'overflowMode',
  'bBounds',
  'iBounds',
  'fBounds',
  'l1',
  'iDecaySpeed',
  'homogeneousAxes',
  'heterogeneousAxes',
  'trainable',
  'isWeight',
  'granularity',
]);

function validateOptions(o: QuantizerOptions, where: string): void {
  if (o === null || typeof o !== 'object') throw new Error(`${where}: expected an object of quantizer options`);
  for (const k of Object.keys(o))
    if (!KEYS.has(k)) throw new Error(`${where}: unknown option '${k}'; valid options: ${[...KEYS].join(', ')}`);
  if (o.homogeneousAxes != null && o.heterogeneousAxes != null)
    throw new Error(`${where}: set only one of homogeneousAxes and heterogeneousAxes`);
  if (o.granularity !== undefined && (o.homogeneousAxes != null || o.heterogeneousAxes != null))
    throw new Error(`${where}: set either granularity or an axis list, not both`);
}

function applyOptions(cfg: QuantizerConfig, o: QuantizerOptions): void {
  const { granularity, qType: _q, place: _p, ...rest } = o;
  void _q;
  void _p;
  // HGQ2 convention: two of (i0, f0, b0) given together determine the third (f = b − i).
  const n = +(o.i0 !== undefined) + +(o.f0 !== undefined) + +(o.b0 !== undefined);
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = v;
  if (n === 2) {
    if (o.i0 === undefined) cfg.i0 = o.b0! - o.f0!;
    else if (o.f0 === undefined) cfg.f0 = o.b0! - o.i0;
    else cfg.b0 = o.i0 + o.f0!;
  }
  if (o.homogeneousAxes != null) cfg.heterogeneousAxes = null;
  if (o.heterogeneousAxes != null) cfg.homogeneousAxes = null;
  if (granularity !== undefined) {
    switch (granularity) {
      case 'element':
        cfg.homogeneousAxes = [];
        cfg.heterogeneousAxes = null;
        break;
      case 'activation':
        cfg.homogeneousAxes = [0];
        cfg.heterogeneousAxes = null;
        break;
      case 'channel':
        cfg.heterogeneousAxes = [-1];
        cfg.homogeneousAxes = null;
        break;
      case 'tensor':
        cfg.heterogeneousAxes = [];
        cfg.homogeneousAxes = null;
        break;
      default:
        throw new Error(`quantizer: unknown granularity '${String(granularity)}'; use element, activation, channel or tensor`);
    }
  }
  if (o.bBounds) cfg.bBounds = [o.bBounds[0], o.bBounds[1]];
  if (o.iBounds) cfg.iBounds = [o.iBounds[0], o.iBounds[1]];
  if (o.fBounds) cfg.fBounds = [o.fBounds[0], o.fBounds[1]];
  if (o.homogeneousAxes) cfg.homogeneousAxes = [...o.homogeneousAxes];
  if (o.heterogeneousAxes) cfg.heterogeneousAxes = [...o.heterogeneousAxes];
}

function checkConfig(c: QuantizerConfig): void {
  const bad = (msg: string): never => {
    throw new Error(`quantizer config (${c.qType}, ${c.place}): ${msg}`);
  };
  if (c.qType !== 'kbi' && c.qType !== 'kif') bad(`unknown qType '${String(c.qType)}'; use 'kbi' or 'kif'`);
  if ((c.k0 as unknown) === true) c.k0 = 1;
  if ((c.k0 as unknown) === false) c.k0 = 0;
  if (c.k0 !== 0 && c.k0 !== 1) bad(`k0 must be 0 or 1, got ${String(c.k0)}`);
  if (!(ROUND_MODES as readonly string[]).includes(c.roundMode))
    bad(`unknown roundMode '${String(c.roundMode)}'; use one of ${ROUND_MODES.join(', ')}`);
  if (!(OVERFLOW_MODES as readonly string[]).includes(c.overflowMode))
    bad(`unknown overflowMode '${String(c.overflowMode)}'; use one of ${OVERFLOW_MODES.join(', ')}`);
  for (const [name, b] of [
    ['bBounds', c.bBounds],
    ['iBounds', c.iBounds],
    ['fBounds', c.fBounds],
  ] as const) {
    if (!Array.isArray(b) || b.length !== 2 || !b.every(Number.isFinite) || b[0] > b[1])
      bad(`${name} must be [lo, hi] with finite lo <= hi, got ${JSON.stringify(b)}`);
  }
  for (const [name, v] of [
    ['b0', c.b0],
    ['i0', c.i0],
    ['f0', c.f0],
    ['l1', c.l1],
    ['iDecaySpeed', c.iDecaySpeed],
  ] as const)
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${name} must be a finite number, got ${String(v)}`);
  if (c.l1 < 0) bad(`l1 must be >= 0, got ${c.l1}`);
  if (c.qType === 'kbi' && c.b0 < 0) bad(`b0 must be >= 0, got ${c.b0}`);
  if (c.qType === 'kif' && c.i0 + c.f0 < 0) bad(`i0 + f0 must be >= 0, got ${c.i0 + c.f0}`);
  if ((c.homogeneousAxes === null) === (c.heterogeneousAxes === null))
    bad('exactly one of homogeneousAxes and heterogeneousAxes must be set');
  for (const a of c.homogeneousAxes ?? c.heterogeneousAxes ?? [])
    if (!Number.isInteger(a)) bad(`axes must be integers, got ${String(a)}`);
  if (typeof c.trainable !== 'boolean') bad(`trainable must be a boolean`);
  if (typeof c.isWeight !== 'boolean') bad(`isWeight must be a boolean`);
}

/** The resolved homogeneous axes (non-negative, sorted) of a config for an input of rank `ndim`. */
export function homogeneousAxesFor(c: QuantizerConfig, ndim: number): number[] {
  const norm = (a: number): number => {
    const p = a < 0 ? a + ndim : a;
    if (p < 0 || p >= ndim) throw new Error(`quantizer: axis ${a} is out of range for an input of rank ${ndim}`);
    return p;
  };
  if (c.homogeneousAxes !== null) return [...new Set(c.homogeneousAxes.map(norm))].sort((x, y) => x - y);
  const het = new Set(c.heterogeneousAxes!.map(norm));
  const out: number[] = [];
  for (let d = 0; d < ndim; d++) if (!het.has(d)) out.push(d);
  return out;
}
