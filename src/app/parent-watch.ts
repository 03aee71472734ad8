/**
 * A process started by a sweep worker (HGQ_EXIT_WITH_PARENT=1) exits when its parent dies, even by SIGKILL, so
 * no orphan keeps training a trial that the queue hands to another worker (docs/sweep.md). Two signs, because
 * training runs long stretches without returning to the event loop: the parent's end of our stdin pipe
 * closing (seen while idle), and our parent pid changing (the orphan is re-parented), checked at each epoch.
 */
const watching = process.env.HGQ_EXIT_WITH_PARENT === '1';
const parentAtStart = process.ppid;
/** The exit code of a process that exits because its parent died. */
export const ORPHANED = 129;
let watchingStdin = false;

/** Starts watching stdin (at start-up; again is a no-op, as in a trial process running `main` per trial); a no-op unless HGQ_EXIT_WITH_PARENT=1. */
export function watchParent(): void {
  if (!watching || watchingStdin) return;
  watchingStdin = true;
  process.stdin.on('end', () => process.exit(ORPHANED));
  process.stdin.on('error', () => process.exit(ORPHANED));
  process.stdin.resume();
  (process.stdin as unknown as { unref?: () => void }).unref?.(); // watching must not keep a finished process alive
}

/** Exits at once if the parent has died (call between units of long work, e.g. each epoch). */
export function exitIfOrphaned(): void {
  if (watching && process.ppid !== parentAtStart) process.exit(ORPHANED);
}
