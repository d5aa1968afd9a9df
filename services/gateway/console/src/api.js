// The console's one way to the gateway. The session is an HttpOnly cookie the browser sends by
// itself (same origin); what changes something carries the session's CSRF token, and every POST
// an Idempotency-Key, so that a click sent twice (a double click, a retry after a timeout) is
// done once. Errors are the services' problem+json (RFC 9457), kept whole in ApiError so that a
// form can show each field's error beside the field.
import { reactive } from 'vue'

// Who is signed in: filled by loadSession() from GET /auth/session.
export const session = reactive({ loaded: false, user: null })

export async function loadSession() {
  const response = await fetch('/auth/session', { headers: { accept: 'application/json' } })
  session.user = response.ok ? await response.json() : null
  session.loaded = true
  return session.user
}

export function hasRole(...roles) {
  return !!session.user && session.user.roles.some((r) => roles.includes(r))
}

export function signInUrl(next = window.location.pathname + window.location.search) {
  return '/auth/login?' + new URLSearchParams({ next })
}

export async function signOut() {
  await fetch('/auth/logout', { method: 'POST', headers: { 'X-CSRF-Token': session.user?.csrf_token ?? '' } })
  session.user = null
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`)
    this.status = status
    this.problem = problem ?? {}
  }

  // The errors of one field, by its JSON pointer ('#/materials/0') or name ('materials').
  fieldErrors(field) {
    const pointer = field.startsWith('#/') ? field : '#/' + field
    return (this.problem.errors ?? [])
      .filter((e) => e.pointer === pointer || e.pointer?.startsWith(pointer + '/') || e.parameter === field)
      .map((e) => e.detail)
  }

  // A stale version (someone acted first: the expected version or If-Match no longer holds):
  // the screen says so and offers to reload. Other 409s (the state does not allow the action)
  // are shown as the service says them.
  get isConflict() {
    return this.status === 412 || (this.status === 409 && (this.problem.type ?? '').endsWith('/stale-version'))
  }
}

// The version of what was last read (ETag), to send back as If-Match on a change of it.
export class Versioned {
  constructor(body, etag) {
    this.body = body
    this.etag = etag
  }
}

/**
 * Call the gateway: api('GET', '/api/intake/v1/cases', { query: { limit: 20 } }),
 * api('POST', '/api/intake/v1/cases', { body: {...} }), api('POST', url, { body, ifMatch: etag }).
 * Returns the JSON body (null for 204); { versioned: true } returns a Versioned with the ETag.
 * A 401 means the session ended: the page goes to sign-in and comes back.
 */
export async function api(method, path, { body, query, ifMatch, versioned = false, signal } = {}) {
  const url = query ? `${path}?${new URLSearchParams(clean(query))}` : path
  const headers = { accept: 'application/json, application/problem+json' }
  if (session.user?.csrf_token && method !== 'GET') headers['X-CSRF-Token'] = session.user.csrf_token
  if (method === 'POST') headers['Idempotency-Key'] = crypto.randomUUID()
  if (ifMatch) headers['If-Match'] = ifMatch
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(url, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (response.status === 401 && session.user) {
    session.user = null
    window.location.assign(signInUrl())
  }
  const type = response.headers.get('content-type') ?? ''
  const payload = response.status === 204 ? null
    : type.includes('json') ? await response.json() : await response.text()
  if (!response.ok) throw new ApiError(response.status, typeof payload === 'object' ? payload : { detail: payload })
  return versioned ? new Versioned(payload, response.headers.get('etag')) : payload
}

function clean(query) {
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== ''))
}
