// Which rows of a long list are rendered: those in the viewport plus a margin, trimmed so that no more than
// `maxItems` thumbnails are ever in the DOM however tall the screen or long the library.

export interface Sized { top: number; height: number; items?: unknown[] }

/** Index of the first row whose bottom is below `y` (binary search: rows are sorted by top). */
export function firstRowBelow(rows: Sized[], y: number): number {
  let lo = 0, hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid].top + rows[mid].height <= y) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export function visibleRange(rows: Sized[], scrollTop: number, viewport: number, overscan: number, maxItems: number): [number, number] {
  if (!rows.length) return [0, 0];
  const start = Math.min(firstRowBelow(rows, Math.max(0, scrollTop - overscan)), rows.length - 1);
  let end = start;
  let items = 0;
  const bottom = scrollTop + viewport + overscan;
  while (end < rows.length && rows[end].top < bottom) {
    const n = rows[end].items?.length ?? 0;
    if (items + n > maxItems) break;
    items += n;
    end++;
  }
  return [start, Math.max(end, start + 1)];
}

/** Number of thumbnail columns that fit a width. */
export function columnsFor(width: number, tile: number, gap: number): number {
  return Math.max(2, Math.floor((width + gap) / (tile + gap)));
}

/** The thumbnail side that lets `maxItems` thumbnails cover the viewport plus its margins on this screen: on a
 * big screen thumbnails grow rather than leave the bottom of the window empty. Never below `min`. */
export function tileFor(width: number, height: number, overscan: number, maxItems: number, gap: number, min = 100): number {
  const rowsOf = (side: number) => Math.ceil((height + 2 * overscan) / (side + gap)) + 1;
  let side = min;
  while (columnsFor(width, side, gap) * rowsOf(side) > maxItems * 0.8) side += 4;
  return side;
}
