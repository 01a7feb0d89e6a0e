import { isAimirrorError } from '../errors.ts'
import type { SourceResponse } from './upstream-source.ts'

/** Longest wait between two tries of a range (unless the upstream's Retry-After says more). */
export const MAX_BACKOFF_MS = 4000

/**
 * A failure that says the upstream is away for now (down, restarting, a proxy in between failing), not
 * that the file cannot be had: refused, closed before it answered (`broughtNothing`), or 5xx / 429.
 */
export function isOutage (err: Error, broughtNothing: boolean): boolean {
  if (!isAimirrorError(err)) return false
  if (err.code === 'ERR_UPSTREAM_UNREACHABLE') return true
  if (err.code !== 'ERR_UPSTREAM_PROTOCOL') return false
  const status = err.detail?.status
  return typeof status === 'number' ? status >= 500 || status === 429 : broughtNothing
}

/** How long an upstream said to wait before asking again (429/503 Retry-After), in ms; 0 when it did not. */
export function toldToWaitMs (err: Error): number {
  return isAimirrorError(err) && typeof err.detail?.retryAfterMs === 'number' ? err.detail.retryAfterMs : 0
}

/** Longest Retry-After heeded: a longer one is an outage the download does not wait out. */
const MAX_RETRY_AFTER_MS = 60_000

/** A 429's or 503's Retry-After in ms (seconds or an HTTP date), or null. */
export function retryAfterOf (res: SourceResponse): number | null {
  if (res.status !== 429 && res.status !== 503) return null
  const v = res.headers['retry-after']?.trim()
  if (v === undefined || v === '') return null
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now()
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : null
}
