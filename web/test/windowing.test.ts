import { describe, expect, it } from 'vitest';
import { groupByDay, layoutRows } from '../src/lib/grouping';
import { columnsFor, firstRowBelow, tileFor, visibleRange } from '../src/lib/windowing';

// A 10k-photo library, 20 photos a day.
const library = [...Array(10_000)].map((_, i) => ({
  photo_id: `p${i}`, taken_at: new Date(Date.UTC(2020, 0, 1) + Math.floor(i / 20) * 86_400_000).toISOString(), uploaded_at: '2024-01-01T00:00:00Z',
}));

describe('windowing', () => {
  it('finds the first row below a y by binary search', () => {
    const rows = [{ top: 0, height: 10 }, { top: 10, height: 10 }, { top: 20, height: 10 }];
    expect(firstRowBelow(rows, 0)).toBe(0);
    expect(firstRowBelow(rows, 10)).toBe(1);
    expect(firstRowBelow(rows, 25)).toBe(2);
    expect(firstRowBelow(rows, 99)).toBe(3);
  });

  it('never renders more than 60 thumbnails in a 10k-photo timeline, and still covers the screen, on any screen', () => {
    for (const [width, height] of [[390, 844], [1280, 800], [1920, 1080], [2560, 1440]]) {
      const tile = tileFor(width, height, 120, 60, 12);
      const layout = layoutRows(groupByDay(library), columnsFor(width, tile, 12), { month: 44, day: 32, photos: tile + 12 });
      let worst = 0;
      for (let y = 0; y + height < layout.height; y += 997) {
        const [s, e] = visibleRange(layout.rows, y, height, 120, 60);
        const n = layout.rows.slice(s, e).reduce((acc, r) => acc + (r.kind === 'photos' ? r.items.length : 0), 0);
        worst = Math.max(worst, n);
        const last = layout.rows[e - 1];
        expect(last.top + last.height, `${width}x${height} at ${y}`).toBeGreaterThanOrEqual(y + height);
      }
      expect(worst).toBeLessThanOrEqual(60);
      expect(worst).toBeGreaterThan(0);
    }
  });

  it('covers the viewport when the budget allows', () => {
    const layout = layoutRows(groupByDay(library), 4);
    const y = 50_000;
    const [s, e] = visibleRange(layout.rows, y, 600, 0, 1000);
    expect(layout.rows[s].top).toBeLessThanOrEqual(y);
    expect(layout.rows[e - 1].top + layout.rows[e - 1].height).toBeGreaterThanOrEqual(y + 600);
  });

  it('fits at least two columns on a phone', () => {
    expect(columnsFor(320, 120, 12)).toBe(2);
    expect(columnsFor(1280, 120, 12)).toBe(9);
  });
});
