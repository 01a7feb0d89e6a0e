import type { Dispatcher } from 'undici'
import type { Fetcher } from '../../fetch/fetcher.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import type { RewritePlan } from '../../rewrite/rules.ts'
import type { Handler } from '../types.ts'
import { AccessMemory } from './access.ts'
import { createApiServer } from './api.ts'
import { parseApiPath, parseResolveCachePath, parseResolvePath } from './paths.ts'
import type { FileRef } from './paths.ts'
import { createPathsInfoServer } from './paths-info.ts'
import { HfRecords } from './records.ts'
import { createResolveServer } from './resolve.ts'

export interface HfHandlerComponents {
  fetcher: Fetcher
  dispatcher: Dispatcher
  metadata: MetadataCache
  rewritePlan: RewritePlan
  logger: Logger
}

export interface HfHandlerInit {
  /** Directory of the handler's records (file metadata by commit, branch → commit), e.g. `<cache.dir>/hf`. */
  dir: string
  /** How long upstream's acceptance of a credential for a repository is trusted. Default 60 s. */
  accessTtlMs?: number
  /** With a last known answer at hand, how long a `/resolve` HEAD upstream may take before it is served. Default 5 s. */
  staleGraceMs?: number
}

/** The request path relative to the rule's upstream base (after `path_rewrite`, e.g. `/blob/` → `/resolve/`). */
function upstreamRelativePath (ctx: StrategyContext): string {
  const basePath = new URL(ctx.rule.upstream).pathname.replace(/\/+$/, '')
  const p = ctx.upstreamUrl.pathname
  return basePath !== '' && p.startsWith(basePath + '/') ? p.slice(basePath.length) : p
}

/**
 * `path_rewrite` replaces every `/blob/` of a web link, but only the first one names the view: later
 * ones are directories of the file path (`/o/r/blob/main/blob/x` is the file `blob/x`).
 */
function blobLinkFile (ctx: StrategyContext, file: FileRef): FileRef {
  if (!ctx.rule.path_rewrite.some(r => r.search === '/blob/')) return file
  const clientPath = (ctx.request.raw.url ?? '').split('?')[0] ?? ''
  const at = clientPath.indexOf('/blob/')
  if (at < 0) return file
  const tail = clientPath.slice(at + '/blob/'.length)
  const slash = tail.indexOf('/')
  return slash < 0 || tail.slice(0, slash) !== file.revision ? file : { ...file, path: tail.slice(slash + 1) }
}

/**
 * The HuggingFace handler: `/resolve/` and `/api/resolve-cache/` files served by the mirror with the
 * hub's headers; repository API JSON cached and cleaned of Xet; `paths-info` POSTs kept for replay.
 * Anything else (other API calls, other methods) goes to the rule's strategy.
 */
export function createHfHandler (components: HfHandlerComponents, init: HfHandlerInit): Handler {
  const records = new HfRecords({ dir: init.dir })
  const access = new AccessMemory({ ttlMs: init.accessTtlMs })
  const serveResolve = createResolveServer({ ...components, records, access, away: components.metadata.away }, { staleGraceMs: init.staleGraceMs })
  const serveApi = createApiServer({ ...components, records })
  const servePathsInfo = createPathsInfoServer({ ...components, records })

  return {
    name: 'hf',
    async handle (ctx: StrategyContext): Promise<boolean> {
      const method = ctx.request.method
      const path = upstreamRelativePath(ctx)
      const getOrHead = method === 'GET' || method === 'HEAD'
      const file = path.startsWith('/api/') ? parseResolveCachePath(path) : parseResolvePath(path)
      if (file !== null) {
        if (!getOrHead) return false
        await serveResolve(ctx, blobLinkFile(ctx, file))
        return true
      }
      const api = parseApiPath(path)
      if (api === null) return false
      if (api.kind === 'paths-info' && method === 'POST') {
        await servePathsInfo(ctx, api)
        return true
      }
      if (getOrHead && (api.kind === 'info' || api.kind === 'revision' || api.kind === 'tree')) {
        await serveApi(ctx, api)
        return true
      }
      return false
    }
  }
}
