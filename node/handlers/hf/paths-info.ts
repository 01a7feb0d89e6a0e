import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { BadRequestError, isAimirrorError, UpstreamProtocolError } from '../../errors.ts'
import { endToEndHeaders } from '../../http/headers.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import type { Logger } from '../../log.ts'
import { requestUpstream } from '../../upstream/request.ts'
import { credentialScope } from './access.ts'
import { apiForwardHeaders } from './api.ts'
import { cleanApiJson, isJsonType } from './api-json.ts'
import { lfsFilesFromListing } from './listing-meta.ts'
import { isCommit } from './paths.ts'
import type { ApiRef } from './paths.ts'
import { lowerHeaders } from './probe.ts'
import type { HfRecords, StoredAnswer } from './records.ts'
import { stripXetHeaders } from './xet.ts'

export interface PathsInfoComponents {
  dispatcher: Dispatcher
  records: HfRecords
  logger: Logger
}

const REQUEST_LIMIT = 1 << 20
const ANSWER_LIMIT = 16 << 20
/** Headers kept with a stored answer (the rest describe one transfer). */
const KEPT = ['content-type', 'x-repo-commit', 'x-error-code', 'x-error-message', 'cache-control']
const STALE = { warning: '110 - "Response is Stale"', 'x-aimirror-stale': '1' }

async function readAll (body: Readable, limit: number, tooBig: () => Error): Promise<Buffer> {
  const parts: Buffer[] = []
  let n = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.length
    if (n > limit) {
      body.destroy()
      throw tooBig()
    }
    parts.push(chunk)
  }
  return Buffer.concat(parts, n)
}

/**
 * A client's request body, at most `limit` bytes; null when it is longer. The rest is left unread (a
 * request destroyed mid-body reset the connection before the client had any answer).
 */
async function readRequest (req: Readable, limit: number): Promise<Buffer | null> {
  return await new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    let n = 0
    const settle = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
    }
    const onData = (chunk: Buffer): void => {
      n += chunk.length
      if (n <= limit) { parts.push(chunk); return }
      settle()
      req.pause()
      resolve(null)
    }
    const onEnd = (): void => { settle(); resolve(Buffer.concat(parts, n)) }
    const onError = (err: Error): void => { settle(); reject(err) }
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', onError)
  })
}

function header (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function down (err: unknown): boolean {
  return isAimirrorError(err) && (err.code === 'ERR_UPSTREAM_UNREACHABLE' || err.code === 'ERR_UPSTREAM_TIMEOUT' || err.code === 'ERR_UPSTREAM_PROTOCOL')
}

/**
 * `POST /api/{type}s/{repo}/paths-info/{rev}` (@huggingface/hub asks it before every file): the
 * request body goes upstream, the JSON answer comes back without `xetHash`. Successful answers are kept
 * per (URL, body, credential scope), served for the rule's `metadata_ttl_s` and replayed stale while
 * upstream is down; any other answer is passed on as it came.
 */
export function createPathsInfoServer (components: PathsInfoComponents): (ctx: StrategyContext, api: ApiRef) => Promise<void> {
  const { dispatcher, records } = components
  const log = components.logger.child({ component: 'hf' })

  async function send (ctx: StrategyContext, answer: Pick<StoredAnswer, 'status' | 'headers' | 'body'>, extra: Record<string, string> = {}): Promise<void> {
    ctx.reply.code(answer.status).headers({ ...stripXetHeaders(answer.headers), ...extra, 'content-length': String(answer.body.length) })
    await ctx.reply.send(answer.body)
  }

  return async function servePathsInfo (ctx: StrategyContext, api: ApiRef): Promise<void> {
    const body = await readRequest(ctx.request.raw, REQUEST_LIMIT)
    if (body === null) {
      // The rest of the body is not read: the connection closes after the answer.
      ctx.reply.header('connection', 'close')
      throw new BadRequestError('Request body too large', { detail: { limit: REQUEST_LIMIT } })
    }
    const forward = apiForwardHeaders(ctx)
    const contentType = header(ctx, 'content-type')
    if (contentType !== undefined) forward['content-type'] = contentType
    forward['accept-encoding'] = 'identity'
    const scope = credentialScope(forward.authorization) ?? 'anonymous'
    const key = createHash('sha256').update(['hf-paths-info', ctx.upstreamUrl.href, forward.accept, contentType ?? '', scope, ''].join('\n')).update(body).digest('hex')
    const stored = await records.getAnswer(key)
    if (stored !== undefined && Date.now() - stored.at < ctx.rule.metadata_ttl_s * 1000) {
      await send(ctx, stored)
      return
    }
    let status: number
    let rawHeaders: readonly string[]
    let answer: Buffer
    try {
      const res = await requestUpstream(dispatcher, {
        url: ctx.upstreamUrl, method: 'POST', headers: Object.entries(forward).flat(), body: body.length === 0 ? null : body, signal: ctx.signal
      })
      status = res.statusCode
      rawHeaders = res.rawHeaders
      answer = await readAll(res.body, ANSWER_LIMIT, () => new UpstreamProtocolError('Upstream paths-info answer too large'))
    } catch (err) {
      if (stored !== undefined && down(err)) {
        log.warn({ url: ctx.upstreamUrl.pathname, code: (err as { code?: string }).code }, 'upstream down; serving a stale paths-info answer')
        await send(ctx, stored, STALE)
        return
      }
      throw err
    }
    const h = lowerHeaders(rawHeaders)
    if (status >= 500 && stored !== undefined) {
      log.warn({ url: ctx.upstreamUrl.pathname, status }, 'upstream failing; serving a stale paths-info answer')
      await send(ctx, stored, STALE)
      return
    }
    if (status >= 200 && status < 300 && h['content-encoding'] === undefined && isJsonType(h['content-type'])) {
      const kept: Record<string, string> = {}
      for (const name of KEPT) if (h[name] !== undefined) kept[name] = h[name]
      const fresh = { status, headers: kept, body: cleanApiJson(answer), at: Date.now() }
      await records.putAnswer(key, fresh)
      // At a commit the answer names the LFS files' sha256: `/resolve` then needs no HEAD upstream for them.
      if (api.revision !== null && isCommit(api.revision)) {
        records.learnFiles(api.repo, lfsFilesFromListing(fresh.body, api.revision, forward.authorization === undefined ? 'public' : 'auth'))
      }
      await send(ctx, fresh)
      return
    }
    const passed: Record<string, string> = lowerHeaders(endToEndHeaders(rawHeaders, ['content-length']))
    await send(ctx, { status, headers: passed, body: answer })
  }
}
