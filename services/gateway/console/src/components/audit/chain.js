// The auditor's own checks, done in the browser from what the services answer, not from their
// word: the event store's hash chain (libs/common/.../eventstore/hashing.py) and the approval
// seals (services/approval/.../domain/seals.py). Pure functions: no Vue, no fetch.
//
//   event hash = hex SHA-256( JCS({id, stream_id, stream_type, version, schema_revision, type,
//                                  data, metadata, recorded_at}) || ASCII(prev_hash or '') )
//   seal       = Ed25519 over JCS(decision), decision = {approval_id, step, branch, action,
//                outcome, time, signer, key_id, previous}, previous = the prior seal's signature
//
// JCS is RFC 8785 (the `canonicalize` package); SHA-256 and Ed25519 are @noble's, because
// crypto.subtle exists only in a secure context and the console may be served over plain http.
import canonicalize from 'canonicalize'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import { ed25519 } from '@noble/curves/ed25519.js'

// What the hash covers beyond what every history answer has (id, version, type, data, recorded_at).
export const HASH_INPUTS = ['stream_type', 'schema_revision', 'metadata']

/** recorded_at as the chain hashes it: UTC, RFC 3339, exactly 6 fraction digits, 'Z'. */
export function chainTime(text) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(String(text ?? ''))
  if (!m) return null
  const fraction = (m[2] ?? '').padEnd(6, '0').slice(0, 6)
  const ms = Date.parse(m[1] + (m[3].toUpperCase() === 'Z' ? 'Z' : m[3]))
  if (Number.isNaN(ms)) return null
  return new Date(ms).toISOString().slice(0, 19) + '.' + fraction + 'Z'
}

/** The canonical content of one event (string), or null when an input is missing. */
export function canonicalContent(streamId, e) {
  if (HASH_INPUTS.some((k) => e[k] === undefined)) return null
  const recordedAt = chainTime(e.recorded_at)
  if (recordedAt === null) return null
  return canonicalize({
    id: String(e.id).toLowerCase(), stream_id: e.stream_id ?? streamId, stream_type: e.stream_type,
    version: e.version, schema_revision: e.schema_revision, type: e.type, data: e.data,
    metadata: e.metadata, recorded_at: recordedAt,
  })
}

export function eventHash(content, prevHash) {
  return bytesToHex(sha256(utf8ToBytes(content + (prevHash ?? ''))))
}

/**
 * Check a stream's events in order. Per event: the version follows the one before, prev_hash is
 * the previous event's stored hash (none for the first), and, when the answer gives every input,
 * the stored hash is what the content hashes to. Returns
 * { events: [{version, type, recorded_at, hash, sequence, link, content, recomputed, missing}],
 *   valid, complete, missing: [fields absent], failures: [{version, check}] }
 * where sequence/link/content are true, false or null (not checkable).
 */
export function verifyChain(streamId, events) {
  const out = []
  const failures = []
  const missing = new Set()
  let previous = null
  events.forEach((e, i) => {
    const absent = HASH_INPUTS.filter((k) => e[k] === undefined)
    if (chainTime(e.recorded_at) === null) absent.push('recorded_at')
    absent.forEach((k) => missing.add(k))
    const sequence = e.version === i + 1
    const link = (e.prev_hash ?? null) === (previous === null ? null : previous.hash ?? null)
    let content = null
    let recomputed = null
    if (!absent.length) {
      try {
        recomputed = eventHash(canonicalContent(streamId, e), e.prev_hash)
        content = recomputed === e.hash
      } catch {
        content = false // no canonical form (e.g. a number JCS cannot hold)
      }
    }
    if (!sequence) failures.push({ version: e.version, check: 'sequence' })
    if (!link) failures.push({ version: e.version, check: 'link' })
    if (content === false) failures.push({ version: e.version, check: 'content' })
    out.push({ id: e.id, version: e.version, type: e.type, recorded_at: e.recorded_at, hash: e.hash,
               prev_hash: e.prev_hash ?? null, sequence, link, content, recomputed, missing: absent })
    previous = e
  })
  return { events: out, valid: failures.length === 0, complete: missing.size === 0,
           missing: [...missing], failures }
}

export function b64urlToBytes(text) {
  const b64 = String(text).replace(/-/g, '+').replace(/_/g, '/')
  const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4))
  return Uint8Array.from(raw, (c) => c.charCodeAt(0))
}

/** The published keys (JWK Set, RFC 8037 OKP/Ed25519) by kid. */
export function keysById(jwks) {
  const keys = new Map()
  for (const k of jwks?.keys ?? []) {
    if (k.kty === 'OKP' && k.crv === 'Ed25519' && k.kid && k.x) keys.set(k.kid, k)
  }
  return keys
}

const DEPARTMENT_SIGNER = 'department:'

/**
 * Every move's seal of one approval, in order: the decision is this move's (same step, branch,
 * action, outcome, time; the signer is the actor or the actor's department; previous is the
 * prior seal's signature), the key is published and owned by the signer, and the Ed25519
 * signature verifies over the JCS bytes of the decision. Returns
 * { seals: [{index, step, action, signer, key_id, matches, mismatched, known, owner, signature, valid}], valid }.
 */
export function verifySeals(approvalId, moves, jwks) {
  const keys = keysById(jwks)
  let previous = null
  const seals = (moves ?? []).map((m, index) => {
    const s = m.seal ?? {}
    const d = s.decision ?? {}
    const expected = { approval_id: approvalId, step: m.step, branch: m.branch ?? null, action: m.action,
                       outcome: m.outcome, time: m.acted_at, signer: d.signer, key_id: s.key_id, previous }
    const mismatched = Object.keys(expected).filter((k) => (d[k] ?? null) !== (expected[k] ?? null))
    const extra = Object.keys(d).filter((k) => !(k in expected))
    if (extra.length) mismatched.push(...extra)
    if (![m.actor, DEPARTMENT_SIGNER + m.actor_department].includes(d.signer)) mismatched.push('signer')
    const key = keys.get(s.key_id)
    const owner = key?.owner ?? null
    let signature = false
    if (key) {
      try {
        signature = ed25519.verify(b64urlToBytes(s.signature), utf8ToBytes(canonicalize(d)), b64urlToBytes(key.x))
      } catch {
        signature = false
      }
    }
    previous = s.signature ?? null
    const matches = mismatched.length === 0
    return { index, step: m.step, action: m.action, outcome: m.outcome, time: m.acted_at, signer: d.signer,
             actor_name: m.actor_name ?? null, key_id: s.key_id, matches, mismatched, known: !!key, owner,
             signature, valid: matches && !!key && owner === d.signer && signature }
  })
  return { seals, valid: seals.every((s) => s.valid) }
}

// ------------------------------------------------------------------ time travel

// What each of intake's case events sets (domain/case.py's state changes), folded in order.
const CASE_FOLDS = {
  'civicgrid.intake.case.registered.v1': (s, d) => ({ ...s, status: 'registered', affair_code: d.affair_code,
    jurisdiction: d.jurisdiction, channel: d.channel, missing_materials: d.materials_missing }),
  'civicgrid.intake.case.supplemented.v1': (s, d) => ({ ...s, missing_materials: d.materials_missing ?? s.missing_materials }),
  'civicgrid.intake.case.accepted.v1': (s, d) => ({ ...s, status: 'accepted', case_number: d.case_number,
    due_date: d.due_date }),
  'civicgrid.intake.case.refused.v1': (s, d) => ({ ...s, status: 'refused', refusal_reason: d.reason }),
  'civicgrid.intake.case.routed.v1': (s, d) => ({ ...s, status: 'routed',
    routed_to: d.routing?.department ?? d.routing?.kind ?? s.routed_to }),
  'civicgrid.intake.case.green_channelled.v1': (s) => ({ ...s, green_channel: true }),
  'civicgrid.intake.case.withdrawn.v1': (s) => ({ ...s, status: 'withdrawn' }),
  'civicgrid.intake.case.completed.v1': (s, d) => ({ ...s, status: 'completed', outcome: d.outcome }),
  'civicgrid.intake.case.certificate_issued.v1': (s, d) => ({ ...s, certificate_number: d.certificate_number }),
  'civicgrid.intake.case.archived.v1': (s) => ({ ...s, status: 'archived' }),
}

export const STATE_FIELDS = ['status', 'case_number', 'due_date', 'routed_to', 'green_channel', 'outcome',
  'certificate_number', 'refusal_reason', 'approval_step', 'approval_moves']

function instant(text) {
  const t = Date.parse(text)
  return Number.isNaN(t) ? null : t
}

/**
 * The case as it stood at `at` (ms since epoch): intake's events recorded up to then folded in
 * order, and, for each approval started by then, the step it was at after the moves made up to
 * then. Returns { state, applied: number of case events, moves: number of moves }.
 */
export function stateAt(events, approvals, at) {
  let state = {}
  let applied = 0
  for (const e of events) {
    const t = instant(e.recorded_at)
    if (t === null || t > at) break
    const fold = CASE_FOLDS[e.type]
    state = fold ? fold(state, e.data ?? {}) : state
    applied += 1
  }
  let made = 0
  for (const a of approvals ?? []) {
    const started = instant(a.started_at)
    if (started === null || started > at) continue
    let step = a.path?.[0] ?? null
    let count = 0
    for (const m of a.moves ?? []) {
      const t = instant(m.acted_at)
      if (t === null || t > at) break
      step = m.to_step ?? null
      count += 1
    }
    made += count
    state = { ...state, approval_step: step ?? (count ? 'concluded' : null), approval_moves: made }
  }
  return { state, applied, moves: made }
}
