// Pure timeline logic (unit-tested with Vitest): photos grouped by month and day, then laid out as fixed-height
// rows so the timeline can window them.

export interface Dated { photo_id: string; taken_at?: string | null; uploaded_at: string }

export interface DayGroup<T> { day: string; month: string; items: T[] }

/** The calendar day a photo belongs to: when it was taken if known, else when it was uploaded (as written, UTC). */
export function dayOf(p: Dated): string {
  return (p.taken_at || p.uploaded_at).slice(0, 10);
}

/** Groups photos (already in display order) by day, keeping the order; a day seen again later joins its group. */
export function groupByDay<T extends Dated>(photos: T[]): DayGroup<T>[] {
  const groups: DayGroup<T>[] = [];
  const byDay = new Map<string, DayGroup<T>>();
  for (const p of photos) {
    const day = dayOf(p);
    let g = byDay.get(day);
    if (!g) {
      g = { day, month: day.slice(0, 7), items: [] };
      byDay.set(day, g);
      groups.push(g);
    }
    g.items.push(p);
  }
  return groups;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

export function monthLabel(month: string): string {
  const [y, m] = month.split('-');
  return `${MONTHS[Number(m) - 1] ?? m} ${y}`;
}

export function dayLabel(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return day;
  return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
}

export type Row<T> =
  | { kind: 'month'; key: string; month: string; top: number; height: number }
  | { kind: 'day'; key: string; day: string; top: number; height: number }
  | { kind: 'photos'; key: string; items: T[]; first: number; top: number; height: number };

export interface Layout<T> { rows: Row<T>[]; height: number; order: T[] }

export const ROW = { month: 44, day: 32, photos: 132 };

/** Rows of at most `columns` thumbnails under a header per month and per day; `order` is the keyboard order. */
export function layoutRows<T extends Dated>(groups: DayGroup<T>[], columns: number, sizes = ROW): Layout<T> {
  const rows: Row<T>[] = [];
  const order: T[] = [];
  let top = 0;
  let month = '';
  for (const g of groups) {
    if (g.month !== month) {
      month = g.month;
      rows.push({ kind: 'month', key: `m${month}`, month, top, height: sizes.month });
      top += sizes.month;
    }
    rows.push({ kind: 'day', key: `d${g.day}`, day: g.day, top, height: sizes.day });
    top += sizes.day;
    for (let i = 0; i < g.items.length; i += columns) {
      const items = g.items.slice(i, i + columns);
      rows.push({ kind: 'photos', key: `p${g.day}:${i}`, items, first: order.length, top, height: sizes.photos });
      order.push(...items);
      top += sizes.photos;
    }
  }
  return { rows, height: top, order };
}
