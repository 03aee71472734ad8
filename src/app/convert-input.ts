/**
 * What `hgq convert <input>` reads: an IR program (.json), or a trained model (model directory or HGQ2 .keras)
 * traced on the way with the default options. Heavy modules (tfjs, the tracer) load only for model inputs.
 */
import { existsSync, statSync } from 'node:fs';
import { UsageError } from '../cli/errors.ts';
import type { Program } from '../ir/types.ts';

/** The program, and for model inputs a check of the emulator against the model and the model's exact EBOPs. */
export interface LoadedProgram {
  program: Program;
  /** compare emulator and model on n random inputs; returns mismatching samples */
  validate?: (n: number) => Promise<{ samples: number; mismatches: number }>;
  /** the source model's exact EBOPs (model inputs only); copied into summary.json as `ebops` */
  ebops?: number;
}

export async function loadProgramForConvert(path: string): Promise<LoadedProgram> {
  if (!existsSync(path)) throw new UsageError(`${path}: no such file or directory`);
  if (statSync(path).isFile() && path.toLowerCase().endsWith('.json')) {
    const { readProgram } = await import('../ir/serialize.ts');
    try {
      return { program: readProgram(path) };
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const { isModelPath, traceModelFile } = await import('./trace-model.ts');
  if (isModelPath(path)) {
    const t = await traceModelFile(path, { cmvm: 'da', dc: -1 });
    const { exactEbops } = await import('../train/calibrate.ts');
    return { program: t.program, validate: async (n: number) => t.validate(n), ebops: exactEbops(t.model).ebops };
  }
  throw new UsageError(
    `${path}: not an IR program (.json) and not a model (a directory with model.json and weights.bin, or an HGQ2 .keras file)`,
  );
}
