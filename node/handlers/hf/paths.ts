/**
 * HuggingFace Hub URL shapes, parsed and built without I/O. Repository ids have one segment (legacy
 * models such as `gpt2`) or two (`owner/name`); datasets and spaces carry a `datasets/` or `spaces/`
 * prefix on file URLs and a plural type segment on API URLs. Revisions and file paths are kept exactly as
 * the client percent-encoded them, so the URL sent upstream names the same object.
 */

export type RepoType = 'model' | 'dataset' | 'space'

export interface RepoRef {
  readonly type: RepoType
  /** `owner/name` or a legacy single-segment id. */
  readonly id: string
}

/** A file at a revision: `/{prefix}{repo}/resolve/{revision}/{path}`. */
export interface FileRef {
  readonly repo: RepoRef
  /** Branch, tag or 40-hex commit, still percent-encoded (`refs%2Fpr%2F1`). */
  readonly revision: string
  /** Path inside the repository, still percent-encoded. */
  readonly path: string
}

export type ApiKind = 'info' | 'revision' | 'tree' | 'paths-info' | 'xet-read-token' | 'other'

export interface ApiRef {
  readonly repo: RepoRef
  readonly kind: ApiKind
  /** The revision named in the path (revision, tree, paths-info, xet-read-token), else null. */
  readonly revision: string | null
}

const COMMIT = /^[0-9a-f]{40}$/
const SEGMENT = /^[\w.-]+$/
const API_TYPES: Readonly<Record<string, RepoType>> = { models: 'model', datasets: 'dataset', spaces: 'space' }
const API_SUBS = new Set(['revision', 'tree', 'paths-info', 'xet-read-token', 'refs', 'commits', 'treesize', 'resolve',
  'discussions', 'settings', 'commit', 'preupload', 'lfs-files', 'compare', 'branch', 'tag', 'scan', 'notebook', 'xet-write-token'])

export function isCommit (revision: string): boolean {
  return COMMIT.test(revision)
}

/** `''`, `datasets/` or `spaces/`: where a repository's files live on the hub. */
export function filePrefix (type: RepoType): string {
  return type === 'model' ? '' : `${type}s/`
}

/** The plural used by the API (`models`, `datasets`, `spaces`). */
export function apiType (type: RepoType): string {
  return `${type}s`
}

/** A stable, printable name of a repository: `model:owner/name`. */
export function repoKey (repo: RepoRef): string {
  return `${repo.type}:${repo.id}`
}

/** `/{prefix}{repo}/resolve/{revision}/{path}` (leading slash, no base). */
export function resolvePath (file: FileRef): string {
  return `/${filePrefix(file.repo.type)}${file.repo.id}/resolve/${file.revision}/${file.path}`
}

/** A segment that names itself or its parent, literally or percent-encoded (`%2e%2e`). */
function dotSegment (segment: string): boolean {
  let decoded: string
  try { decoded = decodeURIComponent(segment) } catch { return true }
  return decoded === '.' || decoded === '..' || decoded.includes('/') || decoded.includes('\\')
}

function validPath (path: string): boolean {
  if (path === '' || path.startsWith('/')) return false
  return path.split('/').every(s => s !== '' && !dotSegment(s))
}

/** Revisions may contain encoded slashes (`refs%2Fpr%2F1`) but never name a parent. */
function validRevision (revision: string): boolean {
  if (revision === '' || revision.startsWith('-')) return false
  let decoded: string
  try { decoded = decodeURIComponent(revision) } catch { return false }
  return decoded.split('/').every(s => s !== '' && s !== '.' && s !== '..') && !decoded.includes('\\')
}

/** Parses a `/resolve/` path (after any `/blob/` → `/resolve/` rewrite); null when it is not one. */
export function parseResolvePath (pathname: string): FileRef | null {
  let rest = pathname.replace(/^\/+/, '')
  let type: RepoType = 'model'
  for (const t of ['datasets', 'spaces'] as const) {
    if (rest.startsWith(t + '/')) {
      type = API_TYPES[t] as RepoType
      rest = rest.slice(t.length + 1)
      break
    }
  }
  const at = rest.indexOf('/resolve/')
  if (at <= 0) return null
  const id = rest.slice(0, at)
  const segs = id.split('/')
  if (segs.length > 2 || !segs.every(s => SEGMENT.test(s))) return null
  const after = rest.slice(at + '/resolve/'.length)
  const slash = after.indexOf('/')
  if (slash <= 0) return null
  const revision = after.slice(0, slash)
  const path = after.slice(slash + 1)
  if (!validRevision(revision) || !validPath(path)) return null
  return { repo: { type, id }, revision, path }
}

/**
 * Parses `/api/resolve-cache/{models|datasets|spaces}/{repo}/{commit}/{path}`, where the hub serves
 * the bytes of files kept in git. The commit segment (40 hex) separates the repository from the path.
 */
export function parseResolveCachePath (pathname: string): FileRef | null {
  const m = /^\/api\/resolve-cache\/(models|datasets|spaces)\/(.+)$/.exec(pathname)
  if (m === null) return null
  const segs = (m[2] as string).split('/')
  const at = segs.findIndex((s, i) => i > 0 && i <= 2 && COMMIT.test(s))
  if (at < 0) return null
  const idSegs = segs.slice(0, at)
  if (!idSegs.every(s => SEGMENT.test(s))) return null
  const path = segs.slice(at + 1).join('/')
  if (!validPath(path)) return null
  return { repo: { type: API_TYPES[m[1] as string] as RepoType, id: idSegs.join('/') }, revision: segs[at] as string, path }
}

/** Parses `/api/{models|datasets|spaces}/{repo}[/{sub}/{revision}...]`; null for other API paths. */
export function parseApiPath (pathname: string): ApiRef | null {
  const m = /^\/api\/(models|datasets|spaces)\/(.+)$/.exec(pathname)
  if (m === null) return null
  const type = API_TYPES[m[1] as string] as RepoType
  const segs = (m[2] as string).split('/')
  // Two-segment ids unless the second segment is an API verb followed by more (`gpt2/tree/main`).
  let idLen = 2
  if (segs.length === 1 || (segs.length >= 3 && API_SUBS.has(segs[1] as string) && !API_SUBS.has(segs[2] as string))) idLen = 1
  const idSegs = segs.slice(0, idLen)
  if (!idSegs.every(s => SEGMENT.test(s))) return null
  const repo = { type, id: idSegs.join('/') }
  const sub = segs.slice(idLen)
  if (sub.length === 0) return { repo, kind: 'info', revision: null }
  const verb = sub[0] as string
  const revision = sub[1] ?? null
  if ((verb === 'revision' || verb === 'paths-info' || verb === 'xet-read-token') && sub.length === 2) {
    return { repo, kind: verb, revision }
  }
  if (verb === 'tree' && sub.length >= 2) return { repo, kind: 'tree', revision }
  return { repo, kind: 'other', revision: null }
}
