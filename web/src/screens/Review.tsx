import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, feedback, photos, type ReviewItem, type ReviewPage } from '../api/client';

export function Review() {
  const [items, setItems] = useState<ReviewItem[]>([]);
  const [remaining, setRemaining] = useState(0);
  const [thumb, setThumb] = useState<string | null>(null);
  const [message, setMessage] = useState('');
  const [unavailable, setUnavailable] = useState(false);
  const [answered, setAnswered] = useState(0);

  const load = async () => {
    try { const page = await api.get<ReviewPage>('/review', { query: { limit: 20 } }); setItems(page.items); setRemaining(page.remaining); }
    catch (e) { if (e instanceof ApiError && e.status >= 500) setUnavailable(true); else setMessage((e as Error).message); }
  };
  useEffect(() => { load(); }, []);
  const item = items[0];
  useEffect(() => { setThumb(null); if (item) photos.get(item.photo_id).then((p) => setThumb(p.urls?.preview ?? p.thumbnail_url ?? null)).catch(() => setThumb(null)); }, [item?.photo_id]);

  const answer = async (choice: 'yes' | 'no' | 'skip') => {
    if (!item) return;
    try {
      if (choice !== 'skip') await feedback.send(item.answers[choice]);
      setAnswered((n) => n + 1);
      const rest = items.slice(1);
      setItems(rest);
      if (!rest.length) load();
    } catch (e) { setMessage((e as Error).message); }
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.target instanceof HTMLInputElement || e.metaKey || e.ctrlKey || e.altKey) return;
      const k = e.key.toLowerCase();
      if (k === 'y') answer('yes'); else if (k === 'n') answer('no'); else if (k === 's' || k === ' ') { e.preventDefault(); answer('skip'); }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  });

  if (unavailable) return <section><h2>Review</h2><p>The review queue is not available on this server.</p></section>;
  return (
    <section aria-labelledby="review-title" class="review">
      <h2 id="review-title">Review</h2>
      <p class="muted">Answer with one key: <kbd>Y</kbd> yes, <kbd>N</kbd> no, <kbd>S</kbd> skip. {answered} answered{remaining ? `, ${remaining} waiting` : ''}.</p>
      {item ? (
        <div class="review-card" data-testid="review-item">
          {thumb ? <img src={thumb} alt="The photo in question" /> : <div class="nothumb">…</div>}
          <p class="question">{item.question}</p>
          <p class="muted small">{Math.round(item.confidence * 100)}% sure · from {item.source}</p>
          <p>
            <button type="button" onClick={() => answer('yes')} aria-keyshortcuts="y">Yes (Y)</button>
            <button type="button" onClick={() => answer('no')} aria-keyshortcuts="n">No (N)</button>
            <button type="button" onClick={() => answer('skip')} aria-keyshortcuts="s">Skip (S)</button>
          </p>
        </div>
      ) : <p>Nothing to review right now.</p>}
      <p role="status">{message}</p>
    </section>
  );
}
