// What the window desk's parts share: masking residents' numbers for the screen and the printed
// receipt, an affair's name in the chosen language, China-time dates, and which eligibility facts
// an affair asks the clerk to declare.

// An identity number as a screen or a printed slip shows it: the region and the last four kept
// (320104********2720). A number the API already masked is left as it is.
export function maskIdentity(number) {
  if (!number || number.includes('*')) return number ?? ''
  if (number.length <= 8) return number.slice(0, 2) + '*'.repeat(Math.max(number.length - 2, 0))
  return number.slice(0, 6) + '*'.repeat(number.length - 10) + number.slice(-4)
}

// A phone number: 139****5678; a landline keeps its last four.
export function maskPhone(phone) {
  if (!phone || phone.includes('*')) return phone ?? ''
  if (phone.length <= 4) return '*'.repeat(phone.length)
  if (phone.length === 11) return phone.slice(0, 3) + '****' + phone.slice(-4)
  return '*'.repeat(phone.length - 4) + phone.slice(-4)
}

// A name on the printed slip: the family name and the rest starred (张*, 欧阳**).
export function maskName(name) {
  if (!name || name.includes('*')) return name ?? ''
  return name.slice(0, 1) + '*'.repeat(Math.max(name.length - 1, 1))
}

export function localName(entry, locale) {
  if (!entry) return ''
  return (locale === 'en' ? entry.name_en : entry.name_zh) || entry.name_zh || entry.name_en || entry.code
}

// The facts the clerk declares from a document the applicant shows, where the affair's
// eligibility rule needs them.
export const DECLARABLE = ['registered_unemployed', 'holds_disability_certificate']

export function declarableFacts(rule) {
  const found = new Set()
  const walk = (r) => {
    if (!r || typeof r !== 'object') return
    if (DECLARABLE.includes(r.rule)) found.add(r.rule)
    for (const sub of r.rules ?? []) walk(sub)
  }
  walk(rule)
  return DECLARABLE.filter((f) => found.has(f))
}

export const CHINA_TZ = 'Asia/Shanghai'

// An instant, in China time (where the window is), in the chosen language.
export function chinaTime(value, locale, { withTime = true } = {}) {
  if (!value) return ''
  const options = { year: 'numeric', month: '2-digit', day: '2-digit', timeZone: CHINA_TZ }
  if (withTime) Object.assign(options, { hour: '2-digit', minute: '2-digit', hour12: false })
  return new Intl.DateTimeFormat(locale, options).format(new Date(value))
}

export const STATUSES = ['registered', 'accepted', 'routed', 'completed', 'refused', 'withdrawn', 'archived']
export const CHANNELS = ['window', 'web', 'mobile_app', 'self_service']
