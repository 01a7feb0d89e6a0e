/**
 * The client's `Accept` lines. Registries pick the manifest they return for a tag by them (an index, or
 * the linux/amd64 image for a client that takes no lists), so every line goes upstream as sent (skopeo
 * sends one line per media type; keeping only one breaks it) and tag answers are cached per variant.
 */

/** `['accept', value, ...]` for every Accept line of a raw header list, in order. */
export function acceptLines (rawHeaders: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() === 'accept') out.push('accept', rawHeaders[i + 1] as string)
  }
  return out
}

/** The set of media types accepted, normalised (parameters dropped, lower-case, sorted, deduplicated). */
export function acceptVariant (lines: readonly string[]): string {
  const types = new Set<string>()
  for (let i = 1; i < lines.length; i += 2) {
    for (const part of (lines[i] as string).split(',')) {
      const t = part.split(';')[0]?.trim().toLowerCase()
      if (t !== undefined && t !== '') types.add(t)
    }
  }
  return [...types].sort().join(',')
}

/** All Accept values in one line, for request APIs that take a header record. */
export function joinedAccept (lines: readonly string[]): string | undefined {
  const values: string[] = []
  for (let i = 1; i < lines.length; i += 2) values.push(lines[i] as string)
  return values.length === 0 ? undefined : values.join(', ')
}

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']

/** The media type a manifest document declares, for answers that lost the upstream Content-Type. */
export function manifestMediaType (bytes: Buffer): string {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown, manifests?: unknown, schemaVersion?: unknown, config?: { mediaType?: unknown } }
    if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType
    if (doc.schemaVersion === 1) return 'application/vnd.docker.distribution.manifest.v1+prettyjws'
    if (Array.isArray(doc.manifests)) return INDEX_TYPES[0] as string
    if (doc.config?.mediaType === 'application/vnd.docker.container.image.v1+json') return 'application/vnd.docker.distribution.manifest.v2+json'
  } catch {
    // not JSON: fall through
  }
  return 'application/vnd.oci.image.manifest.v1+json'
}
