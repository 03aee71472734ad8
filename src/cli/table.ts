/** Plain-text tables for the terminal. */

/**
 * The lines of a table: columns two spaces apart, each right-aligned to its widest cell, except the last
 * (a path or a name), which is left as it is.
 */
export function textTable(head: string[], rows: string[][]): string {
  const w = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, j) => (j === cells.length - 1 ? c : c.padStart(w[j]!)))
      .join('  ')
      .trimEnd();
  return [head, ...rows].map((r) => `${line(r)}\n`).join('');
}

/**
 * An EBOPs figure for a table cell: arithmetic layers give whole numbers; table layers' EBOPs hold fractions
 * (an input narrower than b bits counts bits/b) computed in float32, shown to one decimal.
 */
export function formatEbops(e: number): string {
  return Number.isInteger(e) ? String(e) : e.toFixed(1);
}
