import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The app builds to build/web (the gateway serves it locally; the WebStack deploys it to S3 behind CloudFront).
// No inline scripts or styles are emitted, so it runs under the gateway's strict Content-Security-Policy.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../build/web',
    emptyOutDir: true,
    assetsDir: 'assets',
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  test: { include: ['test/**/*.test.ts'], environment: 'node' },
});
