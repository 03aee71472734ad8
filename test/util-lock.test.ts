/**
 * Output locks (src/util/fs.ts): a lock names its holder as `PID HOST`. On this host a holder is alive while
 * its pid is; a holder on another host (a sweep's shared store) while it keeps the lock's mtime fresh. A
 * second writer is refused as busy (OutputBusyError, exit 75) while the holder lives, and takes over a stale
 * lock; a lock of the old pid-only format still works.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LOCK_TIMING, liveLockHolder, lockOutput, OutputBusyError } from '../src/util/fs.ts';

/** A pid that is not running here (the kernel's pid_max is below 2^22). */
const DEAD_PID = 4_194_303;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-lock-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function age(path: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  utimesSync(path, t, t);
}

test('a lock records pid and host; a second lock of the same target is refused as busy until released', () =>
  withDir((dir) => {
    const target = join(dir, 'out');
    const lock = lockOutput(target);
    const file = join(dir, '.out.hgq-lock');
    assert.equal(readFileSync(file, 'utf8'), `${process.pid} ${hostname()}\n`);
    assert.deepEqual(liveLockHolder(target), { pid: process.pid });
    assert.throws(
      () => lockOutput(target),
      (e: unknown) => e instanceof OutputBusyError && /pid \d+\)/.test(e.message),
    );
    lock.release();
    assert.equal(liveLockHolder(target), null);
    lockOutput(target).release();
  }));

test('a lock of a dead process on this host (either format) is stale and taken over', () =>
  withDir((dir) => {
    const target = join(dir, 'out');
    const file = join(dir, '.out.hgq-lock');
    for (const text of [`${DEAD_PID} ${hostname()}\n`, `${DEAD_PID}\n`]) {
      writeFileSync(file, text);
      assert.equal(liveLockHolder(target), null, text);
      const lock = lockOutput(target);
      assert.equal(readFileSync(file, 'utf8'), `${process.pid} ${hostname()}\n`);
      lock.release();
    }
    writeFileSync(file, `${process.pid}\n`); // old format, live pid: held
    assert.deepEqual(liveLockHolder(target), { pid: process.pid });
  }));

test("another host's lock is held while its mtime is fresh (whatever the pid) and stale after LOCK_TIMING.staleMs", () =>
  withDir((dir) => {
    const target = join(dir, 'out');
    const file = join(dir, '.out.hgq-lock');
    writeFileSync(file, `${DEAD_PID} other-node-7\n`);
    age(file, LOCK_TIMING.staleMs / 2);
    assert.deepEqual(liveLockHolder(target), { pid: DEAD_PID, host: 'other-node-7' });
    assert.throws(
      () => lockOutput(target),
      (e: unknown) => e instanceof OutputBusyError && /pid 4194303 on other-node-7/.test(e.message),
    );
    assert.equal(readFileSync(file, 'utf8'), `${DEAD_PID} other-node-7\n`, 'a live foreign lock is left alone');
    age(file, LOCK_TIMING.staleMs + 1000);
    assert.equal(liveLockHolder(target), null);
    const lock = lockOutput(target);
    assert.equal(readFileSync(file, 'utf8'), `${process.pid} ${hostname()}\n`);
    assert.ok(Date.now() - statSync(file).mtimeMs < LOCK_TIMING.staleMs);
    lock.release();
  }));

test('a held lock refreshes its mtime (the heartbeat other hosts read), and stops when released', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hgq-lock-'));
  const saved = LOCK_TIMING.heartbeatMs;
  LOCK_TIMING.heartbeatMs = 50;
  try {
    const target = join(dir, 'out');
    const lock = lockOutput(target);
    const file = join(dir, '.out.hgq-lock');
    age(file, 60_000);
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(Date.now() - statSync(file).mtimeMs < 5_000, 'the heartbeat refreshed the lock');
    lock.release();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(liveLockHolder(target), null, 'released: no lock left behind by a late heartbeat');
  } finally {
    LOCK_TIMING.heartbeatMs = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
