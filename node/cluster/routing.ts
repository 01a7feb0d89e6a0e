import { cidFromSha256 } from '../../protocol/cid.ts'
import type { HaveAnswer } from '../../protocol/messages.ts'
import { isKeyName, nameId, nameOfKey, wireKey } from '../../protocol/names.ts'
import type { BlobName } from '../../protocol/names.ts'
import { deadline } from '../abort.ts'
import type { ActiveDownload } from '../fetch/fetcher.ts'
import type { Logger } from '../log.ts'
import type { BlobStore } from '../store/blob-store.ts'
import type { Bans } from './bans.ts'
import type { ControlService } from './control.ts'
import type { ClusterLibp2p } from './libp2p-node.ts'
import type { Membership } from './membership.ts'

/** How long a lookup that found a complete holder waits for the other members' answers. */
const HOLDER_GRACE_MS = 100
/**
 * How long a member may leave an ask unanswered before lookups stop waiting for it (frozen, asleep). A
 * busy member answers late but answers: lookups made meanwhile still wait their budget for it.
 */
const FROZEN_AFTER_MS = 2000
/** Provider records sent at once (see ContentRouter.announce). */
const PROVIDES_AT_ONCE = 4

export interface Holder {
  readonly peer: string
  readonly answer: HaveAnswer
}

export interface LookupOptions {
  budgetMs: number
  signal?: AbortSignal
  /** How long the DHT query may go on after the lookup settled (default 10 s). */
  backgroundMs?: number
  /** Holders found after the lookup settled. */
  onHolder?: (holder: Holder) => void
  /** Ask the DHT too (default true); a refresh of what members are doing needs only the members. */
  dht?: boolean
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
  /** How long a new record waits before it goes out (see provide). Default 1 s. */
  provideDelayMs?: number
}

/**
 * Content routing: every blob held and every sha256-keyed download in flight is provided to the
 * cluster DHT (CID v1 raw of its sha256). A lookup asks every member directly (one control round trip
 * on the LAN) and settles at the first complete holder (after a moment for the other members' answers),
 * when every member has answered, or at the time budget, whichever comes first, so a cold miss never
 * waits on a silent peer. Without a complete holder among them, the DHT is asked next, in the
 * background (holders reached only through other nodes).
 */
export class ContentRouter {
  private readonly c: RoutingComponents
  private readonly sweepMs: number
  private readonly reprovideMs: number
  private readonly provided = new Map<string, number>()
  /** Names whose provide is under way (not withdrawn meanwhile: the record would come back after). */
  private readonly going = new Set<BlobName>()
  /** Names to provide at the next flush (see provide), and how many provides are under way. */
  private readonly pending: BlobName[] = []
  private announcing = 0
  private flushTimer: NodeJS.Timeout | null = null
  private readonly provideDelayMs: number
  private timer: NodeJS.Timeout | null = null
  private sweeping = false
  private readonly abort = new AbortController()
  /**
   * Members whose ask was still unanswered when a lookup's budget ran out, and since when they were
   * asked. Silent for FROZEN_AFTER_MS, they are asked by the next lookups but not waited for until they
   * answer: a frozen member (a laptop asleep, a stopped process whose connection looks alive) costs a
   * few budgets, not one per cold miss until it is found gone. One only slow under load (answering a
   * little past a budget) is still waited for: lookups that settled at once sent blobs members held
   * upstream (1.15–1.65 × with many small blobs pulled by 3–4 nodes at once).
   */
  private readonly overdue = new Map<string, number>()

  constructor (components: RoutingComponents, init: RoutingInit = {}) {
    this.c = components
    this.sweepMs = init.sweepMs ?? 15_000
    this.reprovideMs = init.reprovideMs ?? 12 * 3600_000
    this.provideDelayMs = init.provideDelayMs ?? 1000
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
    if (this.flushTimer !== null) clearTimeout(this.flushTimer)
    this.flushTimer = null
    this.pending.length = 0
    this.abort.abort()
  }

  /**
   * Provides one blob (a download just started, a blob was just committed): a sha256 or a key name.
   * The record goes out a moment later: a DHT provide is a query through the cluster, and a download's
   * first moments belong to its lookup and its first bytes (members are asked directly anyway).
   */
  provide (name: BlobName): void {
    const now = Date.now()
    const last = this.provided.get(name)
    if (last !== undefined && now - last < this.reprovideMs) return
    this.provided.set(name, now)
    this.pending.push(name)
    if (this.flushTimer === null && this.announcing === 0) {
      this.flushTimer = setTimeout(() => { this.announce() }, this.provideDelayMs)
      this.flushTimer.unref()
    }
  }

  /**
   * Sends the pending records, a few at a time: each is a walk through the DHT, and the first sweep of a
   * node with a large cache would otherwise start one per blob at once.
   */
  private announce (): void {
    this.flushTimer = null
    while (this.announcing < PROVIDES_AT_ONCE && this.pending.length > 0 && !this.abort.signal.aborted) {
      const name = this.pending.shift() as BlobName
      // Withdrawn while it waited (see withdraw).
      if (!this.provided.has(name)) continue
      this.announcing++
      this.going.add(name)
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(30_000)])
      this.c.libp2p.contentRouting.provide(cidFromSha256(nameId(name)), { signal }).catch((err: unknown) => {
        this.c.logger.debug({ name, err: (err as Error).message }, 'provide failed; retried on the next sweep')
        this.provided.delete(name)
      }).finally(() => {
        this.going.delete(name)
        this.announcing--
        this.announce()
      })
    }
  }

  /** Provides what is new since the last sweep (held blobs and downloads in flight). */
  async sweep (): Promise<void> {
    if (this.sweeping || this.c.membership.memberIds().length === 0) return
    this.sweeping = true
    const startedAt = Date.now()
    const live = new Set<BlobName>()
    try {
      for (const d of this.c.downloads()) {
        const name = nameOfKey(d.key)
        live.add(name)
        if (!isKeyName(name)) this.provide(name)
      }
      for await (const [digest] of this.c.store.index.blobs()) {
        if (this.abort.signal.aborted) return
        // Private (fetched with a client's credentials) until known public: not offered.
        if (!this.c.store.isPublic(digest)) continue
        live.add(digest)
        this.provide(digest)
      }
      this.withdraw(live, startedAt)
    } catch {
      // The index closed under us (stopping): the next sweep runs after start.
    } finally {
      this.sweeping = false
    }
  }

  /**
   * Withdraws what this node provided and no longer holds nor downloads (evicted, failed, or a URL
   * name whose download ended: members ask each other by URL directly, the blob stays provided by its
   * digest). The DHT's reprovider would otherwise renew those records for ever, and every member keep
   * them: one per blob ever cached. Names provided since the sweep began are left for the next one.
   */
  private withdraw (live: ReadonlySet<BlobName>, before: number): void {
    for (const [name, at] of this.provided) {
      if (live.has(name) || at >= before || this.going.has(name)) continue
      this.provided.delete(name)
      this.c.libp2p.contentRouting.cancelReprovide(cidFromSha256(nameId(name))).catch(() => {})
    }
  }

  /**
   * Peers holding the blob `name` (complete first). Settles HOLDER_GRACE_MS after the first complete holder,
   * when every member has answered (but those still silent from an earlier ask past its budget), or at
   * `budgetMs`, whichever comes first, so a cold miss never waits on a silent peer or on the DHT. Without a complete holder by then, the DHT (holders reached only through other nodes)
   * is asked in the background for up to `backgroundMs`; holders found later are handed to `onHolder`.
   */
  async lookup (name: BlobName, options: LookupOptions): Promise<Holder[]> {
    const key = wireKey(name)
    const found: Holder[] = []
    const asked = new Set<string>()
    const me = this.c.libp2p.peerId.toString()
    const parent = options.signal === undefined ? this.abort.signal : AbortSignal.any([this.abort.signal, options.signal])
    // The answers and the DHT query may go on after the lookup settled (their holders go to onHolder).
    const background = deadline(Math.max(options.budgetMs, options.backgroundMs ?? 10_000), parent).signal
    const early = deadline(Math.max(1, options.budgetMs), parent)
    let settled = false
    let resolveEarly!: () => void
    const done = new Promise<void>(resolve => { resolveEarly = () => { settled = true; resolve() } })
    let outstanding = 0
    /** Members this lookup waits for that have not answered yet. */
    const waiting = new Set<string>()
    const ask = (peer: string, direct: boolean): void => {
      if (peer === me || asked.has(peer) || this.c.bans.isBanned(peer)) return
      asked.add(peer)
      const silentSince = this.overdue.get(peer)
      const awaited = direct && (silentSince === undefined || Date.now() - silentSince < FROZEN_AFTER_MS)
      if (awaited) {
        outstanding++
        waiting.add(peer)
      }
      this.c.control.have(peer, key, { signal: background }).then(answer => {
        this.overdue.delete(peer)
        if (answer.state === 'none') return
        const holder = { peer, answer }
        if (settled) options.onHolder?.(holder)
        else found.push(holder)
        // The other members get a moment to answer too: a download that knows every holder from its
        // first ranges spreads them, and has another to turn to when one sends bad bytes.
        // (When they all have, the lookup settles at once: see below.)
        if (answer.state === 'complete') setTimeout(resolveEarly, HOLDER_GRACE_MS).unref()
      }, () => {
        // Failed or given up: the next lookup waits for it again (a member gone leaves the membership).
        this.overdue.delete(peer)
      }).finally(() => {
        if (!awaited) return
        waiting.delete(peer)
        outstanding--
        if (outstanding === 0) resolveEarly()
      })
    }
    const members = this.c.membership.memberIds()
    for (const peer of members) ask(peer, true)
    if (outstanding === 0) resolveEarly()
    const askedAt = Date.now()
    const outOfTime = (): void => {
      for (const peer of waiting) if (!this.overdue.has(peer)) this.overdue.set(peer, askedAt)
      resolveEarly()
    }
    early.signal.addEventListener('abort', outOfTime, { once: true })
    await done
    early.signal.removeEventListener('abort', outOfTime)
    early.clear()
    // The DHT is for holders that are not members (reached through other nodes): it is asked once the
    // members answered (or the budget ran out) without a complete holder, so its queries do not compete
    // with their answers on a busy machine. What it finds goes to onHolder.
    if (options.dht !== false && members.length > 0 && !found.some(h => h.answer.state === 'complete')) {
      (async () => {
        for await (const provider of this.c.libp2p.contentRouting.findProviders(cidFromSha256(nameId(name)), { signal: background })) ask(provider.id.toString(), false)
      })().catch(() => {})
    }
    return found.sort((a, b) => Number(b.answer.state === 'complete') - Number(a.answer.state === 'complete'))
  }
}
