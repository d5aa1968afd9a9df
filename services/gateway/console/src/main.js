import { createApp } from 'vue'
import App from './App.vue'
import { loadSession } from './api.js'
import { i18n } from './i18n/index.js'
import { router } from './router.js'
import './style.css'

// A screen's chunk that a new build has replaced (the page was loaded before it): load the new
// build instead of failing (Vite's documented answer to vite:preloadError).
window.addEventListener('vite:preloadError', (event) => {
  event.preventDefault()
  window.location.reload()
})

// Who is signed in is known before the first screen draws, so that no screen flashes for a
// user who cannot use it.
loadSession().finally(() => createApp(App).use(i18n).use(router).mount('#app'))
