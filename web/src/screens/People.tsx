import { useEffect, useState } from 'preact/hooks';
import { api, photos, type PersonView, type PhotoPage } from '../api/client';
import { navigate } from '../router';
import { Thumb } from './Timeline';

function Cover({ photoId }: { photoId?: string | null }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => { if (photoId) photos.get(photoId).then((p) => setSrc(p.thumbnail_url ?? null)).catch(() => setSrc(null)); }, [photoId]);
  return src ? <img class="cover" src={src} alt="" loading="lazy" width={96} height={96} /> : <span class="cover nothumb" aria-hidden="true">?</span>;
}

function PersonPhotos({ person }: { person: PersonView }) {
  const [page, setPage] = useState<PhotoPage | null>(null);
  useEffect(() => { api.get<PhotoPage>('/people/{person_id}/photos', { params: { person_id: person.person_id } }).then(setPage).catch(() => setPage({ items: [] })); }, [person.person_id]);
  return (
    <section aria-labelledby="person-photos">
      <h3 id="person-photos">Photos of {person.name || 'this unnamed person'}</h3>
      <div class="thumbs">{page?.items.map((p) => <Thumb key={p.photo_id} p={p} />)}</div>
    </section>
  );
}

export function People({ url }: { url: URL }) {
  const [people, setPeople] = useState<PersonView[]>([]);
  const [showHidden, setShowHidden] = useState(false);
  const [selected, setSelected] = useState<string[]>([]);
  const [editing, setEditing] = useState<string | null>(null);
  const [message, setMessage] = useState('');
  const open = url.searchParams.get('person');

  const load = () => api.get<PersonView[]>('/people', { query: { include_hidden: showHidden } }).then(setPeople).catch((e) => setMessage(e.message));
  useEffect(() => { load(); }, [showHidden]);

  const rename = async (p: PersonView, name: string) => {
    setEditing(null);
    const body = name.trim() ? { name: name.trim() } : { clear_name: true };
    try { await api.patch('/people/{person_id}', { params: { person_id: p.person_id }, body }); setMessage(name.trim() ? `Named “${name.trim()}”.` : 'Name cleared.'); load(); } catch (e) { setMessage((e as Error).message); }
  };
  const hide = async (p: PersonView) => {
    try { await api.patch('/people/{person_id}', { params: { person_id: p.person_id }, body: { hidden: !p.hidden } }); load(); } catch (e) { setMessage((e as Error).message); }
  };
  const merge = async () => {
    const [target, ...sources] = selected;
    try {
      for (const s of sources) await api.post('/people/{person_id}/merge', { params: { person_id: target }, body: { source_person_id: s } });
      setMessage(`Merged ${sources.length + 1} people into one.`); setSelected([]); load();
    } catch (e) { setMessage((e as Error).message); }
  };
  const toggle = (id: string) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));
  const person = people.find((p) => p.person_id === open);

  return (
    <section aria-labelledby="people-title">
      <h2 id="people-title">People</h2>
      <p class="toolbar">
        <label><input type="checkbox" checked={showHidden} onChange={(e) => setShowHidden((e.currentTarget as HTMLInputElement).checked)} /> Show hidden people</label>
        <button type="button" disabled={selected.length < 2} onClick={merge}>Merge selected ({selected.length})</button>
      </p>
      <p role="status" class="muted">{message}</p>
      {!people.length && <p class="muted">No people yet: faces are grouped after analysis, when biometric grouping is on in Settings.</p>}
      <ul class="people-grid">
        {people.map((p) => (
          <li key={p.person_id} class={`person${p.hidden ? ' hidden-person' : ''}`} data-person-id={p.person_id}>
            <button type="button" class="cover-button" aria-label={`Show photos of ${p.name || 'unnamed person'}`} onClick={() => navigate(`/people?person=${encodeURIComponent(p.person_id)}`)}>
              <Cover photoId={p.cover_photo_id} />
            </button>
            {editing === p.person_id ? (
              <form onSubmit={(e) => { e.preventDefault(); rename(p, String(new FormData(e.currentTarget as HTMLFormElement).get('name') || '')); }}>
                <label class="visually-hidden" for={`name-${p.person_id}`}>Name</label>
                <input id={`name-${p.person_id}`} name="name" defaultValue={p.name ?? ''} maxLength={100} autoFocus />
                <button type="submit">Save</button>
              </form>
            ) : (
              <span class="person-name">{p.name || 'Unnamed'}</span>
            )}
            <span class="muted small">{p.photo_count} photos · {p.face_count} faces{p.hidden ? ' · hidden' : ''}</span>
            <span class="person-actions">
              <label><input type="checkbox" checked={selected.includes(p.person_id)} onChange={() => toggle(p.person_id)} aria-label={`Select ${p.name || 'unnamed person'} for merging`} /> select</label>
              <button type="button" onClick={() => setEditing(p.person_id)} aria-label={`Rename ${p.name || 'unnamed person'}`}>{p.name ? 'Rename' : 'Name'}</button>
              <button type="button" onClick={() => hide(p)}>{p.hidden ? 'Unhide' : 'Hide'}</button>
            </span>
          </li>
        ))}
      </ul>
      <p class="muted small">Move a single face, or say it is not this person, from the photo's page (its face boxes); merge moves all of a person's faces.</p>
      {person && <PersonPhotos person={person} />}
    </section>
  );
}
