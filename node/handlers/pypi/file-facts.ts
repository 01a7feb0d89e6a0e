/** What an index page tells about one file, and how links map to the mirror (shared by the page rewriters). */

/** A link's place on the mirror: `href` to put in the page, `path` (from the mirror root) it will be requested at. */
export interface MappedLink {
  readonly href: string
  readonly path: string
}

/** Maps an absolute upstream URL (fragment included) to the mirror; null leaves the link as it is. */
export type LinkMap = (absolute: URL) => MappedLink | null

export interface FileFacts {
  /** Mirror path the file will be requested at. */
  readonly path: string
  /** sha256 the index published for the file (`#sha256=` / `hashes.sha256`). */
  readonly sha256: string | null
  /** Size in bytes when published (PEP 700). */
  readonly size: number | null
  /** sha256 of the PEP 658 `.metadata` sibling when published. */
  readonly metadataSha256: string | null
}

/** Hint names and values stored in the metadata cache for file requests. */
export function factHints (files: readonly FileFacts[]): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = []
  for (const f of files) {
    if (f.sha256 !== null) out.push([`pypi:${f.path}`, f.size === null ? f.sha256 : `${f.sha256}:${f.size}`])
    if (f.metadataSha256 !== null) out.push([`pypi:${f.path}.metadata`, f.metadataSha256])
  }
  return out
}

/** Parses a stored hint: `<sha256>[:<size>]`. */
export function parseHint (value: string | undefined): { sha256: string, size: number | null } | null {
  if (value === undefined) return null
  const m = /^([0-9a-f]{64})(?::(\d+))?$/.exec(value)
  if (m === null) return null
  return { sha256: m[1] as string, size: m[2] === undefined ? null : Number(m[2]) }
}
