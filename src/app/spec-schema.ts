/**
 * The JSON Schema of a training spec (`hgq train spec.yaml|spec.json`), checked with ajv. Field names are
 * snake_case as in HGQ2; a layer's own arguments are checked by the layer itself when the model is built
 * (it names the allowed options), so the schema only fixes `type`.
 */
import { MAX_BETA } from '../train/schedule.ts';

/** Single-input layers a `model.layers` list may hold (in order; each takes the previous one's output). */
export const LIST_LAYERS = [
  'QDense',
  'QBatchNormDense',
  'QConv1D',
  'QConv2D',
  'QBatchNormalization',
  'QMaxPooling1D',
  'QMaxPooling2D',
  'QAveragePooling1D',
  'QAveragePooling2D',
  'QGlobalMaxPooling1D',
  'QGlobalMaxPooling2D',
  'QGlobalAveragePooling1D',
  'QGlobalAveragePooling2D',
  'QFlatten',
  'QReshape',
  'QUnaryFunctionLUT',
  'QSoftmax',
  'QDenseT',
  'QConvT1D',
  'QConvT2D',
  'QEinsumDenseT',
] as const;

/** The wasm engine's largest thread pool. */
export const MAX_THREADS = 256;

export const DATA_FORMATS = ['csv', 'npy', 'npz', 'hdf5', 'idx', 'mnist', 'fashion-mnist'] as const;

const posInt = { type: 'integer', minimum: 1 } as const;
/** β: it lives in a float32, so larger values would be Infinity (MAX_BETA) */
const beta = { type: 'number', minimum: 0, maximum: MAX_BETA } as const;
/** The largest learning rate: a float32 in the optimizer as β is, where anything larger is Infinity. */
export const MAX_LR = MAX_BETA;
const posNum = { type: 'number', exclusiveMinimum: 0 } as const;
const fraction = { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 } as const;
const column = {
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'integer', minimum: 0 },
  ],
} as const;

/** Where one split's samples come from. */
const source = {
  type: 'object',
  additionalProperties: false,
  properties: {
    format: { enum: DATA_FORMATS },
    path: { type: 'string', minLength: 1 },
    x: { type: 'string', minLength: 1 },
    y: { type: 'string', minLength: 1 },
    features: { type: 'array', items: column, minItems: 1 },
    label: { anyOf: [column, { type: 'array', items: column, minItems: 1 }] },
    part: { enum: ['train', 'test'] },
    limit: posInt,
  },
} as const;

const quantizerOptions = { type: 'object' } as const;

export const SPEC_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['data', 'model'],
  properties: {
    name: { type: 'string' },
    out: { type: 'string', minLength: 1 },
    data: {
      type: 'object',
      additionalProperties: false,
      required: ['train'],
      properties: {
        task: { enum: ['classification', 'regression'] },
        train: source,
        val: source,
        test: source,
        val_split: fraction,
        test_split: fraction,
        seed: { type: 'integer' },
        classes: { type: 'integer', minimum: 2 },
        preprocess: { enum: ['standardize', 'minmax', 'none'] },
      },
    },
    model: {
      type: 'object',
      additionalProperties: false,
      properties: {
        input_shape: { type: 'array', items: posInt, minItems: 1 },
        quantizer: {
          type: 'object',
          additionalProperties: false,
          properties: {
            default: quantizerOptions,
            weight: quantizerOptions,
            bias: quantizerOptions,
            datalane: quantizerOptions,
            activation: quantizerOptions,
            table: quantizerOptions,
          },
        },
        layers: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            required: ['type'],
            properties: { type: { enum: LIST_LAYERS } },
          },
        },
        hidden: { type: 'array', items: posInt, minItems: 1 },
        activation: { enum: ['relu', 'linear'] },
        module: { type: 'string', minLength: 1 },
      },
      oneOf: [{ required: ['layers'] }, { required: ['hidden'] }, { required: ['module'] }],
    },
    training: {
      type: 'object',
      additionalProperties: false,
      properties: {
        epochs: posInt,
        batch_size: posInt,
        optimizer: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { enum: ['adam'] },
            lr: { ...posNum, maximum: MAX_LR },
            schedule: {
              type: 'object',
              additionalProperties: false,
              required: ['type'],
              properties: {
                type: { enum: ['constant', 'cosine', 'step'] },
                min_lr: { type: 'number', minimum: 0 },
                every: posInt,
                factor: posNum,
              },
            },
          },
        },
        beta: {
          type: 'object',
          additionalProperties: false,
          properties: {
            schedule: { type: 'string', minLength: 1 },
            start: beta,
            end: beta,
            warmup: { type: 'integer', minimum: 0 },
            pid: {
              type: 'object',
              additionalProperties: false,
              required: ['target_ebops'],
              properties: {
                target_ebops: posNum,
                p: { type: 'number' },
                i: { type: 'number', not: { const: 0 } },
                d: { type: 'number' },
                warmup: { type: 'integer', minimum: 0 },
                init_beta: beta,
                min_beta: beta,
                max_beta: { ...beta, exclusiveMinimum: 0 },
              },
            },
          },
        },
        engine: { enum: ['wasm', 'tfjs'] },
        threads: { type: 'integer', minimum: 1, maximum: MAX_THREADS },
        seed: { type: 'integer' },
        quantize: { type: 'boolean' },
        pareto_start: { type: 'integer', minimum: 0 },
        early_stopping: {
          type: 'object',
          additionalProperties: false,
          properties: {
            patience: posInt,
            min_delta: { type: 'number', minimum: 0 },
            ebops_below: posNum,
          },
        },
      },
    },
  },
} as const;
