/** Process listings from /proc, for tests of processes that must die with their parent. */
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Live child processes of `pid`, optionally only those whose command line contains `cmdPart`. */
export function childrenOf(pid: number, cmdPart?: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (Number(statFields(e)[1]) !== pid) continue;
      if (cmdPart === undefined || readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(cmdPart)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether process `pid` is still alive (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    return statFields(pid)[0] !== 'Z';
  } catch {
    return false;
  }
}
