// The console's build: `npm run build` writes dist/, which the gateway serves at / (its
// assets under /assets/, fingerprinted, so they may be cached for ever). Each screen is its own
// chunk (router.js imports them lazily): a clerk's first load does not carry the charts or the map.
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  plugins: [vue()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // the console must run in the browsers a district's offices have, not only the newest
    target: 'es2020',
    chunkSizeWarningLimit: 1200,
  },
  server: {
    // `npm run dev` against `make up`'s gateway: the API, sign-in and contracts through it
    proxy: Object.fromEntries(['/api', '/auth', '/contracts', '/open311'].map((p) => [p, 'http://127.0.0.1:8000'])),
  },
})
