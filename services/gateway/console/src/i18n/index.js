// zh-CN first, English a switch away; the choice is kept in this browser. Each screen keeps its
// own messages in i18n/<screen>.js, exporting { 'zh-CN': {...}, en: {...} } under its own key
// (desk, inbox, ...), so screens do not share one large file.
import { createI18n } from 'vue-i18n'

const parts = import.meta.glob('./*.js', { eager: true })
const messages = { 'zh-CN': {}, en: {} }
for (const [file, module] of Object.entries(parts)) {
  if (file === './index.js') continue
  for (const locale of Object.keys(messages)) Object.assign(messages[locale], module.default[locale])
}

export const LOCALES = { 'zh-CN': '中文', en: 'English' }
const stored = localStorage.getItem('civicgrid.locale')

export const i18n = createI18n({
  legacy: false,
  locale: stored in LOCALES ? stored : 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages,
  datetimeFormats: Object.fromEntries(Object.keys(LOCALES).map((l) => [l, {
    short: { year: 'numeric', month: '2-digit', day: '2-digit' },
    long: { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' },
  }])),
})

export function setLocale(locale) {
  i18n.global.locale.value = locale
  localStorage.setItem('civicgrid.locale', locale)
  document.documentElement.lang = locale
}
document.documentElement.lang = i18n.global.locale.value
