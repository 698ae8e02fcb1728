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

describe('corrections sent again when the server was busy', () => {
  it('retries a busy answer with the same Idempotency-Key and returns the final answer', async () => {
    vi.useFakeTimers();
    try {
      const client = await freshClient(new MemStorage());
      const answers = [new Response('{}', { status: 503, headers: { 'Retry-After': '1' } }),
        new Response(JSON.stringify({ feedback_id: 'f1' }), { status: 201 })];
      const fetchFn = vi.fn(async () => answers.shift()!);
      vi.stubGlobal('fetch', fetchFn);
      const sent = client.feedback.send({ type: 'tag_added', photo_id: 'p1', tag: 'beach' } as never);
      await vi.runAllTimersAsync();
      expect(await sent).toEqual({ feedback_id: 'f1' });
      const keys = fetchFn.mock.calls.map((c) => ((c as unknown as [string, RequestInit])[1].headers as Record<string, string>)['Idempotency-Key']);
      expect(keys).toHaveLength(2);
      expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(keys[1]).toBe(keys[0]);
    } finally { vi.useRealTimers(); }
  });

  it('sends other calls once, without a key', async () => {
    const client = await freshClient(new MemStorage());
    const fetchFn = vi.fn(async () => new Response('{}', { status: 503 }));
    vi.stubGlobal('fetch', fetchFn);
    await expect(client.photos.list(null, 10)).rejects.toMatchObject({ status: 503 });
    expect(fetchFn).toHaveBeenCalledTimes(1);
    expect(((fetchFn.mock.calls[0] as unknown as [string, RequestInit])[1].headers as Record<string, string>)['Idempotency-Key']).toBeUndefined();
  });

  it('gives up after its retries and reports the busy answer', async () => {
    vi.useFakeTimers();
    try {
      const client = await freshClient(new MemStorage());
      const fetchFn = vi.fn(async () => new Response(JSON.stringify({ code: 'slow_down', message: 'busy' }), { status: 503 }));
      vi.stubGlobal('fetch', fetchFn);
      const sent = client.feedback.send({ type: 'tag_added', photo_id: 'p1', tag: 'beach' } as never);
      const outcome = expect(sent).rejects.toMatchObject({ status: 503, code: 'slow_down' });
      await vi.runAllTimersAsync();
      await outcome;
      expect(fetchFn).toHaveBeenCalledTimes(3);
    } finally { vi.useRealTimers(); }
  });
});
