import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type Chip, type FacetView, type SearchResponse } from '../api/client';
import { navigate } from '../router';
import { Thumb } from './Timeline';

// Facet name → the /search filter it sets. Facets the API adds later are shown but not clickable until mapped.
const FACET_PARAM: Record<string, 'tag' | 'person' | 'place' | 'camera'> = { tags: 'tag', people: 'person', places: 'place', cameras: 'camera', tag: 'tag', person: 'person', place: 'place', camera: 'camera' };
const FILTERS = ['tag', 'person', 'place', 'camera'] as const;

/** The query without a chip's words: removing a chip asks the same question without that part. */
export function withoutChip(q: string, chip: Chip): string {
  let out = q;
  for (const phrase of [chip.display, chip.value]) {
    if (!phrase) continue;
    const escaped = phrase.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const next = out.replace(new RegExp(`(^|\\s)(in |with |at |from )?${escaped}(?=\\s|$)`, 'i'), ' ');
    if (next !== out) { out = next; break; }
  }
  return out.replace(/\s+/g, ' ').trim();
}

function matchedBecause(h: SearchResponse['items'][number]): string {
  if (h.semantic_only) return 'similar in meaning';
  return (h.matched ?? []).map((m) => (m.terms?.length ? `${m.field}: ${m.terms.join(', ')}` : m.field)).join(' · ');
}

export function Search({ url }: { url: URL }) {
  const q = url.searchParams.get('q') ?? '';
  const [text, setText] = useState(q);
  const [res, setRes] = useState<SearchResponse | null>(null);
  const [error, setError] = useState('');
  const [suggestions, setSuggestions] = useState<{ kind: string; f: FacetView }[]>([]);
  const timer = useRef<number | undefined>(undefined);
  const filterKey = FILTERS.map((f) => url.searchParams.getAll(f).join('\u0001')).join('\u0002');

  const setParams = (change: (p: URLSearchParams) => void) => {
    const p = new URLSearchParams(url.search);
    change(p);
    navigate(`/search?${p.toString()}`, true);
  };

  useEffect(() => {
    setText(q);
    const filters: Record<string, string[]> = {};
    for (const f of FILTERS) { const v = url.searchParams.getAll(f); if (v.length) filters[f] = v; }
    if (!q && !Object.keys(filters).length) { setRes(null); return; }
    let stale = false;
    api.get<SearchResponse>('/search', { query: { q, limit: 60, ...filters } })
      .then((r) => { if (!stale) { setRes(r); setError(''); } })
      .catch((e) => { if (!stale) setError(e instanceof Error ? e.message : 'Search failed'); });
    return () => { stale = true; };
  }, [q, filterKey]);

  const onInput = (value: string) => {
    setText(value);
    clearTimeout(timer.current);
    timer.current = window.setTimeout(async () => {
      const word = value.trim().split(/\s+/).pop() ?? '';
      if (word.length < 2) { setSuggestions([]); return; }
      try {
        const found = await api.get<Record<string, FacetView[]>>('/search/suggest', { query: { prefix: word } });
        setSuggestions(Object.entries(found).flatMap(([kind, list]) => list.map((f) => ({ kind, f }))).slice(0, 8));
      } catch { setSuggestions([]); }
    }, 200);
  };

  const submit = (value: string) => { setSuggestions([]); setParams((p) => { if (value.trim()) p.set('q', value.trim()); else p.delete('q'); }); };

  const active = FILTERS.flatMap((f) => url.searchParams.getAll(f).map((v) => ({ f, v })));

  return (
    <section aria-labelledby="search-title">
      <h2 id="search-title">Search</h2>
      <form role="search" onSubmit={(e) => { e.preventDefault(); submit(text); }}>
        <label for="q" class="visually-hidden">Search your photos</label>
        <input id="q" type="search" value={text} list="search-suggestions" autoComplete="off" autoFocus
          placeholder="beach with Ana in Lisbon 2023, dogs last summer, receipts…" onInput={(e) => onInput((e.currentTarget as HTMLInputElement).value)} />
        <datalist id="search-suggestions" data-testid="suggestions">
          {suggestions.map(({ kind, f }) => {
            const words = text.trim().split(/\s+/); words.pop();
            return <option key={`${kind}${f.value}`} value={[...words, f.label || f.value].join(' ')}>{`${kind}: ${f.label || f.value} (${f.count})`}</option>;
          })}
        </datalist>
        <button type="submit">Search</button>
      </form>
      {(res?.chips?.length || active.length) ? (
        <p class="chips" aria-label="How your search was understood">
          {res?.chips?.map((c) => (
            <span class="chip" key={`${c.kind}:${c.value}`} data-testid="chip">
              <span>{c.kind}: {c.display}{c.relaxed ? ' (optional: nothing matched every part)' : ''}</span>
              <button type="button" aria-label={`Remove ${c.kind} ${c.display}`} onClick={() => submit(withoutChip(q, c))}>×</button>
            </span>
          ))}
          {active.map(({ f, v }) => (
            <span class="chip filter" key={`${f}=${v}`}>
              <span>{f}: {v}</span>
              <button type="button" aria-label={`Remove filter ${f} ${v}`} onClick={() => setParams((p) => { const rest = p.getAll(f).filter((x) => x !== v); p.delete(f); rest.forEach((x) => p.append(f, x)); })}>×</button>
            </span>
          ))}
        </p>
      ) : null}
      {error && <p class="error" role="alert">{error}</p>}
      {res && (
        <div class="search-body">
          <aside class="facets" aria-label="Filters">
            {Object.entries(res.facets ?? {}).filter(([, list]) => list.length).map(([name, list]) => (
              <fieldset key={name}>
                <legend>{name}</legend>
                {list.slice(0, 12).map((f) => {
                  const param = FACET_PARAM[name];
                  return param
                    ? <button type="button" class="facet" key={f.value} onClick={() => setParams((p) => { if (!p.getAll(param).includes(f.value)) p.append(param, f.value); })}>{f.label || f.value} <span class="muted">{f.count}</span></button>
                    : <span class="facet" key={f.value}>{f.label || f.value} <span class="muted">{f.count}</span></span>;
                })}
              </fieldset>
            ))}
          </aside>
          <div>
            <p role="status" data-testid="search-total">{res.total} found{res.semantic === 'degraded' ? ' (meaning search is unavailable: words only)' : ''}{res.meaning === 'added' ? ' (some only by meaning, after the exact matches)' : ''}</p>
            <ul class="hits">
              {res.items.map((h) => (
                <li key={h.photo_id} class="hit" data-photo-id={h.photo_id}>
                  <Thumb p={h} />
                  <span class="name">{h.filename}</span>
                  <span class="why">Matched because {matchedBecause(h)}</span>
                </li>
              ))}
            </ul>
          </div>
        </div>
      )}
    </section>
  );
}
