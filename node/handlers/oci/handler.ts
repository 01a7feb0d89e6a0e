import type { Dispatcher } from 'undici'
import type { OciConfig } from '../../../config/types.ts'
import { isAimirrorError } from '../../errors.ts'
import type { Fetcher } from '../../fetch/fetcher.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import type { BlobStore } from '../../store/blob-store.ts'
import type { Handler } from '../types.ts'
import { AccessControl } from './access.ts'
import { acceptLines } from './accept.ts'
import { parseOciPath } from './api-path.ts'
import type { OciAuth } from './auth.ts'
import { BlobServer } from './blobs.ts'
import { authenticate } from './client-auth.ts'
import { ClientTokens } from './client-tokens.ts'
import { serveListing } from './listings.ts'
import { ManifestServer } from './manifests.ts'
import { RegistryClient } from './registry-client.ts'
import { RegistryMap } from './registries.ts'
import { API_VERSION_HEADER, pullScope, sendChallenge, sendOciError, sendRefusal } from './replies.ts'
import { OciState } from './state.ts'
import { TagResolver } from './tags.ts'
import { createTokenEndpoint } from './token-endpoint.ts'
import type { OciRequest, Served } from './types.ts'

export interface OciHandlerComponents {
  oci: OciConfig
  /** The node's upstream pool (registry API calls, token realms, storage probes). */
  dispatcher: Dispatcher
  /** The fetch engine's fetcher; its dispatcher must carry `auth.interceptor`. */
  fetcher: Fetcher
  store: BlobStore
  auth: OciAuth
  /** The node's metadata cache (tag lists, referrers); its dispatcher must carry `auth.interceptor`. */
  metadata: MetadataCache
  logger: Logger
}

export interface OciHandlerInit {
  /** Registry state directory, e.g. `<cache.dir>/oci`. */
  dir: string
}

/**
 * The registry mirror under `/v2/`: Docker Hub by default, other registries by `ns` or path prefix; the
 * mirror's own token endpoint (its challenges point there, it fetches upstream tokens itself); manifests
 * and blobs from the cache by digest, tags revalidated with HEAD; read-only (pushes are refused).
 */
export function createOciHandler (components: OciHandlerComponents, init: OciHandlerInit): Handler {
  const { oci, dispatcher, fetcher, store, auth } = components
  const log = components.logger.child({ component: 'oci' })
  const registries = new RegistryMap(oci.registries)
  const clientTokens = new ClientTokens({ ttlMs: oci.token_ttl_s * 1000 })
  const client = new RegistryClient({ dispatcher, tokens: auth.tokens })
  const state = new OciState({ logger: log }, { dir: init.dir })
  const access = new AccessControl({ state, client }, { rememberMs: oci.access_check_ttl_s * 1000 })
  const tags = new TagResolver({ client, state, access, logger: log, away: components.metadata.away })
  const manifests = new ManifestServer({ fetcher, access, tags })
  const blobs = new BlobServer({ fetcher, store, client, access, dispatcher })
  const token = createTokenEndpoint({ registries, tokens: auth.tokens, clientTokens, vault: auth.vault, logger: log })

  async function serve (ctx: StrategyContext): Promise<void> {
    const { request, reply } = ctx
    const head = request.method === 'HEAD'
    const url = new URL(request.url, 'http://mirror')
    const path = parseOciPath(url.pathname)
    if (path.kind === 'token') return await token(ctx)
    const readOnly = request.method === 'GET' || head
    if (path.kind === 'ping') {
      if (!readOnly) return await sendOciError(reply, false, 405, 'UNSUPPORTED', 'method not allowed')
      if (authenticate(request.headers.authorization, clientTokens, null).kind !== 'ok') {
        return await sendChallenge(reply, head, { mirrorBase: ctx.mirrorBase, service: registries.registryOf(ctx.rule.upstream) })
      }
      const body = Buffer.from('{}')
      reply.code(200).headers({ ...API_VERSION_HEADER, 'content-type': 'application/json', 'content-length': String(body.length) })
      return await reply.send(head ? undefined : body)
    }
    if (path.kind === 'invalid') {
      const code = path.reason === 'name' ? 'NAME_INVALID' : path.reason === 'digest' ? 'DIGEST_INVALID' : path.reason === 'reference' ? 'MANIFEST_INVALID' : 'UNSUPPORTED'
      return await sendOciError(reply, head, path.reason === 'path' ? 404 : 400, code, `invalid ${path.reason}`)
    }
    if (path.kind === 'catalog') return await sendOciError(reply, head, 404, 'UNSUPPORTED', 'the mirror has no catalog')
    if (path.kind === 'upload' || !readOnly) return await sendOciError(reply, head, 405, 'UNSUPPORTED', 'the mirror is read-only')
    const target = registries.resolve(path.name, url.searchParams.get('ns'), ctx.rule.upstream, true)
    if (target === null) return await sendOciError(reply, head, 404, 'NAME_UNKNOWN', 'registry not configured on this mirror')
    const challenge = { mirrorBase: ctx.mirrorBase, service: target.registry, scope: pullScope(target.name) }
    const authn = authenticate(request.headers.authorization, clientTokens, target)
    if (authn.kind === 'challenge') return await sendChallenge(reply, head, { ...challenge, error: authn.error })
    const req: OciRequest = {
      ctx, target, scope: { upstream: target.upstream, repo: target.repo }, who: authn.who, accept: acceptLines(request.raw.rawHeaders), head
    }
    let served: Served
    try {
      switch (path.kind) {
        case 'manifest': served = await manifests.serve(req, path.reference, ctx.rule.metadata_ttl_s * 1000); break
        case 'blob': served = await blobs.serve(req, path.digest, {
          chunkSize: ctx.rule.chunk_size, concurrency: ctx.rule.concurrency, minSize: ctx.rule.min_size, maxSize: ctx.rule.max_size
        }); break
        case 'tags': served = await serveListing(components.metadata, req, 'tags/list', ctx.rule.metadata_ttl_s * 1000); break
        case 'referrers': served = await serveListing(components.metadata, req, `referrers/${path.digest.value}`, ctx.rule.metadata_ttl_s * 1000); break
      }
    } catch (err) {
      if (!isAimirrorError(err) || err.code !== 'ERR_UPSTREAM_DENIED' || reply.sent) throw err
      served = { status: 401, headers: {}, what: 'repository' }
    }
    if (served === null) return
    // Anonymous and refused: the client may hold credentials for it; ask for them as a registry would.
    if (req.who.cred === null && (served.status === 401 || served.status === 403)) {
      return await sendChallenge(reply, head, { ...challenge, error: 'insufficient_scope' })
    }
    if (served.status === 401) log.info({ registry: target.registry, repo: target.repo }, 'upstream refused a client credential')
    // A 401 to a logged-in client is the registry refusing its credentials for this repository: a 403 here,
    // or the client would log in again and again.
    await sendRefusal(reply, head, served.status === 401 ? { ...served, status: 403, body: undefined, message: 'the registry refused these credentials for this repository (it answered 401)' } : served)
  }

  return {
    name: 'oci',
    async handle (ctx) {
      await serve(ctx)
      return true
    }
  }
}
