/**
 * Errors about a user's file that cannot be used: bad input, which the CLI reports with exit 2. The message
 * starts with the file's path and says what is wrong with it. Plain (no tfjs, no node:fs) so any module and
 * the CLI's entry point can import it.
 */

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
