/** Locates the HGQ2 checkpoints in ../shared/fixtures/hgq2 (relative to the repo root). */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const HGQ2_FIXTURE_DIR = fileURLToPath(new URL('../../../shared/fixtures/hgq2/', import.meta.url));

/** Absolute paths of every `.keras` fixture; [] when the folder is absent. */
export function hgq2Fixtures(): string[] {
  if (!existsSync(HGQ2_FIXTURE_DIR)) return [];
  return readdirSync(HGQ2_FIXTURE_DIR)
    .filter((f) => f.endsWith('.keras'))
    .sort()
    .map((f) => join(HGQ2_FIXTURE_DIR, f));
}

/**
 * Why fixture tests cannot run, or null when they can. Absent fixtures skip locally but fail in CI
 * (process.env.CI === 'true'), where they must be present.
 */
export function fixturesMissing(): { skip: string | false; failInCi: boolean } {
  if (hgq2Fixtures().length > 0) return { skip: false, failInCi: false };
  const msg = `HGQ2 fixtures absent (no .keras files in ${HGQ2_FIXTURE_DIR})`;
  return process.env.CI === 'true' ? { skip: false, failInCi: true } : { skip: msg, failInCi: false };
}
