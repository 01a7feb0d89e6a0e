import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ClusterStatsView, NodeView, PeersView } from '../../../node/cluster/view.ts'
import type { PrivateLan } from './namespaces.ts'

const main = join(fileURLToPath(new URL('.', import.meta.url)), 'client-main.ts')

export interface GetResult { status: number, bytes: number, sha256: string }

interface Agent {
  child: ChildProcess
  waiting: Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>
}

/**
 * HTTP calls made from inside a host namespace (the test's own namespace has no route to the LAN),
 * through one long-lived client process per namespace (client-main.ts), stopped with the LAN.
 */
export class LanClient {
  private readonly lan: PrivateLan
  private readonly agents = new Map<string, Agent>()
  private nextId = 1

  constructor (lan: PrivateLan) {
    this.lan = lan
  }

  /** Starts the client processes of these namespaces now (each takes a while to boot on a busy machine). */
  warm (...namespaces: string[]): void {
    for (const ns of namespaces) this.agent(ns)
  }

  async json<T> (ns: string, url: string): Promise<T> {
    return await this.call(ns, 'json', url) as T
  }

  /** A blob through a node, as a registry client gets it. */
  async get (ns: string, url: string): Promise<GetResult> {
    return await this.call(ns, 'get', url) as GetResult
  }

  /** A plain GET, with a bearer token if given. */
  async probe (ns: string, url: string, bearer?: string): Promise<{ status: number, bytes: number }> {
    return await this.call(ns, 'probe', url, ...(bearer === undefined ? [] : [bearer])) as { status: number, bytes: number }
  }

  /** Waits until the node in `ns` counts at least `n` bytes from peers; returns its count. */
  async peerBytesAtLeast (ns: string, n: number): Promise<number> {
    return await this.call(ns, 'peer-bytes', 'http://127.0.0.1:8081/cluster/stats', String(n)) as number
  }

  async clusterStats (ns: string): Promise<ClusterStatsView> {
    return await this.json<ClusterStatsView>(ns, 'http://127.0.0.1:8081/cluster/stats')
  }

  /** The node's own entry in its /cluster/stats. */
  async self (ns: string): Promise<NodeView> {
    return (await this.clusterStats(ns)).nodes.find(n => n.self) as NodeView
  }

  async peers (ns: string): Promise<PeersView> {
    return await this.json<PeersView>(ns, 'http://127.0.0.1:8081/peers')
  }

  /** Bytes the registry sent so far (asked from its namespace). */
  async registrySent (ns: string, base: string): Promise<number> {
    return (await this.json<{ sent: number }>(ns, `${base}/_stats`)).sent
  }

  /** Waits (polling /stats) until the node holds `count` committed blobs; returns what it holds. */
  async committed (ns: string, count: number): Promise<number> {
    let seen = -1
    for (let i = 0; i < 150; i++) {
      seen = (await this.json<{ cache: { file_count: number } }>(ns, 'http://127.0.0.1:8081/stats')).cache.file_count
      if (seen >= count) break
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    return seen
  }

  private async call (ns: string, mode: string, ...args: string[]): Promise<unknown> {
    const agent = this.agent(ns)
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      agent.waiting.set(id, { resolve, reject })
      agent.child.stdin?.write(JSON.stringify({ id, mode, args }) + '\n')
    })
  }

  private agent (ns: string): Agent {
    const running = this.agents.get(ns)
    if (running !== undefined) return running
    const child = this.lan.spawn(ns, [process.execPath, main], process.env, { stdin: true })
    const a: Agent = { child, waiting: new Map() }
    this.agents.set(ns, a)
    let err = ''
    child.stderr?.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-2000) })
    child.stdin?.on('error', () => {})
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', line => {
      const m = JSON.parse(line) as { id: number, ok: boolean, value?: unknown, error?: string }
      const w = a.waiting.get(m.id)
      a.waiting.delete(m.id)
      if (m.ok) w?.resolve(m.value)
      else w?.reject(new Error(`${ns}: ${String(m.error)}`))
    })
    child.once('exit', (code, signal) => {
      if (this.agents.get(ns) === a) this.agents.delete(ns)
      for (const w of a.waiting.values()) w.reject(new Error(`${ns}: client exited (${String(code ?? signal)}): ${err}`))
      a.waiting.clear()
    })
    return a
  }
}
