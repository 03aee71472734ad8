/**
 * NPZ files (numpy's `np.savez` / `savez_compressed`: a zip of `.npy` members): read one array by name.
 * Errors name the file, the member and the arrays the file does hold.
 */
import { readFileSync } from 'node:fs';
import JSZip from 'jszip';
import { parseNpy, type NdArray } from './npy.ts';

/** Names of the arrays in an NPZ file (member names without `.npy`). */
export async function npzNames(path: string): Promise<string[]> {
  const zip = await openZip(path);
  return Object.keys(zip.files)
    .filter((n) => n.endsWith('.npy'))
    .map((n) => n.slice(0, -4));
}

async function openZip(path: string): Promise<JSZip> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    return await JSZip.loadAsync(bytes, { checkCRC32: true });
  } catch (e) {
    throw new Error(`${path}: not a readable NPZ (zip) file (${(e as Error).message})`);
  }
}

/** Reads array `name` from an NPZ file. */
export async function readNpz(path: string, name: string): Promise<NdArray> {
  const zip = await openZip(path);
  const member = zip.file(`${name}.npy`) ?? zip.file(name);
  if (!member) {
    const have = Object.keys(zip.files)
      .filter((n) => n.endsWith('.npy'))
      .map((n) => n.slice(0, -4));
    throw new Error(`${path}: no array '${name}' (the file holds: ${have.join(', ') || 'no arrays'})`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await member.async('uint8array');
  } catch (e) {
    throw new Error(`${path}: array '${name}' cannot be read (${(e as Error).message})`);
  }
  return parseNpy(bytes, `${path}:${name}`);
}
