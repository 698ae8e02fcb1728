// What the app learns at start from /config.json. The WebStack writes that file next to index.html in the cloud;
// the local gateway has none (404 or the SPA fallback HTML), so anything that is not JSON with backend "aws" means
// "local": same-origin API and the local sign-in form.

export interface LocalConfig { backend: 'local' }

export interface AwsConfig {
  backend: 'aws';
  apiUrl: string;
  region: string;
  userPoolClientId: string;
  cognitoDomain: string;
  redirectUri: string;
  logoutUri: string;
}

export type AppConfig = LocalConfig | AwsConfig;

export const LOCAL: LocalConfig = { backend: 'local' };

export class ConfigError extends Error {}

const URL_FIELDS = ['apiUrl', 'cognitoDomain', 'redirectUri', 'logoutUri'] as const;

function httpsUrl(value: string, field: string): string {
  let u: URL;
  try { u = new URL(value); } catch { throw new ConfigError(`config.json: ${field} is not a URL.`); }
  if (u.protocol !== 'https:') throw new ConfigError(`config.json: ${field} must use https.`);
  return value;
}

/**
 * Turns the body of /config.json into a config. Not JSON, or JSON without backend "aws": local. Backend "aws" with a
 * missing or non-https field: ConfigError (a broken deployment must not fall back to a sign-in form that cannot work).
 */
export function parseConfig(body: string): AppConfig {
  let data: unknown;
  try { data = JSON.parse(body); } catch { return LOCAL; }
  if (typeof data !== 'object' || data === null || (data as { backend?: unknown }).backend !== 'aws') return LOCAL;
  const d = data as Record<string, unknown>;
  const out: Record<string, string> = { backend: 'aws' };
  for (const field of ['apiUrl', 'region', 'userPoolClientId', 'cognitoDomain', 'redirectUri', 'logoutUri']) {
    const v = d[field];
    if (typeof v !== 'string' || !v) throw new ConfigError(`config.json: ${field} is missing.`);
    out[field] = v;
  }
  for (const f of URL_FIELDS) httpsUrl(out[f], f);
  // Trailing slashes off the bases, so `${apiUrl}/photos` and `${cognitoDomain}/oauth2/token` are well formed.
  out.apiUrl = out.apiUrl.replace(/\/+$/, '');
  out.cognitoDomain = out.cognitoDomain.replace(/\/+$/, '');
  return out as unknown as AwsConfig;
}

/** Fetches /config.json (no cache: a redeploy may change it). A network failure or any non-2xx answer means local. */
export async function loadConfig(fetchFn: typeof fetch = fetch): Promise<AppConfig> {
  let r: Response;
  try { r = await fetchFn('/config.json', { cache: 'no-store', credentials: 'omit' }); } catch { return LOCAL; }
  if (!r.ok) return LOCAL;
  return parseConfig(await r.text());
}
