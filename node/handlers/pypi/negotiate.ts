/** PEP 691 content negotiation between the HTML and JSON simple API (pure). */

export type SimpleFormat = 'json' | 'html'

export const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json'

/** What the mirror asks upstream for each format: JSON with HTML as fallback, or HTML. */
export const UPSTREAM_ACCEPT: Readonly<Record<SimpleFormat, string>> = {
  json: 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01',
  html: 'application/vnd.pypi.simple.v1+html, text/html;q=0.9'
}

function qualities (accept: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';')
    const t = type.trim()
    if (t === '') continue
    const q = params.map(p => p.trim()).find(p => p.startsWith('q='))
    const value = q === undefined ? 1 : Number(q.slice(2))
    out.set(t, Number.isFinite(value) ? value : 0)
  }
  return out
}

/**
 * The format to serve for an `Accept` header: JSON when the client rates a PEP 691 JSON type at least as
 * high as any HTML type, HTML otherwise (no Accept, `*\/*`, browsers, old pip).
 */
export function chooseFormat (accept: string | undefined): SimpleFormat {
  if (accept === undefined) return 'html'
  const q = qualities(accept)
  const json = Math.max(q.get(SIMPLE_JSON) ?? 0, q.get('application/vnd.pypi.simple.latest+json') ?? 0)
  if (json <= 0) return 'html'
  const html = Math.max(q.get('application/vnd.pypi.simple.v1+html') ?? 0, q.get('application/vnd.pypi.simple.latest+html') ?? 0,
    q.get('text/html') ?? 0, q.get('text/*') ?? 0, q.get('*/*') ?? 0)
  return json >= html ? 'json' : 'html'
}

/** Whether a client with this `Accept` takes the format at all (no Accept: HTML only, as old clients). */
export function acceptsFormat (accept: string | undefined, format: SimpleFormat): boolean {
  if (accept === undefined) return format === 'html'
  const q = qualities(accept)
  const any = q.get('*/*') ?? 0
  if (format === 'json') return Math.max(q.get(SIMPLE_JSON) ?? 0, q.get('application/vnd.pypi.simple.latest+json') ?? 0, any) > 0
  return Math.max(q.get('application/vnd.pypi.simple.v1+html') ?? 0, q.get('application/vnd.pypi.simple.latest+html') ?? 0,
    q.get('text/html') ?? 0, q.get('text/*') ?? 0, any) > 0
}
