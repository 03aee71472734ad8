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

/** The HGQ2-made table-layer reference models in ../shared/fixtures/hgq2-lut (each `STEM.keras` + `STEM.json`). */
export const HGQ2_LUT_DIR = fileURLToPath(new URL('../../../shared/fixtures/hgq2-lut/', import.meta.url));
export const HGQ2_LUT_STEMS = ['lut_dense', 'lut_dense_nhl2', 'lut_conv1d', 'lut_conv2d', 'hybrid'];

/**
 * The skip reason of a table-fixture test: false when the fixtures are present. When they are absent under
 * CI (CI=true) a failing test says so instead, since CI must have them.
 */
export function lutFixturesSkip(test: (name: string, fn: () => void) => unknown): string | false {
  if (existsSync(join(HGQ2_LUT_DIR, 'lut_dense.keras'))) return false;
  if (process.env.CI === 'true')
    test('HGQ-LUT fixtures are present in CI', () => {
      throw new Error(`CI=true but ${HGQ2_LUT_DIR} has no fixtures`);
    });
  return `HGQ-LUT fixtures absent (${HGQ2_LUT_DIR})`;
}
