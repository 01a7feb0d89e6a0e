/**
 * An HTTP client living inside one namespace of the namespace test (starting a process per request
 * costs seconds on a busy machine). Reads one JSON command a line on stdin, answers one JSON line
 * `{ id, ok, value | error }` on stdout; commands run concurrently:
 * - `get <url>`: {status, bytes, sha256} of the body (as a registry client, answering the mirror's
 *   token challenge);
 * - `json <url>`: the parsed body;
 * - `probe <url> [bearer]`: a plain GET (with that bearer token, if given; any TLS certificate
 *   accepted, as an outsider would): {status, bytes};
 * - `peer-bytes <url> <n>`: polls a node's /cluster/stats until its own bytes_from_peers reach n and
 *   returns that number (fails after 30 s).
 */
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { registryGet } from './registry.ts'

interface Command { id: number, mode: string, args: string[] }

const anyCertificate = new Agent({ connect: { rejectUnauthorized: false } })

async function bodyDigest (res: Response): Promise<{ status: number, bytes: number, sha256: string }> {
  const h = createHash('sha256')
  let bytes = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) { h.update(chunk); bytes += chunk.length }
  return { status: res.status, bytes, sha256: h.digest('hex') }
}

async function peerBytes (url: string, n: number): Promise<number> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const view = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).json() as { nodes: Array<{ self: boolean, bytes_from_peers?: number }> }
    const seen = view.nodes.find(v => v.self)?.bytes_from_peers ?? 0
    if (seen >= n) return seen
    await sleep(50)
  }
  throw new Error(`bytes_from_peers stayed below ${n}`)
}

async function run ({ mode, args: [url = '', arg] }: Command): Promise<unknown> {
  if (mode === 'json') return await (await fetch(url, { signal: AbortSignal.timeout(30_000) })).json()
  if (mode === 'get') return await bodyDigest(await registryGet(url))
  if (mode === 'probe') {
    const headers: Record<string, string> = arg === undefined ? {} : { authorization: `Bearer ${arg}` }
    const res = await request(url, { headers, signal: AbortSignal.timeout(30_000), dispatcher: anyCertificate })
    let bytes = 0
    for await (const chunk of res.body as AsyncIterable<Buffer>) bytes += chunk.length
    return { status: res.statusCode, bytes }
  }
  if (mode === 'peer-bytes') return await peerBytes(url, Number(arg))
  throw new Error(`unknown mode ${mode}`)
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue
  const cmd = JSON.parse(line) as Command
  run(cmd).then(
    value => { process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, value }) + '\n') },
    (err: unknown) => { process.stdout.write(JSON.stringify({ id: cmd.id, ok: false, error: String(err) }) + '\n') }
  )
}
