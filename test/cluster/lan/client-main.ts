/**
 * Runs inside a node's namespace for the namespace test. `get <url>`: prints {status, bytes, sha256} of the
 * body; `json <url>`: prints the body.
 */
import { createHash } from 'node:crypto'

const [mode, url] = process.argv.slice(2)

/** GET as a registry client would: on a Bearer challenge, fetch an anonymous token and ask again. */
async function get (target: string): Promise<Response> {
  const first = await fetch(target, { signal: AbortSignal.timeout(30_000) })
  const challenge = first.headers.get('www-authenticate') ?? ''
  if (first.status !== 401 || !challenge.startsWith('Bearer ')) return first
  await first.body?.cancel()
  const params = Object.fromEntries([...challenge.slice(7).matchAll(/(\w+)="([^"]*)"/g)].map(m => [m[1], m[2]]))
  const tokenUrl = new URL(params.realm as string)
  for (const k of ['service', 'scope']) if (params[k] !== undefined) tokenUrl.searchParams.set(k, params[k] as string)
  const { token } = await (await fetch(tokenUrl)).json() as { token: string }
  return await fetch(target, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) })
}

const res = mode === 'json' ? await fetch(url as string, { signal: AbortSignal.timeout(30_000) }) : await get(url as string)
if (mode === 'json') {
  process.stdout.write(await res.text())
} else {
  const h = createHash('sha256')
  let bytes = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) { h.update(chunk); bytes += chunk.length }
  process.stdout.write(JSON.stringify({ status: res.status, bytes, sha256: h.digest('hex') }))
}
