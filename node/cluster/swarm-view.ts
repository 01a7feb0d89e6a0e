import { setTimeout as sleep } from 'node:timers/promises'
import { WireError } from '../../protocol/errors.ts'
import type { BlobName } from '../../protocol/names.ts'
import { isAimirrorError } from '../errors.ts'
import { waitFor } from '../abort.ts'
import type { Logger } from '../log.ts'
import type { Bans } from './bans.ts'
import { coveredTo } from './have-answer.ts'
import type { PeerClient } from './peer-client.ts'
import type { Holder, LookupOptions } from './routing.ts'

export interface SwarmViewComponents {
  peers: PeerClient
  bans: Bans
  lookup: (name: BlobName, options: LookupOptions) => Promise<Holder[]>
  logger: Logger
  /** This node's peer id (never one of the others). */
  self: string
  /** False once a peer left the cluster (its process died, its connection closed). */
  isMember?: (peer: string) => boolean
  /**
   * Whether a peer answers a ping within a short time (a frozen or dead process does not). A ping that
   * only timed out while `heardRecently()` (the peer answered or asked something meanwhile) is a slow
   * peer's: alive.
   */
  alive?: (peer: string, heardRecently: () => boolean) => Promise<boolean>
  /**
   * When (Date.now()) this node last came back from a pause (stopped, suspended), 0 if never: for a
   * while after it, what it knew of the members is looked at again before ranges go upstream.
   */
  returnedAt?: () => number
}

export interface SwarmViewInit {
  /**
   * The blob as members are asked about it: its sha256 hex (what the download is verified against,
   * learned from upstream metadata), another published digest's key, or in a keyed cluster its URL name
   * (protocol/names.ts).
   */
  name: BlobName
  /** How long the first look waits for the cluster before the download goes upstream. */
  lookupMs: number
  /** How often the view is refreshed while ranges are asked for. */
  refreshMs?: number
  /** After a pause of this node, how long ranges wait for the members it lost to rejoin (default 3 s). */
  rejoinWaitMs?: number
}

/**
 * After a pause of this node, how long its ranges wait for the members it lost. They see it leave while
 * it is stopped and take it back about a second after it returns (its connections are dialled again);
 * without the wait every connection sent one step upstream in that second (39 MiB of a 250 MiB blob).
 */
const REJOIN_WAIT_MS = 3000

/** How long the look taken before a shared download's ranges are picked may wait for the other downloaders. */
const SHARED_LOOKUP_MS = 500
/** A peer whose requests keep failing this long (not refusing: see REFUSALS) is left out of the download. */
const FAILING_MS = 5000
/** Answers that end a peer's part in a download at once. */
const REFUSALS: ReadonlySet<string> = new Set(['NOT_MEMBER', 'WRONG_CLUSTER', 'BAD_MESSAGE'])
/** How long a downloader that stopped serving its download in flight may take to commit the blob. */
const COMMIT_PATIENCE_MS = 2000
/** The view stops being refreshed this long after the download last asked for a range (it ended). */
const IDLE_STOP_MS = 10_000
/** A ping's answer stands for this long: every connection of the download asks at about the same time. */
const PING_FRESH_MS = 1000
/**
 * A member whose ping timed out but that answered a look or asked about the blob this recently is
 * running, only slow: on a loaded machine a ping's round trip through libp2p takes seconds (2–4 s seen
 * with four nodes on two cores) while the member goes on answering, and one declared gone there had
 * its units fetched upstream again by the others.
 */
const SIGN_OF_LIFE_MS = 2000

/**
 * What one download knows of the other members about its blob: who holds it complete, who downloads it
 * too (with the ranges they have or fetch), and which of them failed it. Kept fresh by looks at the
 * cluster while the download asks for ranges, and by members asking this node (`heardFrom`).
 */
export class SwarmView {
  private readonly c: SwarmViewComponents
  private readonly init: SwarmViewInit
  private readonly answers = new Map<string, Holder['answer']>()
  private firstLookup: Promise<void> | null = null
  private secondLookup: Promise<void> | null = null
  private lookedAt = 0
  private lookups = 0
  /** The look at the members under way, and when it started. */
  private looking: { at: number, done: Promise<void> } | null = null
  private refresher: NodeJS.Timeout | null = null
  private lastAskAt = 0
  private readonly failed = new Set<string>()
  /** When requests to a peer started failing without a success since (see peerFailed). */
  private readonly failingSince = new Map<string, number>()
  private readonly holderChecks = new Map<string, Promise<boolean>>()
  private readonly pings = new Map<string, { at: number, alive: Promise<boolean> }>()
  /** When each member last answered a look or asked about the blob. */
  private readonly heardAt = new Map<string, number>()
  private readonly suspended = new Map<string, number>()
  private lostAt = 0
  /** When the download first asked for a range. */
  startedAt = 0
  /** The download ended: no more looks. */
  private stopped = false

  constructor (components: SwarmViewComponents, init: SwarmViewInit) {
    this.c = components
    this.init = init
  }

  /** The download ended: its periodic looks stop at once, not IDLE_STOP_MS after its last range. */
  stop (): void {
    this.stopped = true
    if (this.refresher !== null) clearInterval(this.refresher)
    this.refresher = null
  }

  /**
   * Resolves when the view is good enough to route a range: the first look is awaited (within its
   * budget); once the first response is in (`responses` > 0), a second one; later ones refresh it in
   * the background.
   */
  async ready (responses: number): Promise<void> {
    this.lastAskAt = Date.now()
    if (this.firstLookup === null) {
      this.startedAt = Date.now()
      this.firstLookup = this.lookup(this.init.lookupMs)
      await this.firstLookup
      return
    }
    await this.firstLookup
    // The first response is in and the other ranges are about to be picked: members asked at the same
    // moment have started their downloads by now. Without this second look every connection would take
    // its first range from the upstream before the split is known. When another member is downloading
    // the blob too, it waits longer for its answer (a busy member answers late): without the ranges it
    // has fetched, every unit this node owns goes to the upstream, those it took in its first burst too.
    if (responses > 0) {
      const sharing = [...this.answers.values()].some(a => a.state === 'partial')
      this.secondLookup ??= this.lookup(sharing ? Math.max(this.init.lookupMs, SHARED_LOOKUP_MS) : this.init.lookupMs, false, 2000)
      await this.secondLookup
    }
    if (this.stopped) return
    this.refresh()
    // Ranges are asked for in bursts (every connection at the start, then as ranges complete, seconds
    // later): the view is kept fresh in between, so the next burst already knows the split.
    this.refresher ??= setInterval(() => {
      if (Date.now() - this.lastAskAt > IDLE_STOP_MS) {
        clearInterval(this.refresher ?? undefined)
        this.refresher = null
      } else this.refresh()
    }, 100)
    this.refresher.unref()
  }

  /**
   * A member asked whether this node has the blob: only a download asks, so it is downloading the blob
   * too. Taken into the split at once rather than at the next refresh, whose answer a loaded member
   * may give hundreds of ms later while both fetch the same units.
   */
  heardFrom (peer: string): void {
    if (peer === this.c.self) return
    this.heardAt.set(peer, Date.now())
    // One left out for missing a ping (frozen for a few seconds, too short for the cluster to drop it)
    // is back: its units are its own again, before the others fetch them from the upstream too.
    if (this.suspended.has(peer)) this.unsuspend(peer)
    if (this.answers.has(peer) || !this.usable(peer)) return
    this.answers.set(peer, { t: 'have', state: 'partial' })
    this.c.logger.debug({ name: this.init.name, peer: peer.slice(-6) }, 'swarm view: a member downloading the blob asked')
  }

  usable (peer: string): boolean {
    return !this.failed.has(peer) && !this.c.bans.isBanned(peer) && this.c.isMember?.(peer) !== false && !this.isSuspended(peer)
  }

  /** Leaves a peer out of this download for `ms` (it stopped answering; it may come back). */
  suspend (peer: string, ms: number): void {
    this.suspended.set(peer, Date.now() + ms)
    this.pings.delete(peer)
    this.lost()
  }

  /**
   * The peer is back (it joined the cluster again). What the view knows of it is old: after a freeze of
   * its own this node sees every member leave and return, and each holds more by now; looked at again
   * at once rather than at the next periodic refresh.
   */
  unsuspend (peer: string): void {
    this.suspended.delete(peer)
    this.pings.delete(peer)
    if (this.lookups === 0) return
    this.lookedAt = 0
    this.refresh()
  }

  /** A member was lost to this download (gone, or left the cluster). */
  lost (): void {
    this.lostAt = Date.now()
  }

  lostRecently (ms: number): boolean {
    return Date.now() - this.lostAt < ms
  }

  private isSuspended (peer: string): boolean {
    const until = this.suspended.get(peer)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.suspended.delete(peer)
    return false
  }

  /** Usable members in the given state. */
  members (state: 'complete' | 'partial'): string[] {
    return [...this.answers].filter(([peer, a]) => a.state === state && this.usable(peer)).map(([peer]) => peer)
  }

  /**
   * Just back from a pause of this node (REJOIN_WAIT_MS at most): waits for the members it lost to
   * rejoin and for a look at the members since its return; true when it did (a range no member could
   * serve is routed again). What it knew of them is as old as the pause, and they took over its units
   * meanwhile (a 5 s stop of one of five nodes sent 14 MiB of those upstream twice).
   */
  async caughtUpAfterPause (signal?: AbortSignal): Promise<boolean> {
    const returnedAt = this.c.returnedAt
    if (returnedAt === undefined) return false
    const window = this.init.rejoinWaitMs ?? REJOIN_WAIT_MS
    const back = (): boolean => { const at = returnedAt(); return at !== 0 && Date.now() - at < window }
    if (!back()) return false
    const rejoined = await this.untilRejoined(back, signal)
    return await this.lookedSince(returnedAt(), signal) || rejoined
  }

  /**
   * While `waiting()` holds (this node just came back from a pause) and members this download knew are
   * outside the cluster, waits for them to be members again. True when it waited (route the range again).
   */
  private async untilRejoined (waiting: () => boolean, signal?: AbortSignal): Promise<boolean> {
    let waited = false
    // Looked at every 100 ms (members rejoin within a second or two; the window ends without an event).
    while (waiting() && this.outside() && signal?.aborted !== true) {
      waited = true
      await sleep(100, undefined, { signal }).catch(() => {})
    }
    return waited
  }

  /** Whether a peer this download knew is no member now (it left, or this node was away). */
  private outside (): boolean {
    return [...this.answers.keys()].some(peer => this.c.isMember?.(peer) === false)
  }

  /** Whether any usable member takes part in this blob. */
  shared (): boolean {
    return [...this.answers.keys()].some(peer => this.usable(peer))
  }

  answer (peer: string): Holder['answer'] | undefined {
    return this.answers.get(peer)
  }

  /** Not downloading the blob (any more): forgotten until a look says otherwise. */
  forget (peer: string): void {
    this.answers.delete(peer)
  }

  /**
   * A downloader whose last report has [start, end] (inclusive): every piece in its bitmap, or a range
   * it has on disk or is fetching from its upstream that starts at or before `start` (then `end` is
   * cut to that range).
   */
  downloaderWith (downloaders: string[], start: number, end: number): { peer: string, end: number } | null {
    for (const peer of downloaders) {
      const to = coveredTo(this.answers.get(peer), start, end)
      if (to !== null) return { peer, end: to }
    }
    return null
  }

  /**
   * Whether a downloader that stopped serving the blob in flight holds it complete within
   * COMMIT_PATIENCE_MS (it verified the blob and is moving it into its store). One check per peer at a
   * time: every connection of the download meets the same answer.
   */
  async becameHolder (peer: string, signal?: AbortSignal): Promise<boolean> {
    let check = this.holderChecks.get(peer)
    if (check === undefined) {
      check = this.pollHolder(peer, signal).finally(() => { this.holderChecks.delete(peer) })
      this.holderChecks.set(peer, check)
    }
    return await check
  }

  /** Whether a usable peer still answers a ping (one for all who ask within PING_FRESH_MS). */
  async alive (peer: string): Promise<boolean> {
    if (!this.usable(peer)) return false
    const ping = this.c.alive
    if (ping === undefined) return true
    const last = this.pings.get(peer)
    if (last !== undefined && Date.now() - last.at < PING_FRESH_MS) return await last.alive
    const alive = ping(peer, () => Date.now() - (this.heardAt.get(peer) ?? 0) < SIGN_OF_LIFE_MS).catch(() => false)
    this.pings.set(peer, { at: Date.now(), alive })
    return await alive
  }

  /** A request to a peer brought a response. */
  succeeded (peer: string): void {
    this.failingSince.delete(peer)
  }

  /**
   * A request to a peer failed. A refusal ends the peer's part in this download; anything else (a
   * closed stream, a timeout, a busy peer) does only when it goes on for FAILING_MS without a success:
   * a member dropped at one broken stream left its whole share to the upstream (0.15 × the blob).
   * Rethrows when the download itself was aborted.
   */
  peerFailed (peer: string, err: unknown, signal?: AbortSignal): void {
    if (signal?.aborted === true) throw err
    if (isAimirrorError(err) && err.code === 'ERR_ABORTED') throw err
    const now = Date.now()
    const since = this.failingSince.get(peer) ?? now
    this.failingSince.set(peer, since)
    const refused = err instanceof WireError && REFUSALS.has(err.code)
    if (!refused && now - since < FAILING_MS) {
      this.c.logger.debug({ peer, err: (err as Error).message }, 'peer request failed; trying elsewhere this time')
      return
    }
    this.exclude(peer)
    this.c.logger.debug({ peer, err: (err as Error).message }, 'peer source failed; trying elsewhere')
  }

  /** Leaves a peer out of the rest of this download (it failed it or sent bad bytes). */
  exclude (peer: string): void {
    this.failed.add(peer)
  }

  /**
   * Early refreshes come quickly: nodes asked "at the same moment" start tens or hundreds of ms apart,
   * and until one is seen its units are fetched twice. (Every 50 ms cost more CPU than it saved.)
   * Members answering after the half second are still recorded, for up to 2 s (busy nodes answer late).
   */
  private refresh (): void {
    const every = Math.min(this.init.refreshMs ?? 500, 100 * 2 ** this.lookups)
    if (this.looking !== null || Date.now() - this.lookedAt < every) return
    this.look().catch(() => {})
  }

  private async look (): Promise<void> {
    const current = { at: Date.now(), done: Promise.resolve() }
    current.done = this.lookup(500, false, 2000).catch(() => {}).finally(() => { if (this.looking === current) this.looking = null })
    this.looking = current
    await current.done
  }

  /**
   * Waits for a look at the members that started at or after `since` (wall clock), starting one unless
   * it is under way. False when the last finished look is that recent already (nothing newer to learn).
   */
  private async lookedSince (since: number, signal?: AbortSignal): Promise<boolean> {
    if (this.lookups === 0 || (this.looking === null && this.lookedAt >= since)) return false
    await waitFor(this.looking !== null && this.looking.at >= since ? this.looking.done : this.look(), signal)
    return true
  }

  private async lookup (budgetMs: number, dht = true, lateMs = budgetMs): Promise<void> {
    this.lookedAt = Date.now()
    this.lookups++
    const record = (h: Holder): void => {
      if (h.peer === this.c.self) return
      this.answers.set(h.peer, h.answer)
      this.heardAt.set(h.peer, Date.now())
    }
    // The first lookup lets the DHT go on in the background (holders it finds later are recorded);
    // refreshes ask the members only.
    const started = Date.now()
    const found = await this.c.lookup(this.init.name, { budgetMs, backgroundMs: dht ? undefined : lateMs, onHolder: record, dht }).catch(() => [])
    for (const h of found) record(h)
    this.c.logger.debug({ name: this.init.name, lookup: this.lookups, ms: Date.now() - started, found: found.map(h => `${h.peer.slice(-6)}:${h.answer.state}`) }, 'swarm view')
  }

  private async pollHolder (peer: string, signal?: AbortSignal): Promise<boolean> {
    const until = Date.now() + COMMIT_PATIENCE_MS
    for (;;) {
      // The cached ticket is for the download in flight: a new one says whether the blob is committed.
      this.c.peers.forgetTicket(peer, this.init.name)
      const t = await this.c.peers.ticket(peer, this.init.name, { signal }).catch(() => null)
      if (t?.complete === true) {
        this.answers.set(peer, { t: 'have', state: 'complete', size: t.size })
        return true
      }
      if (signal?.aborted === true || Date.now() + 100 > until || !this.usable(peer)) return false
      await sleep(100, undefined, { signal }).catch(() => {})
    }
  }
}
