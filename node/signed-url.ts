/**
 * Signed URLs: the query parameters that sign or expire a URL rather than name a resource. Cache keys
 * leave them out, requests count them as the client's credentials, and logs do not show their values.
 */

/**
 * Query parameters that sign or expire a URL rather than name a resource (lower-case), by scheme. A
 * scheme's parameters are dropped from a key only when the URL carries its signature (`signedBy`), so
 * `?exp=2` or `?st=3` on a URL that is not signed still name different files.
 */
const SIGNING_SCHEMES: ReadonlyArray<{ signedBy: readonly string[], params: (name: string) => boolean }> = [
  { signedBy: ['x-amz-signature'], params: n => n.startsWith('x-amz-') },
  { signedBy: ['x-goog-signature'], params: n => n.startsWith('x-goog-') },
  { signedBy: ['signature'], params: n => ['signature', 'expires', 'key-pair-id', 'policy', 'awsaccesskeyid'].includes(n) },
  {
    signedBy: ['sig'],
    params: n => ['sv', 'ss', 'srt', 'sp', 'se', 'st', 'spr', 'sig', 'sr', 'skoid', 'sktid', 'skt', 'ske', 'sks', 'skv', 'exp', 'expires', 'expiry'].includes(n)
  },
  // A bare token may select content; one that expires is a credential.
  { signedBy: ['token', 'jwt'], params: n => ['token', 'jwt', 'exp', 'expires', 'expiry'].includes(n) }
]

/** The names (lower-case) among `names` that sign the URL rather than name what it serves. */
export function signatureParams (names: Iterable<string>): Set<string> {
  const lower = new Set([...names].map(n => n.toLowerCase()))
  const out = new Set<string>()
  for (const scheme of SIGNING_SCHEMES) {
    if (!scheme.signedBy.some(n => lower.has(n))) continue
    const dropped = [...lower].filter(scheme.params)
    // A token scheme without an expiry is not one.
    if (scheme.signedBy[0] === 'token' && !dropped.some(n => n.startsWith('exp'))) continue
    for (const n of dropped) out.add(n)
  }
  return out
}

/**
 * Parameters whose values are credentials wherever they appear (GitLab's private_token, OAuth's
 * access_token, API keys, a bare token): kept in keys (they may select content), never shown in logs.
 */
const LOGGED_SECRETS = new Set(['token', 'access_token', 'private_token', 'api_key', 'apikey', 'api-key', 'key', 'password', 'passwd', 'secret', 'client_secret', 'auth'])

/** `url` (a path with its query, or a whole URL) with the values of its signing and secret parameters replaced: for logs. */
export function redactSignature (url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const hash = url.indexOf('#', q)
  const pairs = url.slice(q + 1, hash < 0 ? undefined : hash).split('&')
  const names = pairs.map(p => nameOf(p.split('=')[0] ?? ''))
  const signing = signatureParams(names)
  for (const n of names) if (LOGGED_SECRETS.has(n.toLowerCase())) signing.add(n.toLowerCase())
  if (signing.size === 0) return url
  const redacted = pairs.map((p, i) => signing.has((names[i] ?? '').toLowerCase()) ? `${p.split('=')[0] ?? ''}=[redacted]` : p)
  return `${url.slice(0, q + 1)}${redacted.join('&')}${hash < 0 ? '' : url.slice(hash)}`
}

function nameOf (raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '))
  } catch {
    return raw
  }
}
