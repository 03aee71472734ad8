/**
 * Filesystem IOHandler for the tfjs model format (model.json + weights.bin), since tfjs-node's file://
 * handler may be absent. A save writes the whole folder at once (src/util/fs.ts writeDirAtomic: staging
 * folder, ownership marker of kind "model" written last, swapped into place), so a crash never leaves a
 * half-written checkpoint, and only an absent, empty or earlier model folder of hgq's is replaced. Loading
 * reads what model.json names and ignores the marker.
 */
import * as tf from '@tensorflow/tfjs';
import { writeDirAtomic } from '../util/fs.ts';
import { MODEL_JSON, WEIGHTS_BIN, modelBuildError, readModelArtifacts } from './model-files.ts';

export { writeDirAtomic, writeFileAtomic } from '../util/fs.ts';

function joinWeights(w: tf.io.WeightData | undefined): ArrayBuffer {
  if (w === undefined) return new ArrayBuffer(0);
  return tf.io.concatenateArrayBuffers(Array.isArray(w) ? w : [w]);
}

/** The marker kind of a model folder (src/util/fs.ts): model.json, weights.bin and the files saved with them. */
export const MODEL_KIND = 'model';

/**
 * IOHandler that saves to / loads from a directory holding model.json and weights.bin; `extraFiles` (e.g.
 * preprocess.json) are saved in the same folder, in the same atomic write.
 */
export function fsHandler(dir: string, extraFiles: Record<string, string | Uint8Array> = {}): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fsHandler: binary model topology is not supported; save a tfjs-layers model');
      }
      const weights = joinWeights(artifacts.weightData);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      writeDirAtomic(
        dir,
        { ...extraFiles, [MODEL_JSON]: JSON.stringify(modelJson), [WEIGHTS_BIN]: new Uint8Array(weights) },
        MODEL_KIND,
      );
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      return readModelArtifacts(dir);
    },
  };
}

/** Saves a model (and `extraFiles` beside it) into `dir`, atomically. */
export async function saveModel(
  model: tf.LayersModel,
  dir: string,
  extraFiles: Record<string, string | Uint8Array> = {},
): Promise<void> {
  await model.save(fsHandler(dir, extraFiles));
}

/** Loads a model saved by `saveModel` (or any tfjs layers-model directory). Custom layers must be registered first. */
export async function loadModel(dir: string): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(fsHandler(dir));
  } catch (e) {
    throw modelBuildError(e, dir);
  }
}
