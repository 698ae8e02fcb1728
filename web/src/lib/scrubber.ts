// Pure date-scrubber logic (unit-tested with Vitest): the whole library's months from GET /photos/months, which of
// them are loaded (scroll there) and which need the timeline re-anchored (GET /photos?before=<end of that month>).

export interface MonthCount { month: string; count: number }

export interface ScrubberEntry { month: string; count: number; top: number | null }

/** The last microsecond of a 'YYYY-MM' month in UTC, as the API's `before` (inclusive) wants it. */
export function endOfMonth(month: string): string {
  const [y, m] = month.split('-').map(Number);
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate(); // day 0 of the next month: this month's last day
  return `${month}-${String(last).padStart(2, '0')}T23:59:59.999999Z`;
}

/** Every month of the library, newest first, with the scroll offset of its header when it is loaded. Months that
 * are loaded but missing from the summary (it was fetched before an upload, or failed) are kept, in order. */
export function scrubberEntries(summary: MonthCount[], loaded: { month: string; top: number }[]): ScrubberEntry[] {
  const tops = new Map(loaded.map((r) => [r.month, r.top]));
  const byMonth = new Map<string, ScrubberEntry>();
  for (const m of summary) byMonth.set(m.month, { month: m.month, count: m.count, top: tops.get(m.month) ?? null });
  for (const r of loaded) if (!byMonth.has(r.month)) byMonth.set(r.month, { month: r.month, count: 0, top: r.top });
  return [...byMonth.values()].sort((a, b) => (a.month < b.month ? 1 : a.month > b.month ? -1 : 0));
}

/** What picking a month does: scroll to it when loaded, else load the timeline starting at its end. The newest
 * month of the library always re-anchors to the unbounded listing (so it also shows photos dated in the future). */
export function pick(entries: ScrubberEntry[], month: string): { scrollTo: number } | { anchor: string | null } {
  const e = entries.find((x) => x.month === month);
  if (e && e.top !== null) return { scrollTo: e.top };
  return { anchor: entries.length && entries[0].month === month ? null : month };
}

/** The month just newer than the newest loaded one, for "Newer…" at the top of an anchored timeline. */
export function newerMonth(entries: ScrubberEntry[], topLoaded: string | undefined): string | null {
  if (!topLoaded) return null;
  const newer = entries.filter((e) => e.month > topLoaded);
  return newer.length ? newer[newer.length - 1].month : null;
}
