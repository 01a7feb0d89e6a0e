import { canonicalUrl, digestIdentity, urlIdentity } from '../../fetch/identity.ts'
import type { Fetcher } from '../../fetch/fetcher.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import { clientRevalidates } from '../../metadata/client-revalidate.ts'
import { credentialScope } from '../../metadata/credential-scope.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import type { MetadataResult } from '../../metadata/types.ts'
import type { RewritePlan } from '../../rewrite/rules.ts'
import { serveArtifact } from '../artifact.ts'
import type { Handler } from '../types.ts'
import { findAbsoluteBaseUrl, rewriteRepodataBaseUrl } from './base-url.ts'
import { decodedHead } from './decoded-head.ts'
import { RepodataIndexer } from './indexer.ts'
import { classifyCondaPath } from './paths.ts'
import type { RepodataCoding } from './paths.ts'
import { mayHoldAbsoluteUrl, rewriteShardIndex } from './shard-index.ts'
import { lruCache } from '../../lru.ts'

export interface CondaComponents {
  metadata: MetadataCache
  /** The fetch engine; without it packages are left to the rule's strategy. */
  fetcher?: Fetcher
  rewritePlan: RewritePlan
  logger: Logger
}

const HEAD_BYTES = 64 * 1024
/** A shard of sharded repodata: named by the sha256 of its bytes. */
const SHARD = /\/([0-9a-f]{64})\.msgpack\.zst$/
/** A shard never changes (its name is its digest): kept this long whatever the rule's TTL. */
const SHARD_TTL_MS = 7 * 24 * 3600 * 1000
/** bzip2 bodies whose head was read, by sha256 (bounded: one per subdir and channel in practice). */
const BZ2_MEMO = 256

/**
 * conda channels (conda, mamba, pixi, rattler). repodata in every form (`.json`, `.json.zst`,
 * `.json.bz2`, `.jlap`, shards, `current_repodata.json`, channeldata) goes through the metadata cache
 * with its real status (probes for absent variants get upstream's 404), byte for byte except absolute
 * upstream URLs clients would fetch from: repodata's `info.base_url` (in `.json` and `.zst`) and the
 * sharded index's `base_url` / `shards_base_url` are pointed at the mirror. A `.bz2` whose base_url would
 * need that is answered 404 instead (see README.md). Packages (`.conda`, `.tar.bz2`) go through the
 * fetch engine keyed and verified by the sha256 the subdir's repodata publishes (learned when it was
 * served), else by URL.
 */
export function createCondaHandler (components: CondaComponents): Handler & { indexer: RepodataIndexer } {
  const { metadata, rewritePlan } = components
  const log = components.logger.child({ component: 'conda' })
  const indexer = new RepodataIndexer(components)
  const bz2Verdicts = lruCache<string, boolean>(BZ2_MEMO)

  const mapper = (ctx: StrategyContext) => {
    const links = rewritePlan.forRule(ctx.rule).links
    return (url: string): string | null => links.rewriteUrl(url, ctx.upstreamUrl, ctx.mirrorBase)
  }

  async function withMirrorBaseUrl (ctx: StrategyContext, result: MetadataResult, coding: Exclude<RepodataCoding, 'bz2'>): Promise<MetadataResult> {
    const map = mapper(ctx)
    const base = findAbsoluteBaseUrl(await decodedHead(result, coding, HEAD_BYTES))
    if (base === null || map(base) === null) return result
    return await metadata.rewrite(result, {
      id: `conda:base_url:${ctx.rule.name}:${ctx.mirrorBase}`,
      stream: (body) => rewriteRepodataBaseUrl(body.open(), coding, map, HEAD_BYTES)
    })
  }

  async function withMirrorShardUrls (ctx: StrategyContext, result: MetadataResult): Promise<MetadataResult> {
    if (!mayHoldAbsoluteUrl(await decodedHead(result, 'zst', HEAD_BYTES))) return result
    const map = mapper(ctx)
    return await metadata.rewrite(result, {
      id: `conda:shard-index:${ctx.rule.name}:${ctx.mirrorBase}`,
      apply: (body) => {
        try {
          return rewriteShardIndex(body, map)
        } catch (err) {
          log.warn({ err, url: ctx.upstreamUrl.href }, 'sharded repodata index could not be read; served as it came')
          return body
        }
      }
    })
  }

  /** Whether a bzip2 repodata names an absolute base_url the mirror would have to rewrite (it cannot re-encode bzip2). */
  async function bz2NeedsRewrite (ctx: StrategyContext, result: MetadataResult): Promise<boolean> {
    const key = `${result.info?.sha256 ?? ''}:${ctx.rule.name}:${ctx.mirrorBase}`
    const known = bz2Verdicts.get(key)
    if (known !== undefined) return known
    let verdict = false
    try {
      const base = findAbsoluteBaseUrl(await decodedHead(result, 'bz2', HEAD_BYTES))
      verdict = base !== null && mapper(ctx)(base) !== null
    } catch (err) {
      log.warn({ err, url: ctx.upstreamUrl.href }, 'bzip2 repodata could not be read; served as it came')
    }
    if (result.info !== null) bz2Verdicts.set(key, verdict)
    return verdict
  }

  /** The zstd (else plain) repodata beside a `.json.bz2` one, through the metadata cache; null when neither is there. */
  async function readableSibling (ctx: StrategyContext, authorization: string | undefined): Promise<{ url: URL, coding: RepodataCoding, result: MetadataResult } | null> {
    for (const [suffix, coding] of [['.zst', 'zst'], ['', 'json']] as const) {
      const url = new URL(ctx.upstreamUrl.href.replace(/\.bz2$/, suffix))
      const headers: Record<string, string> = { 'accept-encoding': coding === 'json' ? 'gzip' : 'identity' }
      if (authorization !== undefined) headers.authorization = authorization
      const result = await metadata.fetch({
        key: `conda:${canonicalUrl(url)}${credentialScope(authorization)}`, url, headers, ttlMs: ctx.rule.metadata_ttl_s * 1000, revalidate: false
      })
      if (result.status === 200) return { url, coding, result }
    }
    return null
  }

  async function notServed (ctx: StrategyContext): Promise<void> {
    const body = Buffer.from('{"error": "not served by this mirror: use repodata.json or repodata.json.zst"}\n')
    ctx.reply.code(404).headers({ 'content-type': 'application/json', 'content-length': String(body.length) })
    await ctx.reply.send(ctx.request.method === 'HEAD' ? undefined : body)
  }

  return {
    name: 'conda',
    indexer,
    async handle (ctx) {
      const method = ctx.request.method
      if (method !== 'GET' && method !== 'HEAD') return false
      const path = classifyCondaPath(ctx.upstreamUrl.pathname)
      if (path === null) return false
      if (path.kind === 'package') {
        const fetcher = components.fetcher
        if (fetcher === undefined) return false
        const sha256 = await indexer.sha256For(ctx.upstreamUrl, path.file)
        await serveArtifact(ctx, fetcher, sha256 === null ? urlIdentity(ctx.upstreamUrl) : digestIdentity({ algorithm: 'sha256', hex: sha256 }))
        return true
      }
      const repodata = path.kind === 'metadata' ? path.repodata : null
      const shardName = path.kind === 'metadata' ? SHARD.exec(ctx.upstreamUrl.pathname)?.[1] : undefined
      const plainJson = repodata === 'json' || ctx.upstreamUrl.pathname.endsWith('.json')
      // Compressed variants are fetched as they are, so their bytes stay exactly upstream's.
      const headers: Record<string, string> = { 'accept-encoding': plainJson ? 'gzip' : 'identity' }
      const authorization = ctx.request.headers.authorization
      if (authorization !== undefined) headers.authorization = authorization
      const result = await metadata.fetch({
        key: `conda:${canonicalUrl(ctx.upstreamUrl)}${credentialScope(authorization)}`,
        url: ctx.upstreamUrl,
        headers,
        ttlMs: shardName !== undefined ? SHARD_TTL_MS : ctx.rule.metadata_ttl_s * 1000,
        revalidate: clientRevalidates(ctx.request.headers),
        signal: ctx.signal
      })
      let shown = result
      if (result.status === 200 && path.kind === 'shard-index') {
        indexer.ensureShardIndex(ctx.upstreamUrl, result)
        shown = await withMirrorShardUrls(ctx, result)
      } else if (result.status === 200 && shardName !== undefined) {
        if (result.info !== null && result.info.sha256 !== shardName) log.warn({ url: ctx.upstreamUrl.href, sha256: result.info.sha256 }, 'shard bytes do not match its name')
        else indexer.ensureShard(ctx.upstreamUrl, result)
      } else if (result.status === 200 && repodata !== null) {
        if (repodata !== 'bz2') indexer.ensure(ctx.upstreamUrl, repodata, result)
        // Its packages' digests come from the same repodata in a coding read here.
        else indexer.ensureFrom(ctx.upstreamUrl, async () => await readableSibling(ctx, authorization))
        if (repodata !== 'bz2') shown = await withMirrorBaseUrl(ctx, result, repodata)
        else if (await bz2NeedsRewrite(ctx, result)) {
          await notServed(ctx)
          return true
        }
      }
      await sendMetadata(metadata, ctx.request, ctx.reply, shown, plainJson ? {} : { gzip: false })
      return true
    }
  }
}
