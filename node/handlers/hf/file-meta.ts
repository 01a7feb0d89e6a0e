/**
 * What the mirror knows about one file at one commit, learned from the upstream's `/resolve` answer
 * (the first response that is not a same-host redirect) and replayed on every HEAD/GET, whether the bytes
 * come from the cache or from upstream. Pure.
 */

export interface HfFileMeta {
  /** 40-hex commit the file was resolved at (`X-Repo-Commit`). */
  readonly commit: string
  /** Upstream `ETag` (quoted as sent; the git blob sha1 for git files, the sha256 for LFS files). */
  readonly etag: string
  /** Upstream `X-Linked-Etag` (LFS files), null for files kept in git. */
  readonly linkedEtag: string | null
  /** LFS sha256 (hex) from `X-Linked-Etag`: the content identity, verified on download. */
  readonly sha256: string | null
  /** File size in bytes (`X-Linked-Size`, else `Content-Length` of a non-redirect answer). */
  readonly size: number
  readonly contentType: string
  readonly contentDisposition: string | null
  /**
   * `public`: upstream served it without credentials. `auth`: learned with a client's credentials, so it is
   * served again only to a client whose credentials upstream accepts for the repository.
   */
  readonly scope: 'public' | 'auth'
  readonly learnedAt: number
}

const SHA256 = /^[0-9a-f]{64}$/
const COMMIT = /^[0-9a-f]{40}$/

/** `"abc"` / `W/"abc"` / `abc` → `abc`, as huggingface_hub normalises ETags. */
export function normalizeEtag (value: string): string {
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
}

export type MetaProblem = 'no-commit' | 'no-etag' | 'no-size'

/**
 * Builds the file's metadata from the upstream answer's headers (lower-case names). `redirect` tells
 * whether that answer was a redirect to another host (its Content-Length describes no file then).
 */
export function fileMetaFromHeaders (headers: Readonly<Record<string, string>>, redirect: boolean, scope: HfFileMeta['scope'], now = Date.now()): HfFileMeta | MetaProblem {
  const commit = (headers['x-repo-commit'] ?? '').trim().toLowerCase()
  if (!COMMIT.test(commit)) return 'no-commit'
  const linkedEtag = headers['x-linked-etag'] ?? null
  const etag = headers.etag ?? linkedEtag
  if (etag === null || etag === undefined || normalizeEtag(etag) === '') return 'no-etag'
  const sizeText = headers['x-linked-size'] ?? (redirect ? undefined : headers['content-length'])
  if (sizeText === undefined || !/^\d+$/.test(sizeText.trim())) return 'no-size'
  const linked = linkedEtag === null ? null : normalizeEtag(linkedEtag).toLowerCase()
  return {
    commit,
    etag,
    linkedEtag,
    sha256: linked !== null && SHA256.test(linked) ? linked : null,
    size: Number(sizeText.trim()),
    contentType: redirect ? 'application/octet-stream' : headers['content-type'] ?? 'application/octet-stream',
    contentDisposition: redirect ? null : headers['content-disposition'] ?? null,
    scope,
    learnedAt: now
  }
}

/** The strong validator the mirror answers with: the LFS sha256 when there is one, else upstream's ETag. */
export function mirrorEtag (meta: HfFileMeta): string {
  if (meta.sha256 !== null) return `"${meta.sha256}"`
  const e = meta.etag.trim().replace(/^W\//, '')
  return e.startsWith('"') ? e : `"${e}"`
}

/**
 * Headers huggingface_hub and @huggingface/hub read on a `/resolve` answer (besides the length, range
 * and ETag headers the blob response adds): the commit, the linked ETag and size.
 */
export function hubHeaders (meta: HfFileMeta): Record<string, string> {
  const h: Record<string, string> = {
    'x-repo-commit': meta.commit,
    'x-linked-size': String(meta.size)
  }
  if (meta.linkedEtag !== null) h['x-linked-etag'] = meta.linkedEtag
  if (meta.contentDisposition !== null) h['content-disposition'] = meta.contentDisposition
  return h
}

/** Validates a record read back from disk (anything else is ignored as unknown). */
export function isFileMeta (v: unknown): v is HfFileMeta {
  if (v === null || typeof v !== 'object') return false
  const m = v as Record<string, unknown>
  return typeof m.commit === 'string' && COMMIT.test(m.commit) && typeof m.etag === 'string' &&
    (m.linkedEtag === null || typeof m.linkedEtag === 'string') &&
    (m.sha256 === null || (typeof m.sha256 === 'string' && SHA256.test(m.sha256))) &&
    typeof m.size === 'number' && Number.isSafeInteger(m.size) && m.size >= 0 &&
    typeof m.contentType === 'string' && (m.contentDisposition === null || typeof m.contentDisposition === 'string') &&
    (m.scope === 'public' || m.scope === 'auth') && typeof m.learnedAt === 'number'
}
