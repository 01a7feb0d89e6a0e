import { createHash } from 'node:crypto'
import { isAimirrorError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { AwayOrigins } from '../../upstream/away.ts'
import { discardBody } from '../../upstream/request.ts'
import type { AccessControl, Principal } from './access.ts'
import { acceptVariant } from './accept.ts'
import { parseDigest } from './api-path.ts'
import { deadline, readSmall, waitFor } from './io.ts'
import type { RegistryClient } from './registry-client.ts'
import type { OciState, TagRecord } from './state.ts'
import type { TokenScope } from './upstream-tokens.ts'

export type TagOutcome =
  /** `bytes`: the manifest itself, when upstream had to be asked with a GET (no digest on its HEAD). */
  | { readonly kind: 'record', readonly record: TagRecord, readonly stale: boolean, readonly bytes?: Buffer }
  /** Upstream's answer about this tag for this principal (401, 403, 404, 429 ...); `headers` worth relaying. */
  | { readonly kind: 'refused', readonly status: number, readonly headers: Readonly<Record<string, string>> }

export interface TagResolverInit {
  /** With a record at hand, wait this long for upstream before answering stale. Default 10 s. */
  staleGraceMs?: number
  now?: () => number
}

export const MANIFEST_LIMIT = 4 << 20
const RELAYED = ['www-authenticate', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'docker-ratelimit-source']

const SINGLE_MANIFESTS = new Set(['application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.manifest.v1+json'])

/** A tag's name across Accept variants and credentials. */
function tagName (scope: TokenScope, tag: string): string {
  return [scope.upstream, scope.repo, tag].join('\n')
}

/** Upstream trouble rather than an answer about the tag: a recorded resolution is served instead. */
function troubled (status: number): boolean {
  return status >= 500 || status === 429 || status === 408
}

/**
 * Tag → manifest digest, per (repository, tag, Accept variant, client credential). A record younger
 * than the TTL answers alone; an older one is revalidated with a HEAD, which Docker Hub does not count
 * as a pull (GET would); when upstream is down, failing or rate-limiting, the record answers stale. The
 * HEAD runs with the asking client's credential, so it doubles as that client's access check.
 * Anonymous records are kept on disk; a credential's records only in memory.
 */
export class TagResolver {
  private readonly client: RegistryClient
  private readonly state: OciState
  private readonly access: AccessControl
  private readonly log: Logger
  private readonly staleGraceMs: number
  private readonly now: () => number
  private readonly flights = new Map<string, Promise<TagOutcome>>()
  private readonly away: AwayOrigins

  constructor (components: { client: RegistryClient, state: OciState, access: AccessControl, logger: Logger, away?: AwayOrigins }, init: TagResolverInit = {}) {
    this.client = components.client
    this.away = components.away ?? new AwayOrigins({ logger: components.logger })
    this.state = components.state
    this.access = components.access
    this.log = components.logger
    this.staleGraceMs = init.staleGraceMs ?? 10_000
    this.now = init.now ?? Date.now
  }

  async resolve (scope: TokenScope, who: Principal, tag: string, accept: readonly string[], ttlMs: number,
    options: { signal?: AbortSignal } = {}): Promise<TagOutcome> {
    const key = [scope.upstream, scope.repo, tag, acceptVariant(accept), who.cred?.key ?? '-'].join('\n')
    const record = await this.state.getTag(key)
    if (record !== undefined && this.now() - record.checkedAt < ttlMs) return { kind: 'record', record, stale: false }
    let flight = this.flights.get(key)
    if (flight === undefined) {
      // Shared by everyone asking the same thing; not tied to one client's signal.
      flight = this.revalidate(key, scope, who, tag, accept, record).finally(() => this.flights.delete(key))
      flight.catch(() => {})
      this.flights.set(key, flight)
    }
    // A registry that just failed to answer is still asked (its answer ends that), but not waited for.
    if (record !== undefined && this.away.isAway(new URL(scope.upstream).origin)) return this.stale(scope, tag, record, 'upstream away')
    return await waitFor(flight, options.signal)
  }

  private async revalidate (key: string, scope: TokenScope, who: Principal, tag: string, accept: readonly string[],
    record: TagRecord | undefined): Promise<TagOutcome> {
    const signal = record === undefined ? undefined : deadline(this.staleGraceMs)
    const path = `/v2/${scope.repo}/manifests/${tag}`
    const origin = new URL(scope.upstream).origin
    const askedAt = Date.now()
    try {
      const res = await this.client.request({ scope, cred: who.cred, method: 'HEAD', path, headers: accept, signal })
      this.away.answered(origin)
      discardBody(res.body)
      const digest = parseDigest(res.headers['docker-content-digest'] ?? '')
      if (res.status >= 200 && res.status < 300 && digest !== null) {
        const size = Number(res.headers['content-length'] ?? '')
        const fresh: TagRecord = {
          digest: digest.value,
          contentType: res.headers['content-type'] ?? '',
          size: Number.isFinite(size) ? size : -1,
          checkedAt: this.now()
        }
        return await this.keep(key, scope, who, fresh, { tag, accept })
      }
      if (res.status >= 200 && res.status < 300) return await this.viaGet(key, scope, who, tag, accept)
      if (troubled(res.status)) {
        const known = record ?? await this.publicAnswer(scope, tag, accept)
        if (known !== undefined) return this.stale(scope, tag, known, `status ${res.status}`)
      }
      const headers: Record<string, string> = {}
      for (const name of RELAYED) if (res.headers[name] !== undefined) headers[name] = res.headers[name] as string
      return { kind: 'refused', status: res.status, headers }
    } catch (err) {
      // Not answering within the grace time is the registry being away for its clients too.
      if (signal?.aborted === true) this.away.noAnswer(origin, askedAt)
      else this.away.failed(origin, err, askedAt)
      const code = isAimirrorError(err) ? err.code : ''
      const unavailable = code === 'ERR_UPSTREAM_UNREACHABLE' || code === 'ERR_UPSTREAM_TIMEOUT' || code === 'ERR_UPSTREAM_PROTOCOL' || code === 'ERR_ABORTED'
      const known = unavailable ? record ?? await this.publicAnswer(scope, tag, accept) : undefined
      if (known !== undefined) return this.stale(scope, tag, known, code)
      throw err
    }
  }

  /** A registry that gives no digest on HEAD: GET the manifest (a pull) and hash it. */
  private async viaGet (key: string, scope: TokenScope, who: Principal, tag: string, accept: readonly string[]): Promise<TagOutcome> {
    const path = `/v2/${scope.repo}/manifests/${tag}`
    const res = await this.client.request({ scope, cred: who.cred, method: 'GET', path, headers: accept })
    if (res.status < 200 || res.status >= 300) {
      discardBody(res.body)
      return { kind: 'refused', status: res.status, headers: {} }
    }
    const bytes = await readSmall(res.body, MANIFEST_LIMIT, new URL(scope.upstream).origin)
    const fresh: TagRecord = {
      digest: 'sha256:' + createHash('sha256').update(bytes).digest('hex'),
      contentType: res.headers['content-type'] ?? '',
      size: bytes.length,
      checkedAt: this.now()
    }
    const out = await this.keep(key, scope, who, fresh, { tag, accept })
    return { ...out, bytes }
  }

  private async keep (key: string, scope: TokenScope, who: Principal, record: TagRecord, asked: { tag: string, accept: readonly string[] }): Promise<TagOutcome & { kind: 'record' }> {
    await this.access.confirm(scope, who, record.digest)
    await this.state.putTag(key, record, who.cred === null)
    if (who.cred === null) await this.state.putPublicVariant(tagName(scope, asked.tag), acceptVariant(asked.accept), record)
    return { kind: 'record', record, stale: false }
  }

  /**
   * With the registry away and no answer for this client's Accept and credentials: an anonymous answer
   * (the tag is public) of a manifest this client accepts, the newest such. Another client's record, so a
   * logged-in docker or a containerd beside docker still pulls from the cache.
   */
  private async publicAnswer (scope: TokenScope, tag: string, accept: readonly string[]): Promise<TagRecord | undefined> {
    const takes = new Set(acceptVariant(accept).split(',').filter(t => t !== ''))
    let best: TagRecord | undefined
    for (const r of Object.values(await this.state.publicVariants(tagName(scope, tag)))) {
      // A client that names no type gets what registries give it then: a single image's manifest.
      const fits = takes.size === 0 ? SINGLE_MANIFESTS.has(r.contentType) : takes.has(r.contentType.split(';')[0]?.trim().toLowerCase() ?? '')
      if (fits && (best === undefined || r.checkedAt > best.checkedAt)) best = r
    }
    return best
  }

  private stale (scope: TokenScope, tag: string, record: TagRecord, why: string): TagOutcome {
    this.log.warn({ upstream: scope.upstream, repo: scope.repo, tag, why }, 'upstream unavailable; answering the tag from cache (stale)')
    return { kind: 'record', record, stale: true }
  }
}
