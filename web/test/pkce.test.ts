import { describe, expect, it, vi } from 'vitest';
import { LOCAL, loadConfig, parseConfig, ConfigError, type AwsConfig } from '../src/lib/config';
import {
  authorizeUrl, base64url, beginSignIn, challengeFor, cleanedUrl, completeSignIn, isCallback, logoutUrl,
  newVerifier, SignInError, tokenRequestBody, type KeyValueStore,
} from '../src/lib/pkce';

const CFG: AwsConfig = {
  backend: 'aws',
  apiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
  region: 'eu-west-1',
  userPoolClientId: 'client123',
  cognitoDomain: 'https://photos-demo.auth.eu-west-1.amazoncognito.com',
  redirectUri: 'https://d111.cloudfront.net/',
  logoutUri: 'https://d111.cloudfront.net/',
};

class MemStore implements KeyValueStore {
  m = new Map<string, string>();
  getItem(k: string) { return this.m.get(k) ?? null; }
  setItem(k: string, v: string) { this.m.set(k, v); }
  removeItem(k: string) { this.m.delete(k); }
}

function tokenResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

describe('PKCE S256', () => {
  it('gives the RFC 7636 appendix B challenge for its verifier', async () => {
    // Appendix B: the 32 octets below base64url-encode to the verifier, whose S256 challenge is the one printed there.
    const octets = [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
      22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121];
    expect(base64url(new Uint8Array(octets))).toBe('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk');
    expect(await challengeFor('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('encodes base64url without padding', () => {
    expect(base64url(new Uint8Array([0xfb, 0xff]))).toBe('-_8');
    expect(base64url(new Uint8Array([0xff, 0xfe, 0xfd]))).toBe('__79');
  });

  it('makes 64-character verifiers from the unreserved set, different each time', () => {
    const a = newVerifier(), b = newVerifier();
    expect(a).toMatch(/^[A-Za-z0-9\-._~]{64}$/);
    expect(b).toMatch(/^[A-Za-z0-9\-._~]{64}$/);
    expect(a).not.toBe(b);
  });
});

describe('authorize and logout URLs', () => {
  it('asks for the code flow with the S256 challenge, the state and the configured client and redirect', () => {
    const u = new URL(authorizeUrl(CFG, 'CHALLENGE', 'STATE'));
    expect(u.origin + u.pathname).toBe('https://photos-demo.auth.eu-west-1.amazoncognito.com/oauth2/authorize');
    expect(Object.fromEntries(u.searchParams)).toEqual({
      response_type: 'code', client_id: 'client123', redirect_uri: 'https://d111.cloudfront.net/',
      scope: 'openid email profile', code_challenge: 'CHALLENGE', code_challenge_method: 'S256', state: 'STATE',
    });
    expect(u.search).toContain('scope=openid+email+profile');
  });

  it('stores verifier and state before redirecting, and the challenge is the verifier\'s', async () => {
    const store = new MemStore();
    const u = new URL(await beginSignIn(CFG, store, '/search?q=beach'));
    const verifier = store.getItem('po.pkce.verifier')!;
    expect(verifier).toMatch(/^[A-Za-z0-9\-._~]{64}$/);
    expect(u.searchParams.get('state')).toBe(store.getItem('po.pkce.state'));
    expect(u.searchParams.get('state')!.length).toBeGreaterThanOrEqual(32);
    expect(u.searchParams.get('code_challenge')).toBe(await challengeFor(verifier));
    expect(u.searchParams.has('code_verifier')).toBe(false);
    expect(store.getItem('po.pkce.next')).toBe('/search?q=beach');
  });

  it('never stores an off-site path to return to', async () => {
    const store = new MemStore();
    await beginSignIn(CFG, store, '//evil.example/');
    expect(store.getItem('po.pkce.next')).toBe('/');
  });

  it('signs out at the hosted UI with the client id and the logout URI', () => {
    const u = new URL(logoutUrl(CFG));
    expect(u.origin + u.pathname).toBe('https://photos-demo.auth.eu-west-1.amazoncognito.com/logout');
    expect(Object.fromEntries(u.searchParams)).toEqual({ client_id: 'client123', logout_uri: 'https://d111.cloudfront.net/' });
  });
});

describe('finishing the sign-in', () => {
  it('builds the form-encoded token request with code, verifier and redirect URI, and no secret', () => {
    const body = new URLSearchParams(tokenRequestBody(CFG, 'the-code', 'the-verifier'));
    expect(Object.fromEntries(body)).toEqual({
      grant_type: 'authorization_code', client_id: 'client123', code: 'the-code',
      redirect_uri: 'https://d111.cloudfront.net/', code_verifier: 'the-verifier',
    });
  });

  it('exchanges the code at the token endpoint and returns the id token with its expiry; verifier cleared', async () => {
    const store = new MemStore();
    const state = new URL(await beginSignIn(CFG, store, '/people')).searchParams.get('state')!;
    const verifier = store.getItem('po.pkce.verifier')!;
    const fetchFn = vi.fn(async () => tokenResponse({ id_token: 'ID.TOKEN.X', access_token: 'A', expires_in: 3600, token_type: 'Bearer' }));
    const r = await completeSignIn(CFG, new URL(`https://d111.cloudfront.net/?code=abc&state=${state}`), store, fetchFn as unknown as typeof fetch, () => 1_000);
    expect(r).toEqual({ idToken: 'ID.TOKEN.X', expiresAt: 1_000 + 3_600_000, next: '/people' });
    expect(fetchFn).toHaveBeenCalledTimes(1);
    const [endpoint, init] = fetchFn.mock.calls[0] as unknown as [string, RequestInit];
    expect(endpoint).toBe('https://photos-demo.auth.eu-west-1.amazoncognito.com/oauth2/token');
    expect(init.method).toBe('POST');
    expect((init.headers as Record<string, string>)['Content-Type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(init.body as string))).toEqual({
      grant_type: 'authorization_code', client_id: 'client123', code: 'abc',
      redirect_uri: 'https://d111.cloudfront.net/', code_verifier: verifier,
    });
    expect(store.m.size).toBe(0);
  });

  it('refuses a state that is not the stored one: no request sent, nothing kept', async () => {
    const store = new MemStore();
    await beginSignIn(CFG, store);
    const fetchFn = vi.fn();
    await expect(completeSignIn(CFG, new URL('https://d111.cloudfront.net/?code=abc&state=forged'), store, fetchFn as unknown as typeof fetch))
      .rejects.toBeInstanceOf(SignInError);
    expect(fetchFn).not.toHaveBeenCalled();
    expect(store.m.size).toBe(0);
  });

  it('refuses a callback when this tab never started a sign-in', async () => {
    const fetchFn = vi.fn();
    await expect(completeSignIn(CFG, new URL('https://d111.cloudfront.net/?code=abc&state=s'), new MemStore(), fetchFn as unknown as typeof fetch))
      .rejects.toBeInstanceOf(SignInError);
    expect(fetchFn).not.toHaveBeenCalled();
  });

  it('reports a refused code (token endpoint 400) as a sign-in error', async () => {
    const store = new MemStore();
    const state = new URL(await beginSignIn(CFG, store)).searchParams.get('state')!;
    const fetchFn = vi.fn(async () => tokenResponse({ error: 'invalid_grant' }, 400));
    await expect(completeSignIn(CFG, new URL(`https://d111.cloudfront.net/?code=old&state=${state}`), store, fetchFn as unknown as typeof fetch))
      .rejects.toThrow(/refused/);
  });

  it('reports the hosted UI\'s error answer without calling the token endpoint', async () => {
    const store = new MemStore();
    const state = new URL(await beginSignIn(CFG, store)).searchParams.get('state')!;
    const fetchFn = vi.fn();
    await expect(completeSignIn(CFG, new URL(`https://d111.cloudfront.net/?error=access_denied&state=${state}`), store, fetchFn as unknown as typeof fetch))
      .rejects.toThrow(/cancelled/);
    expect(fetchFn).not.toHaveBeenCalled();
  });

  it('never takes a token from the URL fragment (implicit-flow answers are ignored)', async () => {
    const implicit = new URL('https://d111.cloudfront.net/#id_token=EVIL&access_token=EVIL&state=s&token_type=Bearer');
    expect(isCallback(implicit)).toBe(false);
    const store = new MemStore();
    const state = new URL(await beginSignIn(CFG, store)).searchParams.get('state')!;
    // a fragment token next to a real code answer: the returned token is the token endpoint's, not the fragment's
    const fetchFn = vi.fn(async () => tokenResponse({ id_token: 'FROM.ENDPOINT', expires_in: 60 }));
    const r = await completeSignIn(CFG, new URL(`https://d111.cloudfront.net/?code=c&state=${state}#id_token=EVIL`), store, fetchFn as unknown as typeof fetch);
    expect(r.idToken).toBe('FROM.ENDPOINT');
    // and a token in the query string is not a callback either
    expect(isCallback(new URL('https://d111.cloudfront.net/?id_token=EVIL'))).toBe(false);
  });

  it('recognises the code answer and strips it from the address', () => {
    const u = new URL('https://d111.cloudfront.net/?code=abc&state=s&keep=1');
    expect(isCallback(u)).toBe(true);
    expect(cleanedUrl(u)).toBe('/?keep=1');
    expect(cleanedUrl(new URL('https://d111.cloudfront.net/?code=abc&state=s'))).toBe('/');
  });
});

describe('config.json', () => {
  it('is local when absent, HTML (the SPA fallback), or not the aws backend', () => {
    expect(parseConfig('<!doctype html><html></html>')).toEqual(LOCAL);
    expect(parseConfig('')).toEqual(LOCAL);
    expect(parseConfig('{"backend": "local"}')).toEqual(LOCAL);
    expect(parseConfig('null')).toEqual(LOCAL);
    expect(parseConfig('[1]')).toEqual(LOCAL);
  });

  it('reads the WebStack\'s aws config', () => {
    expect(parseConfig(JSON.stringify({ ...CFG, apiUrl: `${CFG.apiUrl}/`, cognitoDomain: `${CFG.cognitoDomain}/` }))).toEqual(CFG);
  });

  it('refuses an aws config with a missing field or a non-https URL', () => {
    const { userPoolClientId: _omit, ...missing } = CFG;
    expect(() => parseConfig(JSON.stringify(missing))).toThrow(ConfigError);
    expect(() => parseConfig(JSON.stringify({ ...CFG, cognitoDomain: 'http://x.auth.eu-west-1.amazoncognito.com' }))).toThrow(ConfigError);
    expect(() => parseConfig(JSON.stringify({ ...CFG, redirectUri: 'javascript:alert(1)' }))).toThrow(ConfigError);
  });

  it('loads as local on 404 or a network failure', async () => {
    expect(await loadConfig((async () => new Response('not found', { status: 404 })) as unknown as typeof fetch)).toEqual(LOCAL);
    expect(await loadConfig((async () => { throw new TypeError('offline'); }) as unknown as typeof fetch)).toEqual(LOCAL);
    expect(await loadConfig((async () => new Response('<html>', { status: 200 })) as unknown as typeof fetch)).toEqual(LOCAL);
    expect(await loadConfig((async () => new Response(JSON.stringify(CFG), { status: 200 })) as unknown as typeof fetch)).toEqual(CFG);
  });
});
