import { useEffect, useState } from 'preact/hooks';
import { api, type ConsentView } from '../api/client';

type Erasure = { deleted: Record<string, number>; remaining: Record<string, number> };

/** Whether the erasure deleted the sign-in too (the cloud deletes the Cognito user once nothing blocking is left). */
export function loginDeleted(report: Erasure): boolean {
  return (report.deleted.logins ?? 0) > 0;
}

/** What DELETE /account reports, in words: counts of what went, and what is still being removed. */
export function erasureMessage(report: Erasure): string {
  const list = (counts: Record<string, number>) => Object.entries(counts).filter(([k, n]) => n > 0 && k !== 'logins').map(([k, n]) => `${n} ${k.replace(/_/g, ' ')}`).join(', ');
  const gone = list(report.deleted);
  const left = list(report.remaining);
  if (loginDeleted(report)) {
    // Only what empties itself can remain once the sign-in went: there is no calling again.
    return `Your library and your sign-in are deleted${gone ? ` (${gone})` : ''}.${left ? ` Still being removed, by itself: ${left}.` : ''} You are signed out now.`;
  }
  return `Your library is deleted${gone ? ` (${gone})` : ''}.${left ? ` Still being removed: ${left}; try again in a minute to finish.` : ''}`;
}

export function Settings({ onSignedOut }: { onSignedOut?: () => void } = {}) {
  const [consent, setConsent] = useState<ConsentView | null>(null);
  const [message, setMessage] = useState('');
  useEffect(() => { api.get<ConsentView>('/settings/biometrics').then(setConsent).catch((e) => setMessage(e.message)); }, []);

  const change = async (on: boolean) => {
    if (!on && !confirm('Turn off face grouping? All face data (face positions, face prints and people) is deleted now.')) return;
    try {
      const v = await api.put<ConsentView>('/settings/biometrics', { body: { biometric_consent: on } });
      setConsent(v);
      const gone = v.forgotten ? Object.entries(v.forgotten).map(([k, n]) => `${n} ${k}`).join(', ') : '';
      setMessage(on ? 'Face grouping is on: faces in new and existing photos are grouped into people.' : `Face grouping is off.${gone ? ` Deleted: ${gone}.` : ''}`);
    } catch (e) { setMessage((e as Error).message); }
  };

  const eraseAccount = async () => {
    if (!confirm('Delete your whole library now? This cannot be undone.')) return;
    try {
      const report = await api.del<Erasure>('/account');
      setMessage(erasureMessage(report));
      if (loginDeleted(report) && onSignedOut) {
        alert(erasureMessage(report)); // the page goes with the sign-out: say it before
        onSignedOut();
      }
    } catch (e) { setMessage((e as Error).message); }
  };

  return (
    <section aria-labelledby="settings-title" class="settings">
      <h2 id="settings-title">Settings</h2>
      <fieldset>
        <legend>Face grouping (biometric data)</legend>
        <p>When on, faces in your photos are measured so the same person can be grouped and named. Turning it off deletes every face measurement and the people built from them; your photos, tags and captions stay.</p>
        <label><input type="checkbox" checked={!!consent?.biometric_consent} disabled={!consent} onChange={(e) => change((e.currentTarget as HTMLInputElement).checked)} /> Group faces into people</label>
      </fieldset>
      <fieldset>
        <legend>Delete my account</legend>
        <p>Deletes all your photos, their analysis, faces, people and corrections.</p>
        <button type="button" class="danger" aria-describedby="delete-note" onClick={eraseAccount}>Delete my account</button>
        <p id="delete-note" class="muted small">Everything goes at once and cannot be undone: photos, previews, tags, faces, people, corrections.</p>
      </fieldset>
      <p role="status">{message}</p>
    </section>
  );
}
