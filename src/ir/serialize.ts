/**
 * JSON form of a Program: the Program object itself, versioned by its `version` field. Reading checks the
 * version first (a clear message for files from another hgq), then validates everything.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
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
    throw new Error(`${sourceName}: IR format version ${JSON.stringify(v)}, but this hgq reads version ${IR_FORMAT_VERSION}; regenerate the program with this hgq (hgq trace) or use a matching hgq`);
  }
  const p = raw as Program;
  try {
    validateProgram(p);
  } catch (e) {
    throw new Error(`${sourceName}: ${(e as Error).message}`);
  }
  return p;
}

/** Writes atomically: a temporary file in the same directory, then rename. */
export function writeProgram(path: string, p: Program): void {
  const text = programToJSON(p);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
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
