import { stripXetJson } from './xet.ts'

/** Whether a Content-Type is JSON (`application/json`, `...+json`). */
export function isJsonType (contentType: string | undefined): boolean {
  if (contentType === undefined) return false
  return /^application\/(?:[\w.+-]*\+)?json\b/i.test(contentType.trim())
}

/**
 * An API JSON body without Xet hashes. Bodies that carry none (or are not JSON) are returned as they
 * came, byte for byte; others are re-serialised.
 */
export function cleanApiJson (body: Buffer): Buffer {
  // Cheap test first: most bodies (repo info without blobs, errors) never mention Xet.
  if (!body.includes('xetHash') && !body.includes('xet_hash')) return body
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    return body
  }
  return stripXetJson(parsed) === 0 ? body : Buffer.from(JSON.stringify(parsed))
}
