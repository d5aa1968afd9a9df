// zh-CN first, English a switch away; the choice is kept in this browser. Each screen keeps its
// own messages in i18n/<screen>.js, exporting { 'zh-CN': {...}, en: {...} } under its own key
// (desk, inbox, ...), and adds them when it loads (addMessages), so that they travel in the
// screen's own chunk: the first load carries the shell's alone.
import { createI18n } from 'vue-i18n'
import shell from './shell.js'

export const LOCALES = { 'zh-CN': '中文', en: 'English' }
const stored = localStorage.getItem('civicgrid.locale')

export const i18n = createI18n({
  legacy: false,
  locale: stored in LOCALES ? stored : 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: shell,
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

/** A screen's messages ({ 'zh-CN': {...}, en: {...} }), added to every locale once its chunk loads. */
export function addMessages(messages) {
  for (const locale of Object.keys(LOCALES)) i18n.global.mergeLocaleMessage(locale, messages[locale] ?? {})
}
