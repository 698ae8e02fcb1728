import { afterEach, describe, expect, it, vi } from 'vitest';

class MemStorage {
  m = new Map<string, string>();
  getItem(k: string) { return this.m.get(k) ?? null; }
  setItem(k: string, v: string) { this.m.set(k, v); }
  removeItem(k: string) { this.m.delete(k); }
}

async function freshClient(storage: MemStorage) {
  vi.resetModules();
  vi.stubGlobal('sessionStorage', storage);
  return import('../src/api/client');
}

afterEach(() => { vi.unstubAllGlobals(); });

describe('the API client in the cloud', () => {
  it('sends calls to apiUrl with the id token as bearer', async () => {
    const client = await freshClient(new MemStorage());
    const fetchFn = vi.fn(async () => new Response(JSON.stringify({ items: [], next_cursor: null }), { status: 200 }));
    vi.stubGlobal('fetch', fetchFn);
    client.setApiBase('https://abc123.execute-api.eu-west-1.amazonaws.com/prod/');
    client.auth.set('ID.TOKEN', Date.now() + 60_000);
    await client.photos.list(null, 10);
    const [url, init] = fetchFn.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com/prod/photos?limit=10');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer ID.TOKEN');
  });

  it('keeps the token and its expiry in sessionStorage and drops an expired one at start', async () => {
    const storage = new MemStorage();
    const client = await freshClient(storage);
    client.auth.set('ID.TOKEN', Date.now() + 60_000);
    expect(storage.getItem('po.token')).toBe('ID.TOKEN');
    expect(Number(storage.getItem('po.token.expires'))).toBeGreaterThan(Date.now());
    expect((await freshClient(storage)).auth.token).toBe('ID.TOKEN');

    storage.setItem('po.token.expires', String(Date.now() - 1));
    expect((await freshClient(storage)).auth.token).toBeNull();
    expect(storage.getItem('po.token')).toBeNull();
  });

  it('keeps a local token without expiry as before', async () => {
    const storage = new MemStorage();
    storage.setItem('po.token', 'LOCAL');
    expect((await freshClient(storage)).auth.token).toBe('LOCAL');
  });
});
