/**
 * The layer graph and stored state of an HGQ2 model read from a `.keras` archive, as plain data:
 * which layers, how they connect, and every variable (kernel, bias, batch-norm statistics, the
 * quantizers' k/i/f/b). HGQ2-SEMANTICS.md explains the layout this decodes. No tfjs here.
 */
import type { OverflowMode, RoundMode } from '../fixed/types.ts';
import { readKerasArchive, type H5Tensor, type KerasArchive } from './keras-archive.ts';
import { roundHalfEven } from '../util/rounding.ts';
import { ModelFileError } from '../util/user-files.ts';

export interface HgqQuantizer {
  /** HDF5 group holding the internal quantizer's vars, e.g. 'layers/q_dense/iq/quantizer' */
  group: string;
  qType: 'kif' | 'kbi';
  place: string;
  roundMode: RoundMode;
  overflowMode: OverflowMode;
  /** the quantizer layer's `trainable` flag: a non-trainable WRAP quantizer never updates i */
  trainable: boolean;
  isWeight: boolean;
  /** shape of the bit-width variables (1 on homogeneous axes) */
  shape: number[];
  /** keep-negative flags, 0/1 */
  k: Uint8Array;
  /** raw float variables as stored; `b` only for KBI, `f` only for KIF */
  iRaw: Float32Array;
  bRaw: Float32Array | null;
  fRaw: Float32Array | null;
  /** i decay per step (WRAP only) */
  iDecaySpeed: number | null;
  /** the config's bounds (MinMax constraints) */
  bounds: { b?: [number, number]; i?: [number, number]; f?: [number, number] };
  config: any;
}

export interface InboundRef {
  layer: string;
  node: number;
  tensor: number;
  /** the Keras tensor shape, batch dim null */
  shape: (number | null)[];
}

export interface HgqLayer {
  name: string;
  className: string;
  /** HDF5 group of the layer ('layers/q_dense'), null for layers without state (GetItem) */
  group: string | null;
  config: any;
  inbound: InboundRef[];
  /** extra positional call arguments of the inbound node (GetItem's slices) */
  callArgs: any[];
  /** named variables: kernel, bias, gamma, moving_mean, moving_variance, beta (the EBOPs β), ebops */
  vars: Record<string, H5Tensor>;
  iq: HgqQuantizer | null;
  /** QAdd: one input quantizer per input */
  iqs: HgqQuantizer[] | null;
  kq: HgqQuantizer | null;
  bq: HgqQuantizer | null;
  /** table layers (QDenseT, QConvT1D/2D, QEinsumDenseT): the table output quantizer and the per-edge sub-network */
  toq?: HgqQuantizer;
  subnet?: TableSubnet;
}

/**
 * The per-edge MLPs of a table layer, stacked over the edges (n_in, n_out): hidden layer h has kernel
 * [n_in, n_out, d_prev, d_hl] and bias [n_in, n_out, d_hl]; the output layer kernel [n_in, n_out, d_hl]
 * and bias [n_in, n_out]. Optional batch norm over n_out (inference: moving statistics).
 */
export interface TableSubnet {
  hidden: { kernel: H5Tensor; bias: H5Tensor | null }[];
  out: { kernel: H5Tensor; bias: H5Tensor | null };
  bn: { gamma: H5Tensor | null; beta: H5Tensor | null; movingMean: H5Tensor; movingVariance: H5Tensor; epsilon: number } | null;
}

/** The optimizer as saved with a compiled model: its compile config and its variables in order. */
export interface HgqOptimizer {
  /** compile_config.optimizer.class_name, e.g. 'Adam' */
  className: string;
  /** compile_config.optimizer.config (beta_1, epsilon, amsgrad, weight_decay, ...) */
  config: any;
  /** optimizer/vars/0.. (Keras: iterations, learning rate, then the slots of every trainable variable) */
  vars: H5Tensor[];
}

export interface HgqModel {
  path: string;
  kerasVersion: string | null;
  /** null when the file holds no optimizer state (saved uncompiled or without it) */
  optimizer: HgqOptimizer | null;
  layers: HgqLayer[];
  byName: Map<string, HgqLayer>;
  inputs: string[];
  outputs: string[];
}

export const SUPPORTED_CLASSES = [
  'InputLayer',
  'QDense',
  'QEinsumDense',
  'QEinsumDenseBatchnorm',
  'QConv1D',
  'QDenseT',
  'QConvT1D',
  'QConvT2D',
  'QEinsumDenseT',
  'QAdd',
  'QSum',
  'Reshape',
  'Flatten',
  'GetItem',
] as const;

/** Keras `naming.to_snake_case` (used for the HDF5 group of each saved layer). */
export function toSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

export async function loadHgq2Model(path: string): Promise<HgqModel> {
  return hgq2ModelFromArchive(await readKerasArchive(path));
}

export function hgq2ModelFromArchive(ar: KerasArchive): HgqModel {
  const file = ar.path;
  const err: (what: string) => never = (what) => {
    throw new ModelFileError(file, what);
  };
  const cfg = ar.config;
  if (!cfg || typeof cfg !== 'object' || !cfg.config || !Array.isArray(cfg.config.layers)) {
    err(
      `config.json does not describe a Keras model with layers (class ${cfg?.class_name ?? 'unknown'}); only functional/sequential models are supported`,
    );
  }
  if (cfg.class_name !== 'Functional' && cfg.class_name !== 'Sequential' && cfg.class_name !== 'Model') {
    err(`model class ${cfg.class_name} is not supported (expected a Functional model)`);
  }
  // Sequential configs list the layers in order without inbound nodes; each takes the previous one.
  const sequential = cfg.class_name === 'Sequential';
  const tensorOf = (name: string): H5Tensor | undefined => ar.weights.get(name);
  const need = (name: string, why: string): H5Tensor =>
    tensorOf(name) ?? err(`model.weights.h5 has no dataset ${name} (${why}); the weights file does not match config.json`);

  // Layer → HDF5 group: Keras names each saved layer by its snake-cased class name plus a counter,
  // in model.layers order; Operations (GetItem) are not saved and take no number.
  const counters = new Map<string, number>();
  const layers: HgqLayer[] = [];
  for (const L of cfg.config.layers as any[]) {
    const className: string = L.class_name;
    const name: string = L.config?.name ?? L.name;
    if (!(SUPPORTED_CLASSES as readonly string[]).includes(className)) {
      err(
        `layer '${name}' has class ${className}, which hgq import does not support (supported: ${SUPPORTED_CLASSES.join(', ')})`,
      );
    }
    let group: string | null = null;
    if (className !== 'GetItem') {
      const base = toSnakeCase(className);
      const n = counters.get(base);
      const g = n === undefined ? base : `${base}_${n + 1}`;
      counters.set(base, n === undefined ? 0 : n + 1);
      group = `layers/${g}`;
      // Newer Keras writes the layer name as an attribute: prefer it when present.
      const attrName = ar.groupAttrs.get(`${group}/vars`)?.name;
      if (attrName !== undefined && attrName !== name) {
        const found = [...ar.groupAttrs.entries()].find(([p, a]) => /^layers\/[^/]+\/vars$/.test(p) && a.name === name);
        if (!found) err(`cannot find the weights of layer '${name}' in model.weights.h5`);
        group = found[0].replace(/\/vars$/, '');
      }
    }
    const { inbound, callArgs } = sequential ? sequentialInbound(L, name, layers.at(-1), err) : parseInbound(L, name, err);
    layers.push({
      name,
      className,
      group,
      config: L.config,
      inbound,
      callArgs,
      vars: {},
      iq: null,
      iqs: null,
      kq: null,
      bq: null,
    });
  }
  if (sequential && layers[0]?.className !== 'InputLayer') {
    err('the Sequential model has no InputLayer in config.json (build it with keras.Input(...) before saving)');
  }

  const dx: Decoding = { ar, need, err };
  for (const layer of layers) decodeLayer(layer, dx);

  const refs = (x: any): string[] => {
    if (!Array.isArray(x)) return [];
    if (typeof x[0] === 'string') return [x[0]];
    return x.flatMap(refs);
  };
  const byName = new Map(layers.map((l) => [l.name, l]));
  const inputs = sequential ? [layers[0]!.name] : refs(cfg.config.input_layers);
  const outputs = sequential ? [layers.at(-1)!.name] : refs(cfg.config.output_layers);
  for (const n of [...inputs, ...outputs])
    if (!byName.has(n)) err(`config.json names model input/output '${n}', which is not a layer`);
  for (const l of layers)
    for (const r of l.inbound) if (!byName.has(r.layer)) err(`layer '${l.name}' takes input from unknown layer '${r.layer}'`);
  return {
    path: file,
    kerasVersion: ar.metadata?.keras_version ?? null,
    optimizer: decodeOptimizer(ar),
    layers,
    byName,
    inputs,
    outputs,
  };
}

function decodeOptimizer(ar: KerasArchive): HgqOptimizer | null {
  const conf = ar.config?.compile_config?.optimizer;
  const vars: H5Tensor[] = [];
  for (let j = 0; ar.optimizer.has(`optimizer/vars/${j}`); j++) vars.push(ar.optimizer.get(`optimizer/vars/${j}`)!);
  if (!conf || typeof conf !== 'object' || vars.length === 0) return null;
  return { className: String(conf.class_name ?? ''), config: conf.config ?? {}, vars };
}

function sequentialInbound(
  L: any,
  name: string,
  prev: HgqLayer | undefined,
  err: (w: string) => never,
): { inbound: InboundRef[]; callArgs: any[] } {
  if (L.class_name === 'InputLayer') return { inbound: [], callArgs: [] };
  if (!prev) return err(`Sequential layer '${name}' comes before any InputLayer`);
  const shape = L.build_config?.input_shape;
  if (!Array.isArray(shape)) err(`Sequential layer '${name}' has no build_config.input_shape (the model was saved unbuilt)`);
  return { inbound: [{ layer: prev.name, node: 0, tensor: 0, shape }], callArgs: [] };
}

function parseInbound(L: any, name: string, err: (w: string) => never): { inbound: InboundRef[]; callArgs: any[] } {
  const nodes: any[] = L.inbound_nodes ?? [];
  if (nodes.length > 1) err(`layer '${name}' is called ${nodes.length} times (shared layers are not supported)`);
  if (nodes.length === 0) return { inbound: [], callArgs: [] };
  const node = nodes[0];
  if (node.kwargs && Object.keys(node.kwargs).length)
    err(`layer '${name}' is called with keyword arguments ${Object.keys(node.kwargs).join(', ')}, which are not supported`);
  const inbound: InboundRef[] = [];
  const isTensor = (a: any) => a && typeof a === 'object' && a.class_name === '__keras_tensor__';
  const toRef = (a: any): InboundRef => {
    const [layer, n, t] = a.config.keras_history;
    return { layer, node: n, tensor: t, shape: a.config.shape };
  };
  const args: any[] = node.args ?? [];
  const callArgs: any[] = [];
  args.forEach((a, idx) => {
    if (isTensor(a)) inbound.push(toRef(a));
    else if (idx === 0 && Array.isArray(a) && a.every(isTensor)) inbound.push(...a.map(toRef));
    else callArgs.push(a);
  });
  return { inbound, callArgs };
}

const ROUND: Record<string, RoundMode> = { RND: 'RND', RND_CONV: 'RND_CONV', TRN: 'TRN', S_RND: 'RND', S_RND_CONV: 'RND_CONV' };
const OVERFLOW: Record<string, OverflowMode> = { WRAP: 'WRAP', SAT: 'SAT', SAT_SYM: 'SAT_SYM' };

function minmax(c: any): [number, number] | undefined {
  if (!c) return undefined;
  const cfg = c.config ?? {};
  if (c.class_name === 'MinMax') return [cfg.min_value, cfg.max_value];
  return undefined;
}

/** The archive being decoded, a dataset it must hold (else an error saying why it was wanted), and the error. */
interface Decoding {
  ar: KerasArchive;
  need: (name: string, why: string) => H5Tensor;
  err: (what: string) => never;
}

/**
 * Decode one quantizer. Keras saves a layer's own variables as trainable ones first, then
 * non-trainable ones, each in creation order (Layer.save_own_variables); HGQ2 creates k, then
 * b/i (KBI) or i/f (KIF), then i_decay_speed for WRAP, and i is non-trainable under WRAP.
 */
function decodeQuantizer(qconf: any, group: string, who: string, dx: Decoding): HgqQuantizer {
  const { ar, need } = dx;
  const err: Decoding['err'] = dx.err;
  const c = qconf?.config ?? qconf;
  if (!c || typeof c !== 'object') err(`${who}: missing quantizer config`);
  const qType = String(c.q_type ?? '').toLowerCase();
  if (qType !== 'kif' && qType !== 'kbi')
    err(`${who}: quantizer type '${c.q_type}' is not supported (only kif and kbi fixed-point quantizers)`);
  const rm = ROUND[String(c.round_mode).toUpperCase()];
  if (!rm) err(`${who}: round mode '${c.round_mode}' is not supported (RND, RND_CONV, TRN, S_RND, S_RND_CONV)`);
  const om = OVERFLOW[String(c.overflow_mode).toUpperCase()];
  if (!om) err(`${who}: overflow mode '${c.overflow_mode}' is not supported (WRAP, SAT, SAT_SYM)`);
  for (const opt of ['scaler', 'bw_mapper', 'affine'] as const) {
    if (c[opt] !== null && c[opt] !== undefined)
      err(`${who}: quantizer option ${opt}=${JSON.stringify(c[opt])} is not supported`);
  }
  const wrap = om === 'WRAP';
  const names =
    qType === 'kbi'
      ? wrap
        ? ['b', 'k', 'i', 'i_decay_speed']
        : ['b', 'i', 'k']
      : wrap
        ? ['f', 'k', 'i', 'i_decay_speed']
        : ['i', 'f', 'k'];
  const v: Record<string, H5Tensor> = {};
  names.forEach((n, idx) => (v[n] = need(`${group}/vars/${idx}`, `${who} variable ${n}`)));
  if (ar.weights.has(`${group}/vars/${names.length}`))
    err(`${who}: ${group} holds more variables than a ${qType.toUpperCase()} ${om} quantizer has`);
  const k = v.k!;
  if (k.dtype !== 'uint8')
    err(`${who}: ${group}: expected the uint8 keep-negative variable k, found ${k.dtype} (unexpected variable layout)`);
  const shape = k.shape;
  const f32 = (t: H5Tensor | undefined, n: string): Float32Array | null => {
    if (!t) return null;
    if (t.dtype !== 'float32') err(`${who}: ${group}: variable ${n} is ${t.dtype}, expected float32`);
    if (t.shape.join(',') !== shape.join(',')) err(`${who}: ${group}: variable ${n} has shape [${t.shape}], k has [${shape}]`);
    return t.data as Float32Array;
  };
  return {
    group,
    qType,
    place: c.place,
    roundMode: rm,
    overflowMode: om,
    trainable: c.trainable !== false,
    isWeight: c.is_weight === true,
    shape,
    k: k.data as Uint8Array,
    iRaw: f32(v.i, 'i')!,
    bRaw: f32(v.b, 'b'),
    fRaw: f32(v.f, 'f'),
    iDecaySpeed: v.i_decay_speed ? Number(v.i_decay_speed.data[0]) : null,
    bounds: { b: minmax(c.bc), i: minmax(c.ic), f: minmax(c.fc) },
    config: c,
  };
}

function decodeLayer(layer: HgqLayer, dx: Decoding): void {
  const need = dx.need;
  const err: Decoding['err'] = dx.err;
  const c = layer.config;
  const who = `layer '${layer.name}' (${layer.className})`;
  const g = layer.group;
  const q = (conf: any, sub: string, what: string) => decodeQuantizer(conf, `${g}/${sub}`, `${who} ${what}`, dx);
  const own = (names: string[]) => names.forEach((n, idx) => (layer.vars[n] = need(`${g}/vars/${idx}`, `${who} ${n}`)));
  const isQ = layer.className.startsWith('Q');
  if (isQ) {
    if (c.enable_oq) err(`${who}: an output quantizer (enable_oq=true) is not supported yet`);
    if (c.enable_iq === false)
      err(`${who}: enable_iq=false is not supported (HGQ2 then computes no EBOPs for it and feeds it unquantized data)`);
  }
  const ebopsVars = c.enable_ebops === false ? [] : ['beta', 'ebops'];
  switch (layer.className) {
    case 'InputLayer':
    case 'Reshape':
    case 'Flatten':
    case 'GetItem':
      return;
    case 'QDenseT':
    case 'QConvT1D':
    case 'QConvT2D':
      own(ebopsVars);
      layer.iq = q(c.iq_conf, 'iq/quantizer', 'input quantizer');
      layer.toq = q(c.toq_conf, 'toq/quantizer', 'table output quantizer');
      layer.subnet = decodeSubnet(layer, dx, c.use_bias !== false);
      return;
    case 'QEinsumDenseT': {
      // own variables as Keras saves them: trainable (bn_gamma, bn_beta) then non-trainable in creation order
      // (moving statistics, built before the base class adds β and the EBOPs)
      const bn = c.batch_norm === true;
      const bnVars = bn
        ? [
            ...(c.bn_scale !== false ? ['gamma'] : []),
            ...(c.bn_center !== false ? ['beta_bn'] : []),
            'moving_mean',
            'moving_variance',
          ]
        : [];
      own([...bnVars, ...ebopsVars]);
      layer.iq = q(c.iq_conf, 'iq/quantizer', 'input quantizer');
      layer.toq = q(c.toq_conf, 'toq/quantizer', 'table output quantizer');
      // HGQ2 gives the sub-network biases only when bias_axes is set and there is no batch norm
      layer.subnet = decodeSubnet(layer, dx, c.bias_axes !== null && c.bias_axes !== undefined && !bn);
      if (bn)
        layer.subnet.bn = {
          gamma: layer.vars.gamma ?? null,
          beta: layer.vars.beta_bn ?? null,
          movingMean: layer.vars.moving_mean!,
          movingVariance: layer.vars.moving_variance!,
          epsilon: Number(c.bn_epsilon ?? 1e-3),
        };
      return;
    }
    case 'QDense':
    case 'QEinsumDense':
    case 'QConv1D': {
      const useBias =
        layer.className === 'QEinsumDense' ? c.bias_axes !== null && c.bias_axes !== undefined : c.use_bias !== false;
      own(['kernel', ...(useBias ? ['bias'] : []), ...ebopsVars]);
      layer.iq = q(c.iq_conf, 'iq/quantizer', 'input quantizer');
      layer.kq = q(c.kq_conf, 'kq/quantizer', 'kernel quantizer');
      if (useBias) layer.bq = q(c.bq_conf, 'bq/quantizer', 'bias quantizer');
      return;
    }
    case 'QEinsumDenseBatchnorm': {
      if (c.bias_axes === null || c.bias_axes === undefined) err(`${who}: bias_axes is required`);
      if (c.scale === false || c.center === false) err(`${who}: scale=false / center=false is not supported`);
      // trainable: kernel, bias (BN beta), gamma; non-trainable: β, ebops, moving mean, moving variance
      own(['kernel', 'bias', 'gamma', ...ebopsVars, 'moving_mean', 'moving_variance']);
      layer.iq = q(c.iq_conf, 'iq/quantizer', 'input quantizer');
      layer.kq = q(c.kq_conf, 'kq/quantizer', 'kernel quantizer');
      layer.bq = q(c.bq_conf, 'bq/quantizer', 'bias quantizer');
      return;
    }
    case 'QSum':
      own(ebopsVars);
      layer.iq = q(c.iq_conf, 'iq/quantizer', 'input quantizer');
      return;
    case 'QAdd': {
      own(ebopsVars);
      const n = layer.inbound.length;
      const confs = Array.isArray(c.iq_confs) ? c.iq_confs : new Array(n).fill(c.iq_confs);
      if (confs.length !== n) err(`${who}: ${confs.length} input quantizer configs for ${n} inputs`);
      // MultipleQuantizers saves its tuple as quantizers/quantizer, quantizers/quantizer_1, ...
      layer.iqs = confs.map((qc: any, j: number) =>
        q(qc, `iq/quantizers/quantizer${j ? `_${j}` : ''}/quantizer`, `input quantizer ${j}`),
      );
      return;
    }
  }
}

/**
 * A table layer's sub-network: Keras saves the inner Sequential's EinsumDense layers as
 * module/layers/einsum_dense, einsum_dense_1, … (kernel, then bias when `useBias`), and QDenseT/QConvT*'s batch
 * norm as bn_module (gamma if scale, beta if center, moving mean, moving variance); QEinsumDenseT keeps its
 * batch norm in its own variables (decodeLayer).
 */
function decodeSubnet(layer: HgqLayer, dx: Decoding, useBias: boolean): TableSubnet {
  const { ar, need } = dx;
  const err: Decoding['err'] = dx.err;
  const c = layer.config;
  const who = `layer '${layer.name}' (${layer.className})`;
  const nHl = Number(c.n_hl ?? 1);
  if (!Number.isInteger(nHl) || nHl < 0) err(`${who}: n_hl=${c.n_hl} must be an integer ≥ 0`);
  const dense = (j: number) => {
    const g = `${layer.group}/module/layers/einsum_dense${j ? `_${j}` : ''}/vars`;
    return {
      kernel: need(`${g}/0`, `${who} sub-network layer ${j} kernel`),
      bias: useBias ? need(`${g}/1`, `${who} sub-network layer ${j} bias`) : null,
    };
  };
  const hidden = Array.from({ length: nHl }, (_, j) => dense(j));
  const out = dense(nHl);
  if (ar.weights.has(`${layer.group}/module/layers/einsum_dense_${nHl + 1}/vars/0`))
    err(`${who}: the sub-network holds more layers than n_hl=${nHl} + 1`);
  let bn: TableSubnet['bn'] = null;
  if (c.batch_norm && layer.className !== 'QEinsumDenseT') {
    const g = `${layer.group}/bn_module/vars`;
    const names = [
      ...(c.bn_scale !== false ? ['gamma'] : []),
      ...(c.bn_center !== false ? ['beta'] : []),
      'moving_mean',
      'moving_variance',
    ];
    const v: Record<string, H5Tensor> = {};
    names.forEach((n, j) => {
      v[n] = need(`${g}/${j}`, `${who} batch norm ${n}`);
    });
    bn = {
      gamma: v.gamma ?? null,
      beta: v.beta ?? null,
      movingMean: v.moving_mean!,
      movingVariance: v.moving_variance!,
      epsilon: Number(c.bn_epsilon ?? 1e-3),
    };
  }
  return { hidden, out, bn };
}

/** Integer (k, i, f) per bit-width element, rounded as HGQ2 does (round half to even). */
export function quantizerKif(q: HgqQuantizer): { k: Uint8Array; i: Int32Array; f: Int32Array } {
  const n = q.k.length;
  const i = new Int32Array(n);
  const f = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    const ii = roundHalfEven(q.iRaw[j]!);
    i[j] = ii;
    f[j] = q.qType === 'kbi' ? roundHalfEven(q.bRaw![j]!) - ii : roundHalfEven(q.fRaw![j]!);
  }
  return { k: q.k, i, f };
}

/**
 * HGQ2's `bits` (FixedPointQuantizerBase.bits): bits without the sign, plus the sign bit only under
 * SAT. KIF: relu(i + f); KBI: round(b). This is what EBOPs multiply.
 */
export function quantizerBits(q: HgqQuantizer): Float64Array {
  const sat = q.overflowMode === 'SAT';
  return Float64Array.from(q.k, (k, j) => magnitudeBits(q, j) + (sat ? k : 0));
}

/** Element j's bits without the sign: round(b) (KBI), relu(i + f) (KIF). */
function magnitudeBits(q: HgqQuantizer, j: number): number {
  return q.qType === 'kbi' ? roundHalfEven(q.bRaw![j]!) : Math.max(0, roundHalfEven(q.iRaw[j]!) + roundHalfEven(q.fRaw![j]!));
}

/**
 * HGQ2's `fbits` (FixedPointQuantizerBase.fbits): every bit of the type including the sign bit, whatever the
 * overflow mode: b + k (KBI), relu(i + f) + k (KIF). Table layers' EBOPs count these.
 */
export function quantizerFullBits(q: HgqQuantizer): Float64Array {
  return Float64Array.from(q.k, (k, j) => magnitudeBits(q, j) + k);
}
