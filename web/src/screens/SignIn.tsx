import { useEffect, useState } from 'preact/hooks';
import { ApiError, redeemSignInLink, signIn, signInLinkUser } from '../api/client';
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

/** The code of a sign-in link (`#code=…`), taken out of the address bar at once so it is not kept in history. */
function takeLinkCode(): string {
  const code = new URLSearchParams(location.hash.slice(1)).get('code') || '';
  if (location.hash) history.replaceState(history.state, '', location.pathname + location.search);
  return code;
}

/**
 * A sign-in link (`make demo` opens one) signs in only after its person confirms the account it names: a link
 * sent by someone else must not silently put a victim into the sender's library.
 */
function LinkSignIn({ code, url, onDone }: { code: string; url: URL; onDone: (error: string) => void }) {
  const [username, setUsername] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    signInLinkUser(code).then(setUsername, (err) => onDone(err instanceof ApiError ? err.message : 'The server cannot be reached.'));
  }, [code]);
  const go = async () => {
    setBusy(true);
    try {
      await redeemSignInLink(code);
      navigate(nextPath(url), true);
    } catch (err) {
      onDone(err instanceof ApiError ? err.message : 'The server cannot be reached.');
    }
  };
  return (
    <main id="main" class="signin">
      <h1>Photo Organizer</h1>
      <section aria-labelledby="link-title">
        <h2 id="link-title">Sign in with a link</h2>
        {username ? (
          <>
            <p>This link signs you in as <strong data-testid="link-user">{username}</strong>. Is that your account?</p>
            <button type="button" onClick={go} disabled={busy} autoFocus>{busy ? 'Signing in…' : `Continue as ${username}`}</button>{' '}
            <button type="button" class="link" onClick={() => onDone('')}>Use another account</button>
          </>
        ) : <p role="status">Checking the link…</p>}
      </section>
    </main>
  );
}

/** Local: the form against the local gateway's users (POST /auth/token), or a sign-in link's confirmation. */
function LocalSignIn({ url, error: initialError }: { url: URL; error: string }) {
  const [code, setCode] = useState(takeLinkCode);
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);
  if (code) return <LinkSignIn code={code} url={url} onDone={(e) => { setCode(''); setError(e); }} />;
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
