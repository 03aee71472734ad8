/**
 * JSON form of a Program: the Program object itself, versioned by its `version` field. Reading checks the
 * version first (a clear message for files from another hgq), then validates everything.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.ts';
import { IR_FORMAT_VERSION, type Program } from './types.ts';
import { validateProgram } from './validate.ts';

/** One op per line keeps large programs diffable and still plain JSON. */
export function programToJSON(p: Program): string {
  validateProgram(p);
  const head = JSON.stringify({ version: p.version, name: p.name, inputs: p.inputs, outputs: p.outputs });
  const ops = p.ops.map((o) => '    ' + JSON.stringify(o)).join(',\n');
  const out = JSON.stringify(p.out);
  return `${head.slice(0, -1)},\n  "ops": [\n${ops}${ops ? '\n' : ''}  ],\n  "out": ${out}\n}\n`;
}

/** Parses and validates a program; `sourceName` (e.g. the file path) prefixes every error. */
export function programFromJSON(text: string, sourceName = '<program>'): Program {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${sourceName}: not valid JSON, the file is corrupt or truncated (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${sourceName}: not an hgq IR program (expected a JSON object with version, inputs, outputs, ops, out)`);
  }
  const v = (raw as { version?: unknown }).version;
  if (v === undefined) throw new Error(`${sourceName}: not an hgq IR program (no "version" field)`);
  if (v !== IR_FORMAT_VERSION) {
    throw new Error(
      `${sourceName}: IR format version ${JSON.stringify(v)}, but this hgq reads version ${IR_FORMAT_VERSION}; regenerate the program with this hgq (hgq trace) or use a matching hgq`,
    );
  }
  const p = raw as Program;
  try {
    validateProgram(p);
  } catch (e) {
    throw new Error(`${sourceName}: ${(e as Error).message}`);
  }
  return p;
}

/** Writes atomically (src/util/fs.ts writeFileAtomic: a temporary beside it, renamed into place, never left behind). */
export function writeProgram(path: string, p: Program): void {
  writeFileAtomic(path, programToJSON(p));
}

/**
 * Whether the file at `path` is an IR program as programToJSON writes it (it opens with the version field):
 * an output path holding one may be overwritten, any other existing file is the user's.
 */
export function isProgramFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(64);
    const n = readSync(fd, head, 0, head.length, 0);
    return /^\{"version":\d+,"name":/.test(head.subarray(0, n).toString('utf8'));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function readProgram(path: string): Program {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read the program (${(e as Error).message})`);
  }
  return programFromJSON(text, path);
}
