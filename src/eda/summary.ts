/**
 * A project's summary.json read back as input: it is a file on the user's disk (edited, truncated, copied
 * from elsewhere), so every field a tool relies on is checked, and a damaged one is a ProjectFileError naming
 * the file and the field. The names it passes on are safe to put into tool scripts (Yosys, make): `top` is
 * a plain identifier and source paths stay inside the project.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Summary } from '../backends/project.ts';
import { InputFileError, isInside, isJsonObject } from '../util/user-files.ts';

/** A project folder or its summary.json that cannot be used; the message names the file and the field. */
export class ProjectFileError extends InputFileError {}

const FORMATS = ['verilog', 'vhdl', 'hls'] as const;
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]*$/;
const REDO = 'run `hgq convert` again to rewrite the project';

/**
 * summary.json of project `dir`, with `format`, `top` and the `files` entries named in `needFiles` checked
 * (each a relative path inside the project, to an existing file).
 */
export function readProjectSummary(dir: string, needFiles: (format: Summary['format']) => string[] = () => []): Summary {
  const path = join(dir, 'summary.json');
  if (!existsSync(path)) throw new ProjectFileError(dir, 'not an hgq project (no summary.json); create one with `hgq convert`');
  let s: unknown;
  try {
    s = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ProjectFileError(path, `not valid JSON (${(e as Error).message}); the file is damaged: ${REDO}`);
  }
  const bad = (field: string, what: string): never => {
    throw new ProjectFileError(path, `field "${field}" ${what}; ${REDO}`);
  };
  if (!isJsonObject(s)) throw new ProjectFileError(path, `is not a JSON object; ${REDO}`);
  const format = s['format'];
  if (format === undefined) bad('format', `is missing (expected one of ${FORMATS.join(', ')})`);
  if (!(FORMATS as readonly unknown[]).includes(format))
    bad('format', `is ${JSON.stringify(format)}, not one of ${FORMATS.join(', ')}`);
  const top = s['top'];
  if (top === undefined) bad('top', 'is missing (expected the top-level module name)');
  if (typeof top !== 'string' || !IDENTIFIER.test(top))
    bad('top', `is ${JSON.stringify(top)}, not a module name (letters, digits, _)`);
  const files = s['files'];
  if (!isJsonObject(files)) return bad('files', files === undefined ? 'is missing' : 'must be an object of relative file paths');
  for (const key of needFiles(format as Summary['format'])) {
    const rel = files[key];
    const field = `files.${key}`;
    if (rel === undefined) bad(field, 'is missing');
    if (typeof rel !== 'string' || rel === '') bad(field, `is ${JSON.stringify(rel)}, not a relative file path`);
    if (isAbsolute(rel as string) || !isInside(dir, resolve(dir, rel as string)))
      bad(field, `(${JSON.stringify(rel)}) points outside the project`);
    const full = join(dir, rel as string);
    if (!existsSync(full) || !statSync(full).isFile())
      throw new ProjectFileError(full, `no such file (named in ${path} as ${field}); ${REDO}`);
  }
  return s as unknown as Summary;
}
