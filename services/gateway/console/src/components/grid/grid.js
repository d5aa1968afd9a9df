// What the grid map and the grid worker's screen share: the grid service's paths, today's date
// in China, the incidents still open, the classification's names, a photo's upload and a point
// that lies inside a grid's polygon.
import { ApiError, api, session } from '../../api.js'

export const GRID_API = '/api/grid/v1'
// The closed loop's states an incident is still open in (not closed, not evaluated).
export const OPEN_STATES = ['reported', 'created', 'dispatched', 'deferred', 'fed_back']
export const STATES = ['reported', 'created', 'dispatched', 'deferred', 'fed_back', 'closed', 'evaluated']

// The day a daily report is for: the date in China (UTC+8, no daylight saving), whatever the
// browser's own time zone.
export function chinaToday(now = new Date()) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' })
    .formatToParts(now)
  const get = (type) => parts.find((p) => p.type === type).value
  return `${get('year')}-${get('month')}-${get('day')}`
}

export function chinaDate(instant) {
  return instant ? chinaToday(new Date(instant)) : null
}

// A client id for a write (the service records the same one once): a UUID.
export function clientId() {
  return crypto.randomUUID()
}

// Every row of GET /incidents for these query members, page by page (at most `max` rows).
export async function allIncidents(query, { max = 1000, signal } = {}) {
  const rows = []
  for (let offset = 0; offset < max; offset += 200) {
    const page = await api('GET', `${GRID_API}/incidents`, { query: { ...query, limit: 200, offset }, signal })
    rows.push(...page.items)
    if (page.items.length < 200) break
  }
  return rows
}

// The incidents still open under the caller's jurisdictions, one query per open state.
export async function openIncidents(query = {}, options = {}) {
  const pages = await Promise.all(OPEN_STATES.map((state) => allIncidents({ ...query, state }, options)))
  return pages.flat().sort((a, b) => (a.reported_at < b.reported_at ? 1 : -1))
}

// The district's classification: { 'event 0401': {kind, major, minor, name_zh, name_en, ...} }.
let classes = null
export async function classification() {
  if (!classes) {
    classes = api('GET', `${GRID_API}/classification`).then((c) => c.classes).catch((e) => {
      classes = null
      throw e
    })
  }
  return classes
}

export function className(byCode, code, locale) {
  const c = byCode?.[code]
  if (!c) return code
  return locale === 'en' ? c.name_en : c.name_zh
}

// The grids of the caller's jurisdictions with today's report of each: a grid worker's own
// grids (GET /grids/{grid}: a worker cannot list a community), a community's or a district's
// through its communities.
export async function gridsWithToday(jurisdictions, day, { signal } = {}) {
  const days = await Promise.all(jurisdictions.map((j) =>
    api('GET', `${GRID_API}/jurisdictions/${j}/daily-reports/${day}`, { signal })))
  const reports = new Map()
  let working = false
  for (const d of days) {
    working ||= d.working_day
    for (const g of d.by_grid) reports.set(g.grid, g)
  }
  const codes = [...reports.keys()]
  const communities = [...new Set(codes.map((c) => c.slice(0, 12)))]
  const grids = []
  for (const community of communities) {
    const mine = codes.filter((c) => c.startsWith(community))
    const inside = jurisdictions.some((j) => community.startsWith(j))
    if (inside) {
      grids.push(...(await api('GET', `${GRID_API}/communities/${community}/grids`, { signal }))
        .filter((g) => reports.has(g.code)))
    } else {
      grids.push(...await Promise.all(mine.map((c) => api('GET', `${GRID_API}/grids/${c}`, { signal }))))
    }
  }
  grids.sort((a, b) => (a.code < b.code ? -1 : 1))
  return { grids, reports, working }
}

// ---------------------------------------------------------------------------- photos

const ACCEPTED = ['image/jpeg', 'image/png', 'image/webp']
const LONGEST_SIDE = 2048

// A phone's photo as the service takes it: drawn again as a JPEG of at most 2048 px a side
// (smaller to send; a HEIC the browser can show becomes one the service keeps). What the
// browser cannot draw is sent as it is if it is JPEG, PNG or WebP.
async function asJpeg(file) {
  try {
    const bitmap = await createImageBitmap(file)
    const scale = Math.min(1, LONGEST_SIDE / Math.max(bitmap.width, bitmap.height))
    const canvas = document.createElement('canvas')
    canvas.width = Math.max(1, Math.round(bitmap.width * scale))
    canvas.height = Math.max(1, Math.round(bitmap.height * scale))
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height)
    bitmap.close?.()
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.88))
    if (blob) return blob
  } catch {
    // not drawable here: the file itself, if the service may take it
  }
  if (ACCEPTED.includes(file.type)) return file
  throw new PhotoNotReadable(file.type || file.name)
}

// A file the browser cannot draw and the service would not take: the screen says so itself.
export class PhotoNotReadable extends Error {}

// POST /grids/{grid}/photos takes the image's bytes (not JSON), so not through api(); the same
// headers it sends. Returns {sha256, media_type, width, height, size}.
export async function uploadPhoto(grid, file) {
  const body = await asJpeg(file)
  const response = await fetch(`${GRID_API}/grids/${grid}/photos`, {
    method: 'POST', body,
    headers: {
      accept: 'application/json, application/problem+json', 'content-type': body.type || 'image/jpeg',
      'X-CSRF-Token': session.user?.csrf_token ?? '', 'Idempotency-Key': crypto.randomUUID(),
    },
  })
  const type = response.headers.get('content-type') ?? ''
  const payload = type.includes('json') ? await response.json() : { detail: await response.text() }
  if (!response.ok) throw new ApiError(response.status, payload)
  return payload
}

export function photoUrl(sha256) {
  return `${GRID_API}/photos/${sha256}`
}

// ---------------------------------------------------------------------------- geometry

// Is [lon, lat] inside a GeoJSON polygon (its outer ring, outside its holes)? Ray casting.
function inRing(lon, lat, ring) {
  let inside = false
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]
    const [xj, yj] = ring[j]
    if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside
  }
  return inside
}

export function contains(polygon, lat, lon) {
  const [outer, ...holes] = polygon.coordinates
  return inRing(lon, lat, outer) && !holes.some((h) => inRing(lon, lat, h))
}

// A point inside the grid for a report made without the phone's position: the centroid of its
// outer ring if that lies inside, else the middle of the widest stretch inside on the row
// through the polygon's middle latitude.
export function pointInside(polygon) {
  const ring = polygon.coordinates[0]
  let area = 0; let cx = 0; let cy = 0
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [x0, y0] = ring[j]
    const [x1, y1] = ring[i]
    const f = x0 * y1 - x1 * y0
    area += f; cx += (x0 + x1) * f; cy += (y0 + y1) * f
  }
  if (area !== 0) {
    const lon = cx / (3 * area); const lat = cy / (3 * area)
    if (contains(polygon, lat, lon)) return { lat: round(lat), lon: round(lon) }
  }
  const lats = ring.map((p) => p[1])
  const lat = (Math.min(...lats) + Math.max(...lats)) / 2
  const xs = []
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]
    const [xj, yj] = ring[j]
    if ((yi > lat) !== (yj > lat)) xs.push(((xj - xi) * (lat - yi)) / (yj - yi) + xi)
  }
  xs.sort((a, b) => a - b)
  let best = null
  for (let k = 0; k + 1 < xs.length; k += 2) {
    if (!best || xs[k + 1] - xs[k] > best[1] - best[0]) best = [xs[k], xs[k + 1]]
  }
  const lon = best ? (best[0] + best[1]) / 2 : ring[0][0]
  return { lat: round(lat), lon: round(lon) }
}

function round(x) {
  return Math.round(x * 1e6) / 1e6
}

// An instant as the street reads it: China time (the day a report is for is China's too),
// whatever the browser's own time zone.
const formats = new Map()
export function chinaTime(instant, locale) {
  if (!instant) return ''
  if (!formats.has(locale)) {
    formats.set(locale, new Intl.DateTimeFormat(locale, { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit',
      day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }))
  }
  return formats.get(locale).format(new Date(instant))
}
