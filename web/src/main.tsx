import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { analysisProgress, auth, setApiBase, type AnalysisProgress } from './api/client';
import { LOCAL, loadConfig, type AppConfig } from './lib/config';
import { cleanedUrl, completeSignIn, isCallback, logoutUrl } from './lib/pkce';
import { linkClick, navigate, useLocation } from './router';
import { SignIn } from './screens/SignIn';
import { Upload } from './screens/Upload';
import { Timeline } from './screens/Timeline';
import { PhotoView } from './screens/PhotoView';
import { Search } from './screens/Search';
import { People } from './screens/People';
import { Review } from './screens/Review';
import { Settings } from './screens/Settings';

const NAV: [string, string][] = [
  ['/', 'Timeline'], ['/search', 'Search'], ['/upload', 'Upload'], ['/people', 'People'], ['/review', 'Review'], ['/settings', 'Settings'],
];

function Progress() {
  const [p, setP] = useState<AnalysisProgress | null>(null);
  useEffect(() => {
    let stop = false;
    const tick = async () => {
      try { const v = await analysisProgress(); if (!stop) setP(v); } catch { /* offline for a moment */ }
      if (!stop) setTimeout(tick, 3000);
    };
    tick();
    return () => { stop = true; };
  }, []);
  if (!p) return null;
  return (
    <p class="progress" role="status" aria-live="polite" data-testid="analysis-progress">
      Analysis: {p.waiting} waiting · {p.analysing} analysing · {p.done} done{p.failed ? ` · ${p.failed} failed` : ''}
    </p>
  );
}

function Screen({ url, onSignedOut }: { url: URL; onSignedOut: () => void }) {
  const path = url.pathname;
  if (path.startsWith('/photo/')) return <PhotoView id={decodeURIComponent(path.slice(7))} />;
  switch (path) {
    case '/search': return <Search url={url} />;
    case '/upload': return <Upload />;
    case '/people': return <People url={url} />;
    case '/review': return <Review />;
    case '/settings': return <Settings onSignedOut={onSignedOut} />;
    default: return <Timeline />;
  }
}

function App({ config, startError }: { config: AppConfig; startError: string }) {
  const url = useLocation();
  const [signedIn, setSignedIn] = useState(!!auth.token);
  // A sign-in error from start-up is shown once: after a sign-in (or a sign-out) it is gone.
  const [error, setError] = useState(startError);
  useEffect(() => auth.onChange(() => { setSignedIn(!!auth.token); setError(''); }), []);
  useEffect(() => {
    if (!signedIn && url.pathname !== '/signin') navigate(`/signin?next=${encodeURIComponent(url.pathname + url.search)}`, true);
  }, [signedIn, url.pathname]);
  if (!signedIn || url.pathname === '/signin') return <SignIn url={url} config={config} error={error} />;
  const active = (href: string) => (href === '/' ? url.pathname === '/' || url.pathname.startsWith('/photo/') : url.pathname.startsWith(href));
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <h1><a href="/" onClick={linkClick}>Photo Organizer</a></h1>
        <nav aria-label="Main">
          {NAV.map(([href, label]) => (
            <a key={href} href={href} onClick={linkClick} aria-current={active(href) ? 'page' : undefined}>{label}</a>
          ))}
        </nav>
        <button type="button" class="link" onClick={() => signOut(config)}>Sign out</button>
      </header>
      <Progress />
      <main id="main" tabIndex={-1}><Screen url={url} onSignedOut={() => signOut(config)} /></main>
    </>
  );
}

function signOut(config: AppConfig): void {
  auth.set(null);
  if (config.backend === 'aws') location.assign(logoutUrl(config));
}

/**
 * Reads /config.json (absent locally), points the API client at the cloud API, and finishes a hosted-UI sign-in
 * when the address bar holds its ?code=&state= answer, before the first render (so the router never sees them).
 */
async function start(): Promise<void> {
  let config: AppConfig = LOCAL;
  let startError = '';
  try { config = await loadConfig(); } catch (e) { startError = e instanceof Error ? e.message : 'The app is misconfigured.'; }
  if (config.backend === 'aws') {
    setApiBase(config.apiUrl);
    const url = new URL(location.href);
    if (isCallback(url)) {
      try {
        const r = await completeSignIn(config, url, sessionStorage);
        auth.set(r.idToken, r.expiresAt);
        history.replaceState(null, '', r.next);
      } catch (e) {
        startError = e instanceof Error ? e.message : 'Sign-in failed.';
        history.replaceState(null, '', cleanedUrl(url));
      }
    }
  }
  render(<App config={config} startError={startError} />, document.getElementById('app')!);
}

void start();
