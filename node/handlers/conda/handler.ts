import { canonicalUrl, digestIdentity, urlIdentity } from '../../fetch/identity.ts'
import type { Fetcher } from '../../fetch/fetcher.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import { clientRevalidates } from '../../metadata/client-revalidate.ts'
import { sendMetadata } from '../../metadata/serve.ts'
import type { MetadataResult } from '../../metadata/types.ts'
import type { RewritePlan } from '../../rewrite/rules.ts'
import { serveArtifact } from '../artifact.ts'
import type { Handler } from '../types.ts'
import { decodeRepodata, encodeRepodata, findAbsoluteBaseUrl, rewriteBaseUrl } from './base-url.ts'
import { RepodataIndexer } from './indexer.ts'
import { classifyCondaPath } from './paths.ts'
import type { RepodataCoding } from './paths.ts'
import { decoderFor } from './repodata-index.ts'

export interface CondaComponents {
  metadata: MetadataCache
  /** The fetch engine; without it packages are left to the rule's strategy. */
  fetcher?: Fetcher
  rewritePlan: RewritePlan
  logger: Logger
}

const HEAD_BYTES = 64 * 1024

/** The first `n` decoded bytes of a repodata body, as latin1 text. */
async function readHead (result: MetadataResult, coding: RepodataCoding, n: number): Promise<string> {
  const decoder = decoderFor(coding)
  if (decoder === undefined) return ''
  const raw = result.body.open()
  const stream = decoder === null ? raw : raw.pipe(decoder)
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk)
      size += chunk.length
      if (size >= n) break
    }
  } finally {
    raw.destroy()
    stream.destroy()
  }
  return Buffer.concat(chunks).subarray(0, n).toString('latin1')
}

/**
 * conda channels (conda, mamba, pixi, rattler). repodata in every form (`.json`, `.json.zst`,
 * `.json.bz2`, `.jlap`, shards, `current_repodata.json`, channeldata) goes through the metadata cache
 * with its real status (probes for absent variants get upstream's 404), byte for byte except an absolute
 * `info.base_url`, which is pointed at the mirror. Packages (`.conda`, `.tar.bz2`) go through the fetch
 * engine keyed and verified by the sha256 the subdir's repodata publishes (learned when it was served),
 * else by URL.
 */
export function createCondaHandler (components: CondaComponents): Handler & { indexer: RepodataIndexer } {
  const { metadata, rewritePlan } = components
  const indexer = new RepodataIndexer(components)

  async function withMirrorBaseUrl (ctx: StrategyContext, result: MetadataResult, coding: RepodataCoding): Promise<MetadataResult> {
    const base = findAbsoluteBaseUrl(await readHead(result, coding, HEAD_BYTES))
    if (base === null) return result
    const links = rewritePlan.forRule(ctx.rule).links
    if (links.rewriteUrl(base, ctx.upstreamUrl, ctx.mirrorBase) === null) return result
    return await metadata.rewrite(result, {
      id: `conda:base_url:${ctx.rule.name}:${ctx.mirrorBase}`,
      apply: (body) => {
        const text = decodeRepodata(body, coding)
        if (text === null) return body
        const out = rewriteBaseUrl(text.toString('latin1'), url => links.rewriteUrl(url, ctx.upstreamUrl, ctx.mirrorBase))
        return encodeRepodata(Buffer.from(out, 'latin1'), coding)
      }
    })
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
      const plainJson = path.repodata === 'json' || ctx.upstreamUrl.pathname.endsWith('.json')
      const result = await metadata.fetch({
        key: `conda:${canonicalUrl(ctx.upstreamUrl)}`,
        url: ctx.upstreamUrl,
        // Compressed variants are fetched as they are, so their bytes stay exactly upstream's.
        headers: { 'accept-encoding': plainJson ? 'gzip' : 'identity' },
        ttlMs: ctx.rule.metadata_ttl_s * 1000,
        revalidate: clientRevalidates(ctx.request.headers),
        signal: ctx.signal
      })
      let shown = result
      if (result.status === 200 && path.repodata !== null) {
        indexer.ensure(ctx.upstreamUrl, path.repodata, result)
        if (path.repodata !== 'bz2') shown = await withMirrorBaseUrl(ctx, result, path.repodata)
      }
      await sendMetadata(metadata, ctx.request, ctx.reply, shown, plainJson ? {} : { gzip: false })
      return true
    }
  }
}
