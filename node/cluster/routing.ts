import { cidFromSha256 } from '../../protocol/cid.ts'
import type { HaveAnswer } from '../../protocol/messages.ts'
import type { ActiveDownload } from '../fetch/fetcher.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { Bans } from './bans.ts'
import type { ControlService } from './control.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'
import type { Membership } from './membership.ts'

export interface Holder {
  readonly peer: string
  readonly answer: HaveAnswer
}

export interface RoutingComponents {
  libp2p: ClusterLibp2p
  membership: Membership
  control: ControlService
  store: BlobStore
  downloads: () => ActiveDownload[]
  bans: Bans
  logger: Logger
}

export interface RoutingInit {
  /** How often new blobs and downloads are provided to the DHT. */
  sweepMs?: number
  /** Every provider record is renewed this often. */
  reprovideMs?: number
}

/**
 * Content routing: every blob held and every sha256-keyed download in flight is provided to the
 * cluster DHT (CID v1 raw of its sha256). A lookup asks every member directly (one control round trip
 * on the LAN) and the DHT at once, and settles at the first complete holder, when every member has
 * said no, or at the time budget, whichever comes first, so a cold miss never waits on a silent peer.
 */
export class ContentRouter {
  private readonly c: RoutingComponents
  private readonly sweepMs: number
  private readonly reprovideMs: number
  private readonly provided = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null
  private sweeping = false
  private readonly abort = new AbortController()

  constructor (components: RoutingComponents, init: RoutingInit = {}) {
    this.c = components
    this.sweepMs = init.sweepMs ?? 15_000
    this.reprovideMs = init.reprovideMs ?? 12 * 3600_000
  }

  start (): void {
    if (this.timer !== null) return
    this.timer = setInterval(() => { this.sweep().catch(() => {}) }, this.sweepMs)
    this.timer.unref()
    this.sweep().catch(() => {})
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.abort.abort()
  }

  /** Provides one digest now (a download just started, a blob was just committed). */
  provide (digest: string): void {
    const now = Date.now()
    const last = this.provided.get(digest)
    if (last !== undefined && now - last < this.reprovideMs) return
    this.provided.set(digest, now)
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(30_000)])
    this.c.libp2p.contentRouting.provide(cidFromSha256(digest), { signal }).catch((err: unknown) => {
      this.c.logger.debug({ digest, err: (err as Error).message }, 'provide failed; retried on the next sweep')
      this.provided.delete(digest)
    })
  }

  /** Provides what is new since the last sweep (held blobs and downloads in flight). */
  async sweep (): Promise<void> {
    if (this.sweeping || this.c.membership.memberIds().length === 0) return
    this.sweeping = true
    try {
      for (const d of this.c.downloads()) if (d.key.startsWith('sha256:')) this.provide(d.key.slice(7))
      for await (const [digest] of this.c.store.index.blobs()) {
        if (this.abort.signal.aborted) break
        this.provide(digest)
      }
    } catch {
      // The index closed under us (stopping): the next sweep runs after start.
    } finally {
      this.sweeping = false
    }
  }

  /**
   * Peers holding `digest` (complete first). Settles early as described above; `budgetMs` bounds the
   * wait for members that do not answer.
   */
  async lookup (digest: string, options: { budgetMs: number, signal?: AbortSignal }): Promise<Holder[]> {
    const key = `sha256:${digest}`
    const found: Holder[] = []
    const asked = new Set<string>()
    const me = this.c.libp2p.peerId.toString()
    const stop = new AbortController()
    const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(Math.max(1, options.budgetMs)), ...(options.signal === undefined ? [] : [options.signal])])
    let resolveDone!: () => void
    const done = new Promise<void>(resolve => { resolveDone = resolve })
    let outstanding = 0
    const ask = (peer: string): void => {
      if (peer === me || asked.has(peer) || this.c.bans.isBanned(peer)) return
      asked.add(peer)
      outstanding++
      this.c.control.have(peer, key, { signal }).then(answer => {
        if (answer.state === 'none') return
        found.push({ peer, answer })
        if (answer.state === 'complete') resolveDone()
      }, () => {}).finally(() => {
        outstanding--
        if (outstanding === 0 && directDone) resolveDone()
      })
    }
    let directDone = false
    for (const peer of this.c.membership.memberIds()) ask(peer)
    directDone = true
    if (outstanding === 0) resolveDone()
    // Providers the DHT knows of that are not (yet) direct members.
    const dht = (async () => {
      if (this.c.membership.memberIds().length === 0) return
      for await (const provider of this.c.libp2p.contentRouting.findProviders(cidFromSha256(digest), { signal })) {
        const id = provider.id.toString()
        if (!asked.has(id)) {
          directDone = false
          ask(id)
          directDone = true
        }
      }
    })().catch(() => {})
    signal.addEventListener('abort', resolveDone, { once: true })
    await done
    stop.abort()
    await dht
    signal.removeEventListener('abort', resolveDone)
    return found.sort((a, b) => Number(b.answer.state === 'complete') - Number(a.answer.state === 'complete'))
  }
}
