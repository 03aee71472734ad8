/**
 * Reading a tfjs model folder (model.json + weights.bin) as user input: every way it can be broken (missing
 * or truncated files, malformed JSON or manifest, weight byte counts that disagree with the manifest, weight
 * paths leaving the folder, NaN/Inf weights, layers tfjs cannot build) is a ModelFileError naming the file
 * and what is wrong, before tfjs sees the data.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isInside, isJsonObject, ModelFileError } from '../util/user-files.ts';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** The checked artifacts of model folder `dir` (or of its model.json). */
export function readModelArtifacts(dir: string): Promise<tf.io.ModelArtifacts> {
  const path = modelJsonPath(dir);
  const json = readModelJson(path);
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => readWeights(manifest, path));
}

/** model.json inside `dir`, or `dir` itself when it names the file. */
function modelJsonPath(dir: string): string {
  const path = existsSync(dir) && statSync(dir).isDirectory() ? join(dir, MODEL_JSON) : dir;
  if (!existsSync(path))
    throw new ModelFileError(path, `model not found (expected a directory with ${MODEL_JSON} and ${WEIGHTS_BIN})`);
  if (!statSync(path).isFile()) throw new ModelFileError(path, 'is not a file');
  return path;
}

/** Parsed and checked model.json: a layers-model topology and a well-formed weights manifest. */
function readModelJson(path: string): tf.io.ModelJSON {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ModelFileError(path, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(path, `not valid JSON (${(e as Error).message}); the file is truncated or not a ${MODEL_JSON}`);
  }
  if (!isJsonObject(json) || !isJsonObject(json['modelTopology']))
    throw new ModelFileError(path, 'no modelTopology object; not a tfjs layers model.json');
  const manifest = json['weightsManifest'];
  if (!Array.isArray(manifest)) throw new ModelFileError(path, "no weightsManifest list: the model's weights are not described");
  manifest.forEach((group: unknown, g) => {
    const where = `weightsManifest[${g}]`;
    if (
      !isJsonObject(group) ||
      !Array.isArray(group['paths']) ||
      !group['paths'].every((p) => typeof p === 'string') ||
      !Array.isArray(group['weights'])
    )
      throw new ModelFileError(path, `${where} must be {"paths": [file names], "weights": [specs]}`);
    for (const w of group['weights'] as unknown[]) {
      const shapeOk =
        isJsonObject(w) && Array.isArray(w['shape']) && w['shape'].every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
      if (!shapeOk || typeof w['name'] !== 'string' || typeof w['dtype'] !== 'string')
        throw new ModelFileError(
          path,
          `${where}: weight ${JSON.stringify(w)} needs a name, a shape of non-negative integers and a dtype`,
        );
    }
  });
  return json as unknown as tf.io.ModelJSON;
}

/** Bytes per element as stored (a quantized weight is stored in its quantization dtype); null: variable size. */
function storedBytes(spec: tf.io.WeightsManifestEntry, path: string): number | null {
  const dtype: string = spec.quantization?.dtype ?? spec.dtype;
  const size: Record<string, number | null> = {
    float32: 4,
    int32: 4,
    bool: 1,
    complex64: 8,
    uint8: 1,
    uint16: 2,
    float16: 2,
    string: null,
  };
  if (!(dtype in size)) throw new ModelFileError(path, `weight ${spec.name} has unknown dtype "${dtype}"`);
  const per = size[dtype]!;
  return per === null ? null : per * spec.shape.reduce((a, b) => a * b, 1);
}

/** A weight file path from the manifest, refused when it leaves the model folder (also through a link). */
function weightFilePath(base: string, p: string, path: string): string {
  const wp = resolve(base, p);
  if (isAbsolute(p) || !isInside(base, wp))
    throw new ModelFileError(
      path,
      `weight file "${p}" is outside the model folder; weight paths must be relative names inside it`,
    );
  if (!existsSync(wp)) throw new ModelFileError(wp, `weight file is missing (listed in ${path})`);
  if (!statSync(wp).isFile()) throw new ModelFileError(wp, `weight file is not a regular file (listed in ${path})`);
  if (!isInside(realpathSync(base), realpathSync(wp)))
    throw new ModelFileError(wp, `links outside the model folder; weight files must be inside it (listed in ${path})`);
  return wp;
}

/** Every manifest group's files, checked to hold exactly the bytes its weight specs describe, all finite. */
function readWeights(manifest: tf.io.WeightsManifestConfig, path: string): [tf.io.WeightsManifestEntry[], ArrayBuffer] {
  const base = dirname(path);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const bufs: ArrayBuffer[] = [];
  for (const group of manifest) {
    specs.push(...group.weights);
    const files = group.paths.map((p) => weightFilePath(base, p, path));
    if (files.length === 0 && group.weights.length > 0)
      throw new ModelFileError(path, `weightsManifest lists ${group.weights.length} weights but no file holding them`);
    const shown = files.length === 1 ? files[0]! : `${files.join(', ')} (together)`;
    const groupBufs = files.map((wp) => {
      try {
        const b = readFileSync(wp);
        return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
      } catch (e) {
        throw new ModelFileError(wp, `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
    });
    const data = tf.io.concatenateArrayBuffers(groupBufs);
    const sizes = group.weights.map((w) => storedBytes(w, path));
    if (sizes.every((n) => n !== null)) {
      const want = sizes.reduce((a, b) => a! + b!, 0)!;
      const got = data.byteLength;
      if (got !== want) {
        throw new ModelFileError(
          shown,
          `holds ${got} bytes but ${MODEL_JSON} describes ${want} bytes of weights (${group.weights.length} tensors); ${got < want ? 'the file is truncated' : 'the file is longer than described (from another model?)'}; save the model again`,
        );
      }
      checkFinite(group.weights, sizes as number[], data, shown);
    }
    bufs.push(data);
  }
  return [specs, tf.io.concatenateArrayBuffers(bufs)];
}

/** NaN or ±Inf in a float32 weight is a damaged file (training never stores one); name the first. */
function checkFinite(specs: tf.io.WeightsManifestEntry[], sizes: number[], data: ArrayBuffer, shown: string): void {
  let offset = 0;
  specs.forEach((spec, s) => {
    if (spec.dtype === 'float32' && !spec.quantization && offset % 4 === 0) {
      const v = new Float32Array(data, offset, sizes[s]! / 4);
      const j = v.findIndex((x) => !Number.isFinite(x));
      if (j >= 0)
        throw new ModelFileError(
          shown,
          `weight ${spec.name} holds ${v[j]} at element ${j}; the file is damaged (or was saved from a diverged training run)`,
        );
    }
    offset += sizes[s]!;
  });
}

/**
 * What tfjs says when the model folder `dir` cannot be built, as a ModelFileError: an unknown layer class, a
 * layer configuration its class refuses, weights whose shapes do not fit the layers. ModelFileErrors pass.
 */
export function modelBuildError(e: unknown, dir: string): ModelFileError {
  if (e instanceof ModelFileError) return e;
  const path = modelJsonPath(dir);
  const msg = e instanceof Error ? e.message : String(e);
  const unknown = /Unknown layer: ([^\s.]+)/.exec(msg);
  if (unknown)
    return new ModelFileError(
      path,
      `unknown layer class "${unknown[1]}" (neither a tfjs layer nor an hgq layer; was the model written by another program?)`,
    );
  if (/shape mismatch|should have \d+ values/i.test(msg))
    return new ModelFileError(path, `the weights do not fit the layers' shapes (${msg})`);
  return new ModelFileError(path, `cannot be built into a model: ${msg.split('\n')[0]}`);
}
