/**
 * File metadata learned from a tree listing or a paths-info answer at a commit: for LFS files the
 * listing gives everything a `/resolve` HEAD would (`lfs.oid` is the sha256 the hub sends as
 * `X-Linked-Etag`, `lfs.size` its `X-Linked-Size`), so the mirror can serve and download such a file,
 * keyed and verified by its sha256, without asking the hub about it first. Pure.
 */
import type { HfFileMeta } from './file-meta.ts'

const SHA256 = /^[0-9a-f]{64}$/

export interface ListedFile {
  /** The file's path as it appears in a `/resolve/` URL (only paths that need no percent-encoding). */
  readonly path: string
  readonly meta: HfFileMeta
}

/** Paths a client puts into the URL unchanged; others are left to the HEAD (their encoding varies). */
function plainPath (path: string): boolean {
  return path !== '' && path.split('/').every(s => s !== '' && s !== '.' && s !== '..' && encodeURIComponent(s) === s)
}

/**
 * The LFS files of a JSON listing (`[{ type: 'file', path, size, oid, lfs: { oid, size } }, ...]`) at
 * `commit`. Git files are skipped: their content type and encoding come only from the hub's answer.
 */
export function lfsFilesFromListing (body: Buffer, commit: string, scope: HfFileMeta['scope'], now = Date.now()): ListedFile[] {
  let entries: unknown
  try {
    entries = JSON.parse(body.toString('utf8'))
  } catch {
    return []
  }
  if (!Array.isArray(entries)) return []
  const out: ListedFile[] = []
  for (const e of entries as unknown[]) {
    if (e === null || typeof e !== 'object') continue
    const { type, path, lfs } = e as Record<string, unknown>
    if (type !== 'file' || typeof path !== 'string' || !plainPath(path) || lfs === null || typeof lfs !== 'object') continue
    const { oid, size } = lfs as Record<string, unknown>
    if (typeof oid !== 'string' || !SHA256.test(oid) || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) continue
    out.push({
      path,
      meta: {
        commit,
        etag: `"${oid}"`,
        linkedEtag: `"${oid}"`,
        sha256: oid,
        size,
        // What the hub's HEAD gives for an LFS file: a redirect, whose type and disposition describe no file.
        contentType: 'application/octet-stream',
        contentDisposition: null,
        scope,
        learnedAt: now
      }
    })
  }
  return out
}
