/**
 * `loadModelAny(path)`: one entry point for every command that takes a model — a tfjs model directory
 * (model.json + weights.bin, as `hgq import` / `saveModel` write) or an HGQ2 `.keras` checkpoint, imported
 * on the fly. Registers every HGQ layer class first so tfjs can deserialize them.
 */
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import '../layers/index.ts';
import { initBackend } from '../backend.ts';
import { loadModel } from '../train/io.ts';
import { loadHgq2Model, type HgqModel } from '../import/hgq2-model.ts';
import { buildHgqModel } from '../import/hgq2-build.ts';
import { ModelFileError } from '../util/user-files.ts';

export type ModelSource = 'tfjs' | 'keras';

/** A zip archive starts with 'PK\x03\x04' (or 'PK\x05\x06' when empty). */
function isZip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b[0] === 0x50 && b[1] === 0x4b;
  } finally {
    closeSync(fd);
  }
}

/** What kind of model `path` is, or null if it is neither (no such path, or another file). */
export function modelSource(path: string): ModelSource | null {
  if (!existsSync(path)) return null;
  const st = statSync(path);
  if (st.isDirectory()) return existsSync(join(path, 'model.json')) ? 'tfjs' : null;
  if (path.toLowerCase().endsWith('.keras') || isZip(path)) return 'keras';
  if (path.toLowerCase().endsWith('model.json')) return 'tfjs';
  return null;
}

export interface LoadedModel {
  model: tf.LayersModel;
  source: ModelSource;
  /** the decoded HGQ2 checkpoint, for `.keras` inputs */
  hgq2: HgqModel | null;
}

/** Load a model directory or an HGQ2 `.keras` file (imported with `buildHgqModel`). */
export async function loadModelWithSource(path: string): Promise<LoadedModel> {
  const source = modelSource(path);
  if (source === null) {
    throw new ModelFileError(
      path,
      existsSync(path)
        ? 'not a model (expected a directory with model.json and weights.bin, or an HGQ2 .keras file)'
        : 'no such file or directory',
    );
  }
  await initBackend();
  if (source === 'tfjs') return { model: await loadModel(path), source, hgq2: null };
  const hgq2 = await loadHgq2Model(path);
  return { model: buildHgqModel(hgq2), source, hgq2 };
}

export async function loadModelAny(path: string): Promise<tf.LayersModel> {
  return (await loadModelWithSource(path)).model;
}
