import { createHash } from 'node:crypto'

/**
 * What a client's `Authorization` adds to a metadata cache key: an index asked with credentials (a
 * private PyPI, npm, CRAN or conda channel) is cached for those credentials only; '' without any.
 */
export function credentialScope (authorization: string | undefined): string {
  return authorization === undefined ? '' : `:auth=${createHash('sha256').update(authorization).digest('hex').slice(0, 24)}`
}
