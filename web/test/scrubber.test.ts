import { describe, expect, it } from 'vitest';
import { endOfMonth, newerMonth, pick, scrubberEntries } from '../src/lib/scrubber';

const summary = [{ month: '2024-05', count: 12 }, { month: '2024-02', count: 3 }, { month: '2023-12', count: 40 }];

describe('date scrubber', () => {
  it('ends a month at its last microsecond in UTC, leap years included', () => {
    expect(endOfMonth('2024-02')).toBe('2024-02-29T23:59:59.999999Z');
    expect(endOfMonth('2023-02')).toBe('2023-02-28T23:59:59.999999Z');
    expect(endOfMonth('2023-12')).toBe('2023-12-31T23:59:59.999999Z');
    expect(endOfMonth('2024-04')).toBe('2024-04-30T23:59:59.999999Z');
  });

  it('lists every month of the library with counts, marking the loaded ones with their offset', () => {
    const entries = scrubberEntries(summary, [{ month: '2024-05', top: 0 }]);
    expect(entries).toEqual([
      { month: '2024-05', count: 12, top: 0 },
      { month: '2024-02', count: 3, top: null },
      { month: '2023-12', count: 40, top: null },
    ]);
  });

  it('keeps a loaded month the summary does not know yet, in date order', () => {
    const entries = scrubberEntries(summary, [{ month: '2024-06', top: 0 }, { month: '2024-05', top: 300 }]);
    expect(entries.map((e) => [e.month, e.count])).toEqual([['2024-06', 0], ['2024-05', 12], ['2024-02', 3], ['2023-12', 40]]);
    expect(scrubberEntries([], [{ month: '2024-01', top: 5 }])).toEqual([{ month: '2024-01', count: 0, top: 5 }]);
  });

  it('scrolls to a loaded month and re-anchors at an unloaded one; the newest month means the unbounded listing', () => {
    const entries = scrubberEntries(summary, [{ month: '2024-02', top: 480 }]);
    expect(pick(entries, '2024-02')).toEqual({ scrollTo: 480 });
    expect(pick(entries, '2023-12')).toEqual({ anchor: '2023-12' });
    expect(pick(entries, '2024-05')).toEqual({ anchor: null });
  });

  it('"Newer" steps to the month just newer than the top of what is loaded', () => {
    const entries = scrubberEntries(summary, [{ month: '2023-12', top: 0 }]);
    expect(newerMonth(entries, '2023-12')).toBe('2024-02');
    expect(newerMonth(entries, '2024-02')).toBe('2024-05');
    expect(newerMonth(entries, '2024-05')).toBeNull();
    expect(newerMonth(entries, undefined)).toBeNull();
  });
});
