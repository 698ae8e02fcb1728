import { useState } from 'preact/hooks';
import { ApiError, signIn } from '../api/client';
import type { AppConfig } from '../lib/config';
import { beginSignIn } from '../lib/pkce';
import { navigate } from '../router';

function nextPath(url: URL): string {
  const next = url.searchParams.get('next');
  return next && next.startsWith('/') && !next.startsWith('//') && next !== '/signin' ? next : '/';
}

/** Cloud: one button that sends the browser to the Cognito hosted UI (authorization code + PKCE). */
function HostedSignIn({ config, url, error: initialError }: { config: Extract<AppConfig, { backend: 'aws' }>; url: URL; error: string }) {
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);
  const go = async () => {
    setBusy(true); setError('');
    try {
      location.assign(await beginSignIn(config, sessionStorage, nextPath(url)));
    } catch {
      setError('This browser cannot start a secure sign-in (Web Crypto is unavailable).');
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>Photo Organizer</h1>
      <section aria-describedby="signin-error">
        <h2>Sign in</h2>
        <button type="button" onClick={go} disabled={busy} autoFocus>{busy ? 'Redirecting…' : 'Sign in'}</button>
        <p id="signin-error" class="error" role="alert">{error}</p>
      </section>
    </main>
  );
}

export function SignIn({ url, config = { backend: 'local' }, error: initialError = '' }: { url: URL; config?: AppConfig; error?: string }) {
  if (config.backend === 'aws') return <HostedSignIn config={config} url={url} error={initialError} />;
  return <LocalSignIn url={url} error={initialError} />;
}

/** Local: the form against the local gateway's users (POST /auth/token). */
function LocalSignIn({ url, error: initialError }: { url: URL; error: string }) {
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true); setError('');
    try {
      await signIn(String(form.get('username') || ''), String(form.get('password') || ''));
      navigate(nextPath(url), true);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'The server cannot be reached.');
    } finally { setBusy(false); }
  };
  return (
    <main id="main" class="signin">
      <h1>Photo Organizer</h1>
      <form onSubmit={submit} aria-describedby="signin-error">
        <h2>Sign in</h2>
        <label>Username<input name="username" autoComplete="username" required autoFocus /></label>
        <label>Password<input name="password" type="password" autoComplete="current-password" required /></label>
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
        <p id="signin-error" class="error" role="alert">{error}</p>
      </form>
    </main>
  );
}
