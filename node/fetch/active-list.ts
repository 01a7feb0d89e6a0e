import type { ActiveDownload } from './acquire-types.ts'
import type { Download } from './download.ts'
import type { PassingThrough } from './passthrough.ts'

/**
 * A URL not downloading yet: waiting for a download slot, or for its first answer. Once answered, its
 * download (or the file it joined) is listed itself.
 */
export interface Asking {
  url: string
  startedAt: number
  state: 'queued' | 'asking' | 'answered'
}

/** What /health lists: downloads, URLs still asking (by key), and files passed through uncached. */
export function activeList (downloads: Iterable<Download>, asking: Iterable<[string, Asking]>, passing: Iterable<PassingThrough>): ActiveDownload[] {
  const iso = (ms: number): string => new Date(ms).toISOString()
  const out: ActiveDownload[] = []
  for (const d of downloads) {
    const p = d.progress()
    out.push({ key: d.key, url: d.url, size: p.size, received: p.received, written: p.written, connections: p.connections, started_at: iso(d.startedAt), state: d.state })
  }
  for (const [key, a] of asking) {
    if (a.state === 'answered') continue
    out.push({ key, url: a.url, size: null, received: 0, written: 0, connections: a.state === 'asking' ? 1 : 0, started_at: iso(a.startedAt), state: a.state })
  }
  for (const { startedAt, ...p } of passing) out.push({ ...p, started_at: iso(startedAt) })
  return out
}
