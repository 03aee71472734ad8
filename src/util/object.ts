/** Small helpers on plain objects. */

/**
 * `o` without its undefined entries, so that an optional field left unset is absent rather than present as
 * undefined (which a JSON schema or `'key' in o` would see).
 */
export function definedEntries<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
