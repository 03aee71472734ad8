import type { Program } from '../ir/types.ts';
export function writeHls(_p: Program, _top: string, _o: object = {}): string { return ''; }
export function writeHlsTestbench(_p: Program, _top: string): string { return ''; }
