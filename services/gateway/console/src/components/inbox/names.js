// Names the inbox shows for codes: affairs (from intake's catalogue, read once), steps (the
// workflow's own name, else the inbox's messages, else the level), levels and outcomes.
import { reactive } from 'vue'
import { api } from '../../api.js'

export const affairs = reactive({ byCode: {}, loaded: false })
let loading = null

export function loadAffairs() {
  loading ??= api('GET', '/api/intake/v1/affairs')
    .then((list) => {
      for (const a of Array.isArray(list) ? list : list.items ?? []) affairs.byCode[a.code] = a
      affairs.loaded = true
    })
    .catch(() => { loading = null }) // names are a nicety: codes are shown instead
  return loading
}

export function affairName(code, locale) {
  const a = affairs.byCode[code]
  if (!a) return code
  return (locale === 'en' ? a.name_en : a.name_zh) || a.name_zh || code
}

export function materialName(affairCode, material, locale) {
  const m = affairs.byCode[affairCode]?.materials?.find((x) => x.code === material)
  if (!m) return material
  return (locale === 'en' ? m.name_en : m.name_zh) || m.name_zh || material
}

// A step's name: the messages' for the step id, the workflow's name_zh (zh only), or its level.
export function stepName(t, te, locale, step, { nameZh, level } = {}) {
  if (nameZh && locale !== 'en') return nameZh
  if (te('inbox.steps.' + step)) return t('inbox.steps.' + step)
  if (nameZh) return nameZh
  return level ? `${t('inbox.levels.' + level)} · ${step}` : step
}
