import { useState } from 'preact/hooks';
import { ApiError, signIn } from '../api/client';
import { navigate } from '../router';

export function SignIn({ url }: { url: URL }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true); setError('');
    try {
      await signIn(String(form.get('username') || ''), String(form.get('password') || ''));
      const next = url.searchParams.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') && next !== '/signin' ? next : '/', true);
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
