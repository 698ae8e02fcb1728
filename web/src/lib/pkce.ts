// Cloud sign-in: the Cognito hosted UI with the authorization-code flow and PKCE (RFC 7636, S256). Public client,
// no client secret, no implicit flow: the only thing taken from the address bar is `code` + `state` from the query
// string; a token in the URL (fragment or query) is never read.
import type { AwsConfig } from './config';

const VERIFIER_KEY = 'po.pkce.verifier';
const STATE_KEY = 'po.pkce.state';
const NEXT_KEY = 'po.pkce.next';
const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';

export class SignInError extends Error {}

/** Minimal slice of Web Storage used here, so tests can pass a Map-backed one. */
export type KeyValueStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

export function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** `length` characters from the unreserved set, uniformly (rejection sampling: 66 symbols do not divide 256). */
export function randomString(length: number, c: Crypto = crypto): string {
  const limit = 256 - (256 % UNRESERVED.length);
  let out = '';
  const buf = new Uint8Array(length * 2);
  while (out.length < length) {
    c.getRandomValues(buf);
    for (const b of buf) {
      if (b < limit && out.length < length) out += UNRESERVED[b % UNRESERVED.length];
    }
  }
  return out;
}

/** A 64-character code verifier (RFC 7636 allows 43..128). */
export function newVerifier(c: Crypto = crypto): string { return randomString(64, c); }

/** S256 challenge: base64url(SHA-256(ASCII(verifier))), no padding. */
export async function challengeFor(verifier: string, c: Crypto = crypto): Promise<string> {
  const digest = await c.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export function authorizeUrl(cfg: AwsConfig, challenge: string, state: string): string {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: cfg.userPoolClientId,
    redirect_uri: cfg.redirectUri,
    scope: 'openid email profile',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
  });
  return `${cfg.cognitoDomain}/oauth2/authorize?${q.toString()}`;
}

export function logoutUrl(cfg: AwsConfig): string {
  const q = new URLSearchParams({ client_id: cfg.userPoolClientId, logout_uri: cfg.logoutUri });
  return `${cfg.cognitoDomain}/logout?${q.toString()}`;
}

export function tokenRequestBody(cfg: AwsConfig, code: string, verifier: string): string {
  return new URLSearchParams({
    grant_type: 'authorization_code',
    client_id: cfg.userPoolClientId,
    code,
    redirect_uri: cfg.redirectUri,
    code_verifier: verifier,
  }).toString();
}

/**
 * Stores a fresh verifier and state (and where to go afterwards) and returns the hosted-UI URL to send the browser
 * to. The caller does `location.assign(url)`.
 */
export async function beginSignIn(cfg: AwsConfig, store: KeyValueStore, next = '/', c: Crypto = crypto): Promise<string> {
  const verifier = newVerifier(c);
  const state = randomString(32, c);
  store.setItem(VERIFIER_KEY, verifier);
  store.setItem(STATE_KEY, state);
  store.setItem(NEXT_KEY, next.startsWith('/') && !next.startsWith('//') ? next : '/');
  return authorizeUrl(cfg, await challengeFor(verifier, c), state);
}

/** True when the address bar holds an authorization response (code or error, with state) in its query string. */
export function isCallback(url: URL): boolean {
  return url.searchParams.has('state') && (url.searchParams.has('code') || url.searchParams.has('error'));
}

/** The address without the authorization response's parameters (for history.replaceState). */
export function cleanedUrl(url: URL): string {
  const u = new URL(url.href);
  for (const k of ['code', 'state', 'error', 'error_description', 'error_uri']) u.searchParams.delete(k);
  return u.pathname + u.search + u.hash;
}

export interface SignInResult { idToken: string; expiresAt: number; next: string }

/**
 * Finishes the sign-in from the query string of `url`: checks state against the stored one (mismatch: SignInError,
 * no request, nothing stored), exchanges the code with the verifier at the token endpoint, and returns the id token
 * and its expiry. Verifier and state are removed from storage whatever happens: each is good for one try only.
 */
export async function completeSignIn(cfg: AwsConfig, url: URL, store: KeyValueStore, fetchFn: typeof fetch = fetch,
  now: () => number = Date.now): Promise<SignInResult> {
  const verifier = store.getItem(VERIFIER_KEY);
  const expected = store.getItem(STATE_KEY);
  const next = store.getItem(NEXT_KEY) || '/';
  store.removeItem(VERIFIER_KEY); store.removeItem(STATE_KEY); store.removeItem(NEXT_KEY);
  const state = url.searchParams.get('state');
  const code = url.searchParams.get('code');
  if (!expected || !verifier || !state || state !== expected) {
    throw new SignInError('The sign-in response did not match this browser tab. Please sign in again.');
  }
  if (url.searchParams.has('error')) {
    const why = url.searchParams.get('error') === 'access_denied' ? 'Sign-in was cancelled or refused.' : 'Sign-in failed.';
    throw new SignInError(`${why} Please try again.`);
  }
  if (!code) throw new SignInError('Sign-in failed. Please try again.');
  let r: Response;
  try {
    r = await fetchFn(`${cfg.cognitoDomain}/oauth2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: tokenRequestBody(cfg, code, verifier),
      credentials: 'omit',
    });
  } catch { throw new SignInError('The sign-in service cannot be reached.'); }
  if (!r.ok) throw new SignInError('Sign-in failed (the code was refused). Please sign in again.');
  const body = (await r.json()) as { id_token?: unknown; expires_in?: unknown };
  if (typeof body.id_token !== 'string' || !body.id_token) throw new SignInError('Sign-in failed (no token received).');
  const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 3600;
  return { idToken: body.id_token, expiresAt: now() + seconds * 1000, next };
}
