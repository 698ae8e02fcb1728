import { describe, expect, it } from 'vitest';
import { dayOf, groupByDay, layoutRows, monthLabel, ROW } from '../src/lib/grouping';

const p = (id: string, taken: string | null, uploaded = '2024-01-01T00:00:00Z') => ({ photo_id: id, taken_at: taken, uploaded_at: uploaded });

describe('grouping by day', () => {
  it('uses the taken date, else the upload date', () => {
    expect(dayOf(p('a', '2023-07-04T10:00:00Z'))).toBe('2023-07-04');
    expect(dayOf(p('b', null, '2024-02-29T23:59:00Z'))).toBe('2024-02-29');
  });

  it('keeps display order and joins a day seen again', () => {
    const groups = groupByDay([p('1', '2023-07-04T10:00:00Z'), p('2', '2023-07-03T09:00:00Z'), p('3', '2023-07-04T08:00:00Z')]);
    expect(groups.map((g) => [g.day, g.items.map((i) => i.photo_id)])).toEqual([['2023-07-04', ['1', '3']], ['2023-07-03', ['2']]]);
    expect(groups[0].month).toBe('2023-07');
  });

  it('lays out a month header, day headers and rows of at most `columns` thumbnails', () => {
    const photos = [...Array(5)].map((_, i) => p(`a${i}`, '2023-07-04T10:00:00Z')).concat([p('b', '2023-06-30T00:00:00Z')]);
    const layout = layoutRows(groupByDay(photos), 2);
    expect(layout.rows.map((r) => r.kind)).toEqual(['month', 'day', 'photos', 'photos', 'photos', 'month', 'day', 'photos']);
    expect(layout.order.map((o) => o.photo_id)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'b']);
    const last = layout.rows[layout.rows.length - 1];
    expect(last.top + last.height).toBe(layout.height);
    expect(layout.height).toBe(2 * ROW.month + 2 * ROW.day + 4 * ROW.photos);
    expect(monthLabel('2023-07')).toBe('July 2023');
  });
});
