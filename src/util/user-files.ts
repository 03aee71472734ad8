/**
 * Users' files read as input (model folders, project summaries): the error for one that cannot be used (bad
 * input, which the CLI reports with exit 2; the message starts with the file's path and says what is wrong)
 * and the checks shared by their readers. Light (no tfjs, no node:fs) so the CLI's entry point can import it.
 */
import { isAbsolute, relative, resolve } from 'node:path';

/** A file given to hgq that is missing, truncated, malformed or inconsistent; `path` names it. */
export class InputFileError extends Error {
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(`${path}: ${what}`);
    this.name = new.target.name;
  }
}

/** A model directory, model.json or weights file that cannot be loaded. */
export class ModelFileError extends InputFileError {}

/** A parsed JSON value that is an object (not null, not an array). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether path `target` lies strictly inside folder `root` (after resolving `..`; links are not followed). */
export function isInside(root: string, target: string): boolean {
  const rel = relative(resolve(root), resolve(target));
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}
