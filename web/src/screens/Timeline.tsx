import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { photos, type PhotoSummary } from '../api/client';
import { dayLabel, groupByDay, layoutRows, monthLabel, ROW } from '../lib/grouping';
import { endOfMonth, newerMonth, pick, scrubberEntries, type MonthCount } from '../lib/scrubber';
import { columnsFor, tileFor, visibleRange } from '../lib/windowing';
import { linkClick, navigate } from '../router';

export const MAX_THUMBS = 60;
const GAP = 12, OVERSCAN = 120, TILE = 120;

export function Thumb({ p, index, tabIndex, onFocus, size = TILE }: { p: PhotoSummary; index?: number; tabIndex?: number; onFocus?: () => void; size?: number }) {
  return (
    <a class="thumb" style={size === TILE ? undefined : { width: `${size}px`, height: `${size}px` }} href={`/photo/${encodeURIComponent(p.photo_id)}`} onClick={linkClick} data-index={index} tabIndex={tabIndex} onFocus={onFocus}
      aria-label={`${p.filename}, ${(p.taken_at || p.uploaded_at).slice(0, 10)}`}>
      {p.thumbnail_url ? <img src={p.thumbnail_url} alt="" loading="lazy" decoding="async" width={TILE} height={TILE} /> : <span class="nothumb">{p.status === 'READY' ? 'No preview' : 'Processing'}</span>}
    </a>
  );
}

export function Timeline() {
  const [items, setItems] = useState<PhotoSummary[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined); // undefined: first page not loaded
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState('');
  const [scroll, setScroll] = useState({ top: 0, height: 800, width: 1000 });
  const [focus, setFocus] = useState(0);
  const [summary, setSummary] = useState<MonthCount[]>([]);
  const [anchor, setAnchor] = useState<string | null>(null); // a month picked in the scrubber: listing starts at its end
  const box = useRef<HTMLDivElement>(null);
  const wantFocus = useRef(false);
  const generation = useRef(0); // a page requested before a re-anchor is dropped when it arrives

  const load = async (from: string | null | undefined, at: string | null, fresh: boolean) => {
    const gen = generation.current;
    setLoading(true);
    try {
      const page = await photos.list(from ?? null, 100, at ? endOfMonth(at) : null);
      if (gen !== generation.current) return;
      setItems((all) => (fresh ? page.items : [...all, ...page.items]));
      setCursor(page.next_cursor ?? null);
    } catch (e) { if (gen === generation.current) setError(e instanceof Error ? e.message : 'Could not load photos'); } finally { if (gen === generation.current) setLoading(false); }
  };

  const loadMore = () => { if (!loading && cursor !== null) load(cursor, anchor, false); };

  const reanchor = (month: string | null) => {
    generation.current += 1;
    setAnchor(month); setItems([]); setCursor(undefined); setFocus(0); setError('');
    if (box.current) box.current.scrollTop = 0;
    load(null, month, true);
  };

  useEffect(() => {
    loadMore();
    photos.months().then((r) => setSummary(r.months)).catch(() => { /* the scrubber falls back to the loaded months */ });
  }, []);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setScroll({ top: el.scrollTop, height: el.clientHeight, width: el.clientWidth });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    el.addEventListener('scroll', measure, { passive: true });
    return () => { ro.disconnect(); el.removeEventListener('scroll', measure); };
  }, []);

  const tile = tileFor(scroll.width - 16, scroll.height, OVERSCAN, MAX_THUMBS, GAP);
  const columns = columnsFor(scroll.width - 16, tile, GAP);
  const layout = useMemo(() => layoutRows(groupByDay(items), columns, { ...ROW, photos: tile + GAP }), [items, columns, tile]);
  const [start, end] = visibleRange(layout.rows, scroll.top, scroll.height, OVERSCAN, MAX_THUMBS);
  const months = useMemo(() => layout.rows.filter((r) => r.kind === 'month'), [layout]);
  const entries = useMemo(() => scrubberEntries(summary, months), [summary, months]);
  const newer = anchor ? newerMonth(entries, months[0]?.month) : null;
  const jump = (month: string) => {
    const action = pick(entries, month);
    if ('scrollTo' in action) { if (box.current) box.current.scrollTop = action.scrollTo; } else reanchor(action.anchor);
  };

  // Infinite scroll: the next page is fetched when the window nears the end of what is loaded.
  useEffect(() => {
    if (cursor && !loading && scroll.top + scroll.height * 3 > layout.height) loadMore();
  }, [scroll.top, scroll.height, layout.height, cursor, loading]);

  const rowOf = (index: number) => layout.rows.find((r) => r.kind === 'photos' && index >= r.first && index < r.first + r.items.length);

  const moveTo = (index: number) => {
    const i = Math.max(0, Math.min(layout.order.length - 1, index));
    setFocus(i);
    const row = rowOf(i);
    const el = box.current;
    if (row && el) {
      if (row.top < el.scrollTop) el.scrollTop = row.top - ROW.day;
      else if (row.top + row.height > el.scrollTop + el.clientHeight) el.scrollTop = row.top + row.height - el.clientHeight;
    }
    wantFocus.current = true;
  };

  useEffect(() => {
    if (!wantFocus.current) return;
    const el = box.current?.querySelector<HTMLElement>(`[data-index="${focus}"]`);
    if (el) { el.focus({ preventScroll: true }); wantFocus.current = false; }
  });

  const onKey = (e: KeyboardEvent) => {
    const step: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns, PageDown: columns * 4, PageUp: -columns * 4 };
    if (e.key in step) { e.preventDefault(); moveTo(focus + step[e.key]); }
    else if (e.key === 'Home') { e.preventDefault(); moveTo(0); }
    else if (e.key === 'End') { e.preventDefault(); moveTo(layout.order.length - 1); }
    else if (e.key === 'Enter' && layout.order[focus]) { e.preventDefault(); navigate(`/photo/${encodeURIComponent(layout.order[focus].photo_id)}`); }
  };

  const currentMonth = months.filter((m) => m.top <= scroll.top + 1).pop()?.month ?? months[0]?.month;

  return (
    <section class="timeline" aria-labelledby="timeline-title">
      <div class="timeline-head">
        <h2 id="timeline-title">Timeline</h2>
        <p class="muted" role="status" data-testid="photo-count">{items.length}{cursor ? '+' : ''} photos{loading ? ' · loading…' : ''}</p>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      {cursor === null && items.length === 0 && <p>No photos yet. <a href="/upload" onClick={linkClick}>Upload some</a>.</p>}
      <div class="timeline-body">
        <div class="scroller" ref={box} onKeyDown={onKey} role="grid" aria-label="Photos by date" aria-rowcount={layout.rows.length} data-testid="timeline-scroller">
          <div class="spacer" style={{ height: `${layout.height}px` }}>
            {layout.rows.slice(start, end).map((r) => (
              <div key={r.key} class={`row ${r.kind}`} role="row" style={{ transform: `translateY(${r.top}px)`, height: `${r.height}px` }}>
                {r.kind === 'month' && <h3 role="rowheader">{monthLabel(r.month)}</h3>}
                {r.kind === 'day' && <h4 role="rowheader">{dayLabel(r.day)}</h4>}
                {r.kind === 'photos' && r.items.map((p, k) => (
                  <span role="gridcell" key={p.photo_id}>
                    <Thumb p={p} size={tile} index={r.first + k} tabIndex={r.first + k === focus ? 0 : -1} onFocus={() => setFocus(r.first + k)} />
                  </span>
                ))}
              </div>
            ))}
          </div>
        </div>
        {entries.length > 1 && (
          <nav class="scrubber" aria-label="Jump to a month" data-testid="scrubber">
            {anchor && <button type="button" onClick={() => reanchor(null)}>Newest</button>}
            {newer && <button type="button" onClick={() => reanchor(newer)}>Newer…</button>}
            {entries.map((m) => {
              const label = m.month === currentMonth ? monthLabel(m.month) : `${monthLabel(m.month).slice(0, 3)} ${m.month.slice(0, 4)}`;
              return (
                <button type="button" key={m.month} aria-current={m.month === currentMonth ? 'true' : undefined}
                  aria-label={m.count ? `${label}, ${m.count} photo${m.count === 1 ? '' : 's'}` : label}
                  onClick={() => jump(m.month)}>
                  {label}{m.count > 0 && <span class="count" aria-hidden="true"> {m.count}</span>}
                </button>
              );
            })}
            {cursor && <button type="button" onClick={() => loadMore()} disabled={loading}>Older…</button>}
          </nav>
        )}
      </div>
    </section>
  );
}
