import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, feedback, photos, type FeedbackView, type PersonView, type PhotoDetail } from '../api/client';
import { linkClick, navigate } from '../router';

const UNDO_SECONDS = 6;

/** Where the photo was taken, on a plain latitude/longitude grid drawn here: no map tiles are fetched. */
function MiniMap({ lat, lon }: { lat: number; lon: number }) {
  const x = ((lon + 180) / 360) * 180, y = ((90 - lat) / 180) * 90;
  return (
    <svg class="minimap" viewBox="0 0 180 90" role="img" aria-label={`Location ${lat.toFixed(4)}, ${lon.toFixed(4)}`}>
      <rect width="180" height="90" class="sea" />
      {[30, 60, 90, 120, 150].map((gx) => <line key={`x${gx}`} x1={gx} y1="0" x2={gx} y2="90" class="grid" />)}
      {[22.5, 45, 67.5].map((gy) => <line key={`y${gy}`} x1="0" y1={gy} x2="180" y2={gy} class="grid" />)}
      <circle cx={x} cy={y} r="3" class="pin" />
    </svg>
  );
}

interface Correction { view: FeedbackView; label: string }

const VERBS: Partial<Record<FeedbackView['type'], string>> = {
  tag_confirmed: 'Confirmed', tag_rejected: 'Removed', tag_added: 'Added', caption_rejected: 'Rejected the caption',
  face_assigned: 'Moved a face', face_not_person: 'Said a face is not that person',
};

/** The photo's corrections still in effect (newest first), each with its undo. */
export function openCorrections(views: FeedbackView[]): Correction[] {
  return views
    .filter((v) => !v.undone_at && v.type !== 'undo' && VERBS[v.type])
    .map((v) => ({ view: v, label: v.tag ? `${VERBS[v.type]} “${v.tag}”` : VERBS[v.type]! }))
    .reverse();
}

export function PhotoView({ id }: { id: string }) {
  const [photo, setPhoto] = useState<PhotoDetail | null>(null);
  const [error, setError] = useState('');
  const [corrections, setCorrections] = useState<Correction[]>([]);
  const [pendingDelete, setPendingDelete] = useState(0);
  const [newTag, setNewTag] = useState('');
  const [message, setMessage] = useState('');
  const timer = useRef<number | undefined>(undefined);

  const load = async () => {
    feedback.list(id).then((views) => setCorrections(openCorrections(views))).catch(() => { /* no feedback store */ });
    try { setPhoto(await photos.get(id)); setError(''); } catch (e) { setError(e instanceof ApiError && e.status === 404 ? 'This photo does not exist (any more).' : 'Could not load the photo.'); }
  };
  useEffect(() => { load(); return () => clearInterval(timer.current); }, [id]);

  const correct = async (type: 'tag_confirmed' | 'tag_rejected' | 'tag_added', tag: string, label: string) => {
    setMessage('');
    try {
      await feedback.send({ type, tag, photo_id: id, origin: 'photo' });
      setMessage(label);
      await load();
    } catch (e) { setError(e instanceof Error ? e.message : 'The correction was not saved.'); }
  };

  const [people, setPeople] = useState<PersonView[]>([]);
  const loadPeople = () => { if (!people.length) api.get<PersonView[]>('/people').then(setPeople).catch(() => setPeople([])); };
  const faceAction = async (kind: 'move' | 'not-person', faceId: string, personId: string, label: string) => {
    try {
      await api.post(kind === 'move' ? '/faces/{face_id}/move' : '/faces/{face_id}/not-person', { params: { face_id: faceId }, body: { person_id: personId }, retryable: true });
      setMessage(label);
      await load();
    } catch (e) { setError(e instanceof Error ? e.message : 'The correction was not saved.'); }
  };

  const undo = async (c: Correction) => {
    try { await feedback.undo(c.view.feedback_id); setMessage(`Undone: ${c.label}`); await load(); } catch (e) { setError(e instanceof Error ? e.message : 'Undo failed.'); }
  };

  const startDelete = () => {
    let left = UNDO_SECONDS;
    setPendingDelete(left);
    timer.current = window.setInterval(async () => {
      left -= 1;
      setPendingDelete(left);
      if (left <= 0) {
        clearInterval(timer.current);
        try { await photos.remove(id); navigate('/', true); } catch (e) { setPendingDelete(0); setError(e instanceof Error ? e.message : 'Delete failed.'); }
      }
    }, 1000);
  };
  const cancelDelete = () => { clearInterval(timer.current); setPendingDelete(0); };

  if (error && !photo) return <p class="error" role="alert">{error}</p>;
  if (!photo) return <p role="status">Loading…</p>;
  const a = photo.analysis;
  const when = a?.local_taken_at || photo.taken_at;
  const camera = [photo.camera_make, photo.camera_model].filter(Boolean).join(' ');
  return (
    <article class="photo" aria-labelledby="photo-title">
      <p><a href="/" onClick={linkClick}>← Timeline</a></p>
      <div class="photo-grid">
        <figure class="preview">
          <div class="stage">
            {photo.urls?.preview ? <img src={photo.urls.preview} alt={a?.caption || photo.filename} /> : <div class="nothumb">No preview yet</div>}
            {(a?.faces ?? []).map((f) => (
              <div key={f.face_id} class="face-box" data-testid="face-box" aria-hidden="true"
                style={{ left: `${f.box.left * 100}%`, top: `${f.box.top * 100}%`, width: `${f.box.width * 100}%`, height: `${f.box.height * 100}%` }}>
                <span>{f.name || (f.person_id ? 'Unnamed' : 'Unknown')}</span>
              </div>
            ))}
          </div>
        </figure>
        <div class="facts">
          <h2 id="photo-title" data-testid="caption">{a?.caption || photo.filename}</h2>
          <dl>
            <dt>File</dt><dd data-testid="filename">{photo.filename}</dd>
            <dt>Date</dt><dd>{when ? new Date(when).toLocaleString('en-GB', { timeZone: a?.time_zone || 'UTC' }) : 'Unknown'}</dd>
            {a?.place && <><dt>Place</dt><dd>{a.place}</dd></>}
            {camera && <><dt>Camera</dt><dd>{camera}</dd></>}
            {photo.width && <><dt>Size</dt><dd>{photo.width} × {photo.height}</dd></>}
            <dt>Status</dt><dd>{photo.status === 'READY' ? (a ? `Analysed ${a.source === 'local' ? 'on this computer' : 'in the cloud'}` : 'Waiting for analysis') : photo.status.toLowerCase()}</dd>
          </dl>
          {photo.gps && <MiniMap lat={photo.gps.lat} lon={photo.gps.lon} />}

          <section aria-labelledby="tags-title">
            <h3 id="tags-title">Tags</h3>
            <ul class="tags" data-testid="tags">
              {(a?.tags ?? []).map((t) => (
                <li key={t} class="tag">
                  <span>{t}</span>
                  <button type="button" aria-label={`Confirm tag ${t}`} onClick={() => correct('tag_confirmed', t, `Confirmed “${t}”`)}>✓</button>
                  <button type="button" aria-label={`Reject tag ${t}`} onClick={() => correct('tag_rejected', t, `Removed “${t}”`)}>✕</button>
                </li>
              ))}
              {!a?.tags?.length && <li class="muted">No tags yet.</li>}
            </ul>
            {!!a?.suggested_tags?.length && (
              <p class="suggested">Suggested: {a.suggested_tags.map((s) => (
                <button type="button" key={s.tag} class="chip" aria-label={`Add suggested tag ${s.tag}`} onClick={() => correct('tag_added', s.tag, `Added “${s.tag}”`)}>+ {s.tag}</button>
              ))}</p>
            )}
            <form class="inline" onSubmit={(e) => { e.preventDefault(); const t = newTag.trim(); if (t) { correct('tag_added', t, `Added “${t}”`); setNewTag(''); } }}>
              <label>Add a tag <input value={newTag} onInput={(e) => setNewTag((e.currentTarget as HTMLInputElement).value)} maxLength={64} /></label>
              <button type="submit">Add</button>
            </form>
          </section>

          <p role="status" class="muted" data-testid="feedback-message">{message}</p>
          {corrections.length > 0 && (
            <section aria-label="Your corrections" class="corrections">
              {corrections.map((c) => (
                <p key={c.view.feedback_id}>{c.label} <button type="button" onClick={() => undo(c)} aria-label={`Undo: ${c.label}`}>Undo</button></p>
              ))}
            </section>
          )}

          <section aria-labelledby="people-title">
            <h3 id="people-title">People</h3>
            {a?.people?.length ? (
              <ul class="people-list">
                {a.people.map((p) => <li key={p.person_id}><a href={`/people?person=${encodeURIComponent(p.person_id)}`} onClick={linkClick}>{p.name || 'Unnamed person'}</a></li>)}
              </ul>
            ) : <p class="muted">{a ? `${a.face_count} face(s), no named people.` : 'Not analysed yet.'}</p>}
            {!!a?.faces?.length && (
              <ul class="faces" aria-label="Faces in this photo">
                {a.faces.map((f, i) => (
                  <li key={f.face_id}>
                    <span>Face {i + 1}: {f.name || (f.person_id ? 'unnamed person' : 'not grouped')}</span>
                    {f.person_id && <button type="button" onClick={() => faceAction('not-person', f.face_id, f.person_id!, `Face ${i + 1} is not ${f.name || 'that person'}`)}>Not this person</button>}
                    <label>Move to <select onChange={(e) => { const to = (e.currentTarget as HTMLSelectElement).value; if (to) faceAction('move', f.face_id, to, `Moved face ${i + 1}`); }} onFocus={loadPeople}>
                      <option value="">…</option>
                      {people.filter((p) => p.person_id !== f.person_id).map((p) => <option key={p.person_id} value={p.person_id}>{p.name || 'Unnamed person'}</option>)}
                    </select></label>
                  </li>
                ))}
              </ul>
            )}
          </section>

          {!!a?.text?.length && (
            <section aria-labelledby="text-title">
              <h3 id="text-title">Text in the photo</h3>
              <ul data-testid="ocr">{a.text.map((t, i) => <li key={i}>{t}</li>)}</ul>
            </section>
          )}

          <p class="actions">
            {photo.urls?.original && <a class="button" href={photo.urls.original} download={photo.filename}>Download original</a>}
            {pendingDelete > 0
              ? <span role="alert">Deleting in {pendingDelete} s… <button type="button" onClick={cancelDelete}>Undo delete</button></span>
              : <button type="button" class="danger" onClick={startDelete}>Delete</button>}
          </p>
          {error && <p class="error" role="alert">{error}</p>}
        </div>
      </div>
    </article>
  );
}
