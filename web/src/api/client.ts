// The typed API client. Types come from schema.d.ts, generated at build time from the gateway's /openapi.json
// (scripts/dump_openapi.py + openapi-typescript): a renamed field breaks `tsc`, not the running app.
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type PhotoSummary = Schemas['PhotoSummary'];
export type PhotoDetail = Schemas['PhotoDetail'];
export type PhotoPage = Schemas['PhotoPage'];
export type PhotoMonths = Schemas['PhotoMonths'];
export type UploadTicket = Schemas['UploadTicket'];
export type SearchResponse = Schemas['SearchResponse'];
export type SearchHit = Schemas['SearchHitView'];
export type Chip = Schemas['Chip'];
export type FacetView = Schemas['FacetView'];
export type PersonView = Schemas['PersonView'];
export type FeedbackView = Schemas['FeedbackView'];
export type ReviewPage = Schemas['ReviewPage'];
export type ReviewItem = Schemas['ReviewItem'];
export type ConsentView = Schemas['ConsentView'];
export type FeedbackBody = Schemas['TagFeedback'] | Schemas['FaceFeedback'] | Schemas['CaptionFeedback'] | Schemas['SearchFeedback'];
export type RejectionReason = Schemas['RejectionReason'];

/** The background analysis' counts (GET /analysis/progress); absent until the server has that endpoint. */
export interface AnalysisProgress { waiting: number; analysing: number; done: number; failed: number }

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type PathOf<M extends Method> = { [P in keyof paths]: paths[P] extends Record<M, unknown> ? P : never }[keyof paths];

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

const TOKEN_KEY = 'po.token';
const EXPIRY_KEY = 'po.token.expires';
const store = typeof sessionStorage === 'undefined' ? null : sessionStorage;

function storedToken(): string | null {
  if (!store) return null;
  const exp = Number(store.getItem(EXPIRY_KEY) || 0);
  if (exp && exp <= Date.now()) { store.removeItem(TOKEN_KEY); store.removeItem(EXPIRY_KEY); return null; }
  return store.getItem(TOKEN_KEY);
}

let token: string | null = storedToken();
const listeners = new Set<() => void>();

export const auth = {
  get token() { return token; },
  /** expiresAt: epoch ms (the cloud sign-in knows it); the token is dropped from storage once past it. */
  set(value: string | null, expiresAt?: number) {
    token = value;
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    if (value && expiresAt) sessionStorage.setItem(EXPIRY_KEY, String(expiresAt)); else sessionStorage.removeItem(EXPIRY_KEY);
    listeners.forEach((l) => l());
  },
  onChange(l: () => void) { listeners.add(l); return () => listeners.delete(l); },
};

/** '' locally (same origin); the API Gateway URL from /config.json in the cloud. */
let apiBase = '';
export function setApiBase(base: string): void { apiBase = base.replace(/\/+$/, ''); }

/** Signs in against the local gateway's users (POST /auth/token with a JSON body). Never reads a token from the URL. */
export async function signIn(username: string, password: string): Promise<void> {
  const r = await fetch('/auth/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username, password }),
  });
  if (!r.ok) throw new ApiError(r.status, 'sign_in_failed', r.status === 401 ? 'Wrong username or password.' : 'Sign-in failed.');
  const body = (await r.json()) as { id_token: string };
  auth.set(body.id_token);
}

/** A sign-in link's code (from the URL fragment, which never reaches a server log): whom it would sign in. */
export async function signInLinkUser(code: string): Promise<string> {
  const r = await fetch('/auth/sign-in-link', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }),
  });
  if (!r.ok) throw new ApiError(r.status, 'sign_in_link', 'This sign-in link is unknown, used or expired. Sign in with your password.');
  return ((await r.json()) as { username: string }).username;
}

/** Uses a sign-in link up (once, after its person confirmed the account it names). */
export async function redeemSignInLink(code: string): Promise<void> {
  const r = await fetch('/auth/token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }),
  });
  if (!r.ok) throw new ApiError(r.status, 'sign_in_link', 'This sign-in link is unknown, used or expired. Sign in with your password.');
  auth.set(((await r.json()) as { id_token: string }).id_token);
}

type Query = Record<string, string | number | boolean | string[] | null | undefined>;

function fill(path: string, params: Record<string, string> = {}): string {
  return path.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(params[k] ?? ''));
}

export function queryString(query: Query = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x)); else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

type CallOpts = { params?: Record<string, string>; query?: Query; body?: unknown; retryable?: boolean };

/** A correction (feedback, a face move) is sent with an Idempotency-Key and, when the server was busy (429, 503) or
 * the network failed, sent again with the same key: the server then completes the first attempt rather than record
 * the correction twice. Other calls are sent once. */
const RETRY_DELAYS_MS = [300, 1200];

async function call<T>(method: string, path: string, opts: CallOpts = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.retryable) headers['Idempotency-Key'] = crypto.randomUUID();
  const url = apiBase + fill(path, opts.params) + queryString(opts.query);
  const init = { method: method.toUpperCase(), headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) };
  let r: Response;
  for (let attempt = 0; ; attempt++) {
    const last = !opts.retryable || attempt >= RETRY_DELAYS_MS.length;
    try {
      r = await fetch(url, init);
    } catch (e) {
      if (last) throw e;
      await sleep(RETRY_DELAYS_MS[attempt]);
      continue;
    }
    if (last || (r.status !== 429 && r.status !== 503)) break;
    await sleep(Math.max(RETRY_DELAYS_MS[attempt], 1000 * Number(r.headers.get('Retry-After') || 0)));
  }
  if (r.status === 401) { auth.set(null); throw new ApiError(401, 'unauthorized', 'Please sign in again.'); }
  if (!r.ok) {
    let code = 'error', message = `The server answered ${r.status}.`;
    try { const b = await r.json(); code = b.code ?? code; message = b.message ?? message; } catch { /* not JSON */ }
    throw new ApiError(r.status, code, message);
  }
  if (r.status === 204) return undefined as T;
  return (await r.json()) as T;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const api = {
  get: <T>(path: PathOf<'get'> | '/analysis/progress', opts?: { params?: Record<string, string>; query?: Query }) => call<T>('get', path, opts),
  post: <T>(path: PathOf<'post'>, opts?: { params?: Record<string, string>; body?: unknown; retryable?: boolean }) => call<T>('post', path, opts),
  put: <T>(path: PathOf<'put'>, opts?: { params?: Record<string, string>; body?: unknown }) => call<T>('put', path, opts),
  patch: <T>(path: PathOf<'patch'>, opts?: { params?: Record<string, string>; body?: unknown }) => call<T>('patch', path, opts),
  del: <T>(path: PathOf<'delete'>, opts?: { params?: Record<string, string> }) => call<T>('delete', path, opts),
};

export const photos = {
  list: (cursor: string | null, limit = 100, before: string | null = null) => api.get<PhotoPage>('/photos', { query: { cursor, limit, before } }),
  months: () => api.get<PhotoMonths>('/photos/months'),
  get: (id: string) => api.get<PhotoDetail>('/photos/{photo_id}', { params: { photo_id: id } }),
  remove: (id: string) => api.del<void>('/photos/{photo_id}', { params: { photo_id: id } }),
};

export const feedback = {
  send: (body: FeedbackBody) => api.post<FeedbackView>('/feedback', { body, retryable: true }),
  list: (photoId: string) => api.get<FeedbackView[]>('/feedback', { query: { photo_id: photoId } }),
  undo: (id: string) => api.del<FeedbackView>('/feedback/{feedback_id}', { params: { feedback_id: id } }),
};

/** null when the server has no background analysis endpoint yet (404): the app then shows no counts. */
export async function analysisProgress(): Promise<AnalysisProgress | null> {
  try { return await api.get<AnalysisProgress>('/analysis/progress'); } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) return null;
    throw e;
  }
}

export const REJECTION_WORDS: Record<RejectionReason, string> = {
  empty_file: 'The file is empty.',
  file_too_large: 'The file is too large.',
  unsupported_format: 'This is not a photo format we can read (JPEG, PNG, WebP or HEIC).',
  too_many_pixels: 'The image has too many pixels.',
  corrupt_image: 'The image is damaged and cannot be read.',
  too_many_scans: 'The JPEG is built from too many progressive passes to decode safely.',
};
