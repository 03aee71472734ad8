import type { Netlist } from './netlist.ts';
export function writeVhdl(_nl: Netlist, _top: string, _o: object = {}): string { return ''; }
export function writeVhdlTestbench(_nl: Netlist, _top: string, _o: object = {}): string { return ''; }
