/**
 * Output files and folders that hgq writes, and the rules that keep it from ever deleting or overwriting
 * what it did not write (docs/output-folders.md).
 *
 * - An output folder is hgq's only if it holds an ownership marker (MARKER: format, kind, hgq version, the
 *   list of files hgq wrote), written last, and nothing that the marker does not list. Only such a folder
 *   (or an absent or empty one) may be replaced; anything else is refused with OutputPathError.
 * - Every write goes to a private temporary beside the target and is renamed into place; the temporary is
 *   removed on every failure path, and on SIGINT/SIGTERM/exit. Temporaries left by a killed process (SIGKILL)
 *   are recognized by name and owner pid and removed by the next run that writes the same target.
 * - A folder being written is locked (`.NAME.hgq-lock`, holding the writer's pid), so two runs into one folder
 *   cannot interleave: the second is refused while the first is alive, and takes over a stale lock.
 */
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  accessSync,
  constants as fsConstants,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';

/** The ownership marker's file name, inside every folder hgq writes. */
export const MARKER = '.hgq-output.json';
export const MARKER_FORMAT = 'hgq-output';
export const MARKER_VERSION = 1;

/** What the marker holds. `kind` says what the folder is (project, model, run, ...); extra fields are the kind's own. */
export interface OwnershipMarker {
  format: typeof MARKER_FORMAT;
  version: number;
  kind: string;
  hgq_version: string;
  /** every file hgq wrote, as paths relative to the folder with '/' separators (the marker itself excluded) */
  files: string[];
  [extra: string]: unknown;
}

/** A bad output path (exists and is not ours, missing parent, not writable): exit 2. */
export class OutputPathError extends Error {
  override name = 'OutputPathError';
}

/** The exit code of a command refused because another live hgq process holds its output (OutputBusyError). */
export const EXIT_BUSY = 75;

/**
 * The output is locked by another live hgq process: not bad input but a temporary state, so the CLI exits
 * 75 (EX_TEMPFAIL, "try again later") and a scheduler can tell it from a refusal that retrying cannot fix.
 */
export class OutputBusyError extends Error {
  override name = 'OutputBusyError';
}

let cachedVersion: string | undefined;
/** hgq's version from package.json (recorded in markers). */
export function hgqVersion(): string {
  cachedVersion ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
  return cachedVersion;
}

/** Every regular file below `dir`, as sorted '/'-separated relative paths (symlinks count as files, never followed). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const gone = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';
  // another process may remove entries while we walk (a temporary renamed into place): skip what vanished
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch (e) {
      if (gone(e)) return;
      throw e;
    }
    for (const name of names) {
      const full = join(d, name);
      let isDir: boolean;
      try {
        isDir = lstatSync(full).isDirectory();
      } catch (e) {
        if (gone(e)) continue;
        throw e;
      }
      if (isDir) walk(full);
      else out.push(relative(dir, full).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/** Whether any file (or link) lies below `dir`; stops at the first. An unreadable folder counts as holding one. */
function holdsAnyFile(dir: string): boolean {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return true;
  }
  for (const name of names) {
    const full = join(dir, name);
    try {
      if (!lstatSync(full).isDirectory() || holdsAnyFile(full)) return true;
    } catch {
      return true;
    }
  }
  return false;
}

/** The folder's marker, or null when it has none or it is not ours (wrong format, unreadable). */
export function readMarker(dir: string): OwnershipMarker | null {
  const path = join(dir, MARKER);
  if (!existsSync(path)) return null;
  try {
    const m = JSON.parse(readFileSync(path, 'utf8')) as OwnershipMarker;
    if (m?.format !== MARKER_FORMAT || !Array.isArray(m.files) || typeof m.kind !== 'string') return null;
    return m;
  } catch {
    return null;
  }
}

/** Why `dir` may not be replaced by hgq, or null when it may (absent, empty, or hgq's of one of `kinds`). */
export function whyNotReplaceable(dir: string, kinds: readonly string[]): string | null {
  const dest = resolve(dir);
  if (!existsSync(dest)) return null;
  if (!statSync(dest).isDirectory()) return `${dir} exists and is a file, not a folder`;
  // the marker first: a folder without one is refused without walking it (`/` or a home folder would be walked whole)
  const marker = readMarker(dest);
  if (!marker) {
    if (!holdsAnyFile(dest)) return null; // empty, or empty folders only
    return `${dir} exists and was not written by hgq (it has no ${MARKER}); choose a new or empty folder`;
  }
  const present = listFiles(dest);
  if (!kinds.includes(marker.kind))
    return `${dir} holds an hgq ${marker.kind}, not ${kinds.length === 1 ? `a ${kinds[0]}` : `one of: ${kinds.join(', ')}`}; choose another folder`;
  const ours = new Set([...marker.files, MARKER]);
  const foreign = present.filter((f) => !ours.has(f));
  if (foreign.length > 0)
    return `${dir} holds files hgq did not write (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? `, … ${foreign.length} in all` : ''}); move them away or choose another folder`;
  return null;
}

/** Throws OutputPathError unless `dir` may be replaced (see whyNotReplaceable). */
export function assertReplaceable(dir: string, kinds: readonly string[]): void {
  const why = whyNotReplaceable(dir, kinds);
  if (why) throw new OutputPathError(why);
}

/**
 * Writing failed for a reason of the machine's, not the path's (disk full, file-size limit): exit 1 with
 * the path named. The temporary is gone by the time this is thrown.
 */
export class OutputWriteError extends Error {
  override name = 'OutputWriteError';
}

/** The error to throw for a failed write of `path`: a bad place is OutputPathError, the rest OutputWriteError. */
function writeFailure(path: string, e: unknown): Error {
  if (e instanceof OutputPathError || e instanceof OutputWriteError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const why = (e as Error).message ?? String(e);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR' || code === 'EISDIR')
    return new OutputPathError(`${path}: cannot write here (${why})`);
  return new OutputWriteError(`${path}: could not be written (${why}); nothing was left behind`);
}

/**
 * Throws OutputPathError unless `path` may receive an output file: a writable place (assertWritableFilePath)
 * holding no file yet, or a file hgq wrote (`isOurs`, e.g. an IR program recognized by its format). hgq
 * cannot recognize every format it writes (CSV, NPY): `overwrite` is the user's explicit permission, given
 * with the flag `overwriteFlag` (named in the refusal; for such files `isOurs` is not asked).
 */
export function assertOutputFile(
  path: string,
  isOurs: (path: string) => boolean,
  what: string,
  overwrite = false,
  overwriteFlag?: string,
): void {
  if (path.trim() === '') throw new OutputPathError('the output file name is empty; give a file name');
  if (/[\\/]$/.test(path)) throw new OutputPathError(`${path} names a folder (it ends with a slash); give a file name`);
  assertWritableFilePath(path);
  if (overwrite || !existsSync(path)) return;
  if (overwriteFlag !== undefined)
    // hgq cannot tell its own file of this kind from the user's: say so, and how to allow the overwrite
    throw new OutputPathError(
      `${path} exists; hgq does not overwrite it: add ${overwriteFlag} to replace it, or choose another name`,
    );
  if (!lstatSync(path).isFile() || !isOurs(path))
    throw new OutputPathError(
      `${path} exists and is not ${what} written by hgq; hgq does not overwrite it: remove it first or choose another name`,
    );
}

/** Throws OutputPathError unless `path` can be created as a file: its parent is a writable folder and it is not a folder. */
export function assertWritableFilePath(path: string): void {
  const target = resolve(path);
  const parent = dirname(target);
  if (!existsSync(parent)) throw new OutputPathError(`${path}: the folder ${parent} does not exist; create it first`);
  if (!statSync(parent).isDirectory()) throw new OutputPathError(`${path}: ${parent} is not a folder`);
  if (existsSync(target) && statSync(target).isDirectory()) throw new OutputPathError(`${path} is a folder; give a file name`);
  assertWritable(parent, path);
}

/**
 * The folder an output path names, through a symbolic link: hgq replaces its output folders as a whole (rename),
 * which would replace the user's link itself (deleting it) and write beside where it points. A link to a folder
 * is followed (its target returned); a dangling one is refused, since hgq would have to delete it. Any other
 * path is returned as given.
 */
export function outputDirThroughLinks(dir: string): string {
  let isLink: boolean;
  try {
    isLink = lstatSync(dir).isSymbolicLink();
  } catch {
    return dir; // absent
  }
  if (!isLink) return dir;
  try {
    return realpathSync(dir);
  } catch {
    throw new OutputPathError(
      `${dir} is a symbolic link to ${readlinkSync(dir)}, which does not exist; create that folder or give another path (hgq does not replace links)`,
    );
  }
}

/** Throws OutputPathError unless a folder can be created at `dir` (its nearest existing ancestor is a writable folder). */
export function assertCreatableDir(dir: string): void {
  if (dir.trim() === '') throw new OutputPathError('the output folder name is empty; give a folder name');
  let p = resolve(dir);
  if (existsSync(p) && !statSync(p).isDirectory()) throw new OutputPathError(`${dir} exists and is a file, not a folder`);
  while (!existsSync(p)) p = dirname(p);
  if (!statSync(p).isDirectory()) throw new OutputPathError(`${dir}: ${p} is a file, not a folder`);
  assertWritable(p, dir);
}

function assertWritable(folder: string, named: string): void {
  try {
    accessSync(folder, fsConstants.W_OK | fsConstants.X_OK);
  } catch {
    throw new OutputPathError(`${named}: the folder ${folder} is not writable`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// temporaries: named `.BASE.hgq-tmp-PID-N` beside the target, so a later run can tell whose they are

const TMP_TAG = '.hgq-tmp-';
let tmpCounter = 0;
const liveTemporaries = new Set<string>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', removeLiveTemporaries);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // only when nobody else handles the signal: then node's default (exit without 'exit' event) would leak them
    process.on(sig, () => {
      removeLiveTemporaries();
      if (process.listenerCount(sig) === 1) process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

function removeLiveTemporaries(): void {
  for (const t of liveTemporaries) rmSync(t, { recursive: true, force: true });
  liveTemporaries.clear();
}

/** A fresh temporary path beside `target`, removed automatically if the process exits before `release`. */
export function temporaryBeside(target: string): { path: string; release(): void } {
  hookExit();
  const t = resolve(target);
  const path = join(dirname(t), `.${basename(t)}${TMP_TAG}${process.pid}-${++tmpCounter}`);
  liveTemporaries.add(path);
  return {
    path,
    release: () => {
      liveTemporaries.delete(path);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Whether process `pid` (on this machine) is alive: EPERM means it exists under another user. */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporaries beside `target` left by dead processes: ours (`.BASE.hgq-tmp-PID-N`) and the names
 * earlier hgq versions used (`.BASE.tmp-PID-TIME`, with `.old`). A live process's temporaries are left alone.
 */
export function removeStaleTemporaries(target: string): string[] {
  const t = resolve(target);
  const parent = dirname(t);
  if (!existsSync(parent)) return [];
  const base = escapeRegExp(basename(t));
  const pattern = new RegExp(
    `^\\.${base}(?:\\.hgq-tmp-(\\d+)-\\d+|\\.tmp-(\\d+)-\\d+(?:\\.old)?)$|^${base}\\.tmp-(\\d+)(?:-\\d+)?$`,
  );
  const removed: string[] = [];
  for (const name of readdirSync(parent)) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1] ?? m[2] ?? m[3]);
    if (pidAlive(pid)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
    removed.push(join(parent, name));
  }
  return removed;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------------------
// locks

function lockPathOf(target: string): string {
  const t = resolve(target);
  return join(dirname(t), `.${basename(t)}.hgq-lock`);
}

/**
 * A lock records its holder as `PID HOST`. On this host the holder is alive while its pid is; a holder on
 * another host (a sweep's shared store) cannot be asked, so it refreshes the lock's mtime every
 * `heartbeatMs` and counts as alive until `staleMs` pass without a refresh (a machine gone). Mutable only so
 * that tests can watch a heartbeat.
 */
export const LOCK_TIMING = { heartbeatMs: 30_000, staleMs: 5 * 60_000 };

export interface LockHolder {
  pid: number;
  /** absent in locks written before hosts were recorded (read as this host) */
  host?: string;
}

/** The live holder of the lock file `lockPath`, or null when it is absent, unreadable or stale. */
export function liveHolderOfLockFile(lockPath: string): LockHolder | null {
  let text: string;
  let mtimeMs: number;
  try {
    text = readFileSync(lockPath, 'utf8');
    mtimeMs = statSync(lockPath).mtimeMs;
  } catch {
    return null;
  }
  const [pidText, host] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  if (host === undefined || host === hostname()) return pidAlive(pid) ? { pid } : null;
  return Date.now() - mtimeMs < LOCK_TIMING.staleMs ? { pid, host } : null;
}

/** The live process holding `target`'s lock, or null when nobody holds it. */
export function liveLockHolder(target: string): LockHolder | null {
  return liveHolderOfLockFile(lockPathOf(target));
}

/** Throws OutputBusyError when another live hgq process holds `target`'s lock. */
export function assertNotBusy(target: string): void {
  const holder = liveLockHolder(target);
  if (holder !== null)
    throw new OutputBusyError(
      `${target} is being written by another hgq process (pid ${holder.pid}${holder.host ? ` on ${holder.host}` : ''}); wait for it to finish or choose another folder`,
    );
}

/** Holds `.BASE.hgq-lock` beside `target` until released; refuses (OutputBusyError) while another live process holds it. */
export function lockOutput(target: string): { release(): void } {
  hookExit();
  const t = resolve(target);
  const lockPath = lockPathOf(t);
  mkdirSync(dirname(t), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeFileSync(fd, `${process.pid} ${hostname()}\n`);
      closeSync(fd);
      liveTemporaries.add(lockPath);
      const heartbeat = setInterval(() => touch(lockPath), LOCK_TIMING.heartbeatMs);
      heartbeat.unref();
      return {
        release: () => {
          clearInterval(heartbeat);
          liveTemporaries.delete(lockPath);
          rmSync(lockPath, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      assertNotBusy(target);
      rmSync(lockPath, { force: true }); // its writer died (SIGKILL): the lock is stale
    }
  }
  throw new OutputPathError(`${target}: could not take the lock ${lockPath}`);
}

/** Sets a file's mtime to now (a lock's heartbeat); a file removed meanwhile is left absent. */
function touch(path: string): void {
  const now = new Date();
  try {
    utimesSync(path, now, now);
  } catch {
    // released or removed: nothing to refresh
  }
}

// ---------------------------------------------------------------------------------------------------------
// writing

/** Writes one file atomically (temporary beside it + rename); the temporary never outlives a failure. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const target = resolve(path);
  mkdirSync(dirname(target), { recursive: true });
  if (existsSync(target) && statSync(target).isDirectory()) throw new OutputPathError(`${path} is a folder; give a file name`);
  removeStaleTemporaries(target); // a SIGKILLed earlier write of the same file
  const tmp = temporaryBeside(target);
  try {
    writeFileSync(tmp.path, data);
    renameSync(tmp.path, target);
  } catch (e) {
    throw writeFailure(path, e);
  } finally {
    tmp.release();
  }
}

/** Writes the ownership marker of `dir` (listing every file now in it), atomically. */
export function writeMarker(dir: string, kind: string, extra: Record<string, unknown> = {}): OwnershipMarker {
  const marker: OwnershipMarker = {
    format: MARKER_FORMAT,
    version: MARKER_VERSION,
    kind,
    hgq_version: hgqVersion(),
    ...extra,
    files: listFiles(dir).filter((f) => f !== MARKER),
  };
  writeFileAtomic(join(dir, MARKER), JSON.stringify(marker, null, 1) + '\n');
  return marker;
}

/**
 * A folder written as a whole: files go into a private staging folder beside `dir`; `commit()` writes the
 * marker last and swaps the staging folder into place (replacing an earlier folder of the same kinds);
 * `abort()` removes it. `begin` checks `dir` may be replaced and takes its lock, before any long work.
 */
export class StagedDir {
  readonly staging: string;
  private readonly tmp: { path: string; release(): void };
  private readonly lock: { release(): void };
  private done = false;

  readonly dir: string;

  private constructor(
    named: string,
    readonly kind: string,
    private readonly kinds: readonly string[],
  ) {
    const dir = outputDirThroughLinks(named);
    this.dir = dir;
    assertCreatableDir(dir);
    assertReplaceable(dir, kinds);
    this.lock = lockOutput(dir);
    try {
      removeStaleTemporaries(dir);
      this.tmp = temporaryBeside(dir);
      this.staging = this.tmp.path;
      mkdirSync(this.staging, { recursive: true });
    } catch (e) {
      this.lock.release();
      throw e;
    }
  }

  /** Checks `dir` (absent, empty, or hgq's of `kinds`, default [kind]), locks it and opens a staging folder. */
  static begin(dir: string, kind: string, kinds: readonly string[] = [kind]): StagedDir {
    return new StagedDir(dir, kind, kinds);
  }

  /** Writes a file (relative path, '/'-separated) into the staging folder. */
  write(rel: string, data: string | Uint8Array): void {
    const full = join(this.staging, rel);
    try {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, data);
    } catch (e) {
      throw writeFailure(join(this.dir, rel), e);
    }
  }

  /** Marker last, then the swap: the folder at `dir` is always one run's complete output. */
  commit(extra: Record<string, unknown> = {}): void {
    if (this.done) throw new Error('StagedDir: already committed or aborted');
    try {
      writeMarker(this.staging, this.kind, extra);
      assertReplaceable(this.dir, this.kinds); // still ours: nobody dropped a file in meanwhile
      swapIntoPlace(this.staging, resolve(this.dir));
      this.done = true;
    } finally {
      if (!this.done) this.abort();
      else {
        this.tmp.release();
        this.lock.release();
      }
    }
  }

  abort(): void {
    this.done = true;
    this.tmp.release();
    this.lock.release();
  }
}

/** Renames `from` onto `dest`; an existing `dest` is moved aside first and restored if the swap fails. */
function swapIntoPlace(from: string, dest: string): void {
  if (!existsSync(dest)) {
    renameSync(from, dest);
    return;
  }
  const aside = temporaryBeside(dest);
  renameSync(dest, aside.path);
  try {
    renameSync(from, dest);
  } catch (e) {
    renameSync(aside.path, dest);
    throw e;
  }
  aside.release();
}

/** Writes a whole folder of files atomically (see StagedDir), e.g. a model checkpoint. */
export function writeDirAtomic(
  dir: string,
  files: Record<string, string | Uint8Array> | Map<string, string | Uint8Array>,
  kind: string,
  extra: Record<string, unknown> = {},
): void {
  const out = StagedDir.begin(dir, kind);
  try {
    for (const [rel, data] of files instanceof Map ? files : Object.entries(files)) out.write(rel, data);
  } catch (e) {
    out.abort();
    throw e;
  }
  out.commit(extra);
}
