import type { Dispatcher } from 'undici'
import { paced } from '../fetch/gc-pacer.ts'
import type { GcPacer } from '../fetch/gc-pacer.ts'
import type { Logger } from '../log.ts'
import type { RewritePlan, RuleRewriting } from '../rewrite/rules.ts'
import { discardBody, headerValue, requestUpstream } from '../upstream/request.ts'
import type { RawHeaders, UpstreamResponse } from '../upstream/request.ts'
import { endToEndHeaders, groupHeaders } from './headers.ts'
import { sendRewritten } from './rewrite-response.ts'
import type { Strategy, StrategyContext } from './strategy.ts'

export interface ProxyComponents {
  dispatcher: Dispatcher
  rewritePlan: RewritePlan
  logger: Logger
  /** Counts relayed bytes, so the buffers each socket read allocates are collected young. */
  pacer?: GcPacer
}

export interface ProxyInit {
  /** Largest link-bearing page rewritten in memory (raw or decoded); bigger ones are rewritten as they stream. Default 8 MiB. */
  maxRewriteBytes?: number
}

const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE'])

/** Whether the client sent a body: a length above zero or chunked framing. */
function hasRequestBody (ctx: StrategyContext): boolean {
  const h = ctx.request.headers
  if (h['transfer-encoding'] !== undefined) return true
  const len = h['content-length']
  if (len !== undefined) return len !== '0'
  return !BODYLESS.has(ctx.request.method)
}

/** Statuses whose body is a whole representation that may be rewritten (not 206 parts, not empty ones). */
function rewritableStatus (status: number): boolean {
  return status >= 200 && status < 300 && status !== 204 && status !== 206
}

/** Location / Content-Location / Link pointing at a rewritable host are sent to the mirror instead. */
function rewriteHeaderLinks (raw: RawHeaders, ctx: StrategyContext, rewriting: RuleRewriting): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string
    let value = raw[i + 1] as string
    const lower = name.toLowerCase()
    if (lower === 'location' || lower === 'content-location') {
      value = rewriting.links.rewriteUrl(value, ctx.upstreamUrl, ctx.mirrorBase) ?? value
    } else if (lower === 'link') {
      value = rewriting.links.rewriteLinkHeader(value, ctx.upstreamUrl, ctx.mirrorBase)
    }
    out.push(name, value)
  }
  return out
}

/**
 * The `proxy` strategy: one upstream request per client request, bytes streamed both ways with
 * backpressure (request bodies of PUT/POST/PATCH included), every end-to-end header forwarded with its
 * repeats in order, hop-by-hop headers dropped, status passed through (3xx, 206, 416, 404 alike).
 * Link-bearing pages (by Content-Type) are decoded and rewritten to the mirror: in memory up to a cap,
 * as they stream beyond it.
 */
export function createProxyStrategy (components: ProxyComponents, init: ProxyInit = {}): Strategy {
  const { dispatcher, rewritePlan } = components
  const log = components.logger.child({ component: 'proxy' })
  const maxRewriteBytes = init.maxRewriteBytes ?? 8 * 1024 * 1024

  return async function proxy (ctx: StrategyContext): Promise<void> {
    const { request, upstreamUrl, signal } = ctx
    const method = request.method
    const headers = endToEndHeaders(request.raw.rawHeaders)
    const body = hasRequestBody(ctx) ? request.raw : null
    const res = await requestUpstream(dispatcher, { url: upstreamUrl, method, headers, body, signal })
    const rewriting = rewritePlan.forRule(ctx.rule)
    const contentType = headerValue(res.rawHeaders, 'content-type')

    const partialPage = res.statusCode === 206 && method === 'GET'
    if ((rewritableStatus(res.statusCode) || partialPage) && rewriting.isLinkBearing(contentType)) {
      let page: UpstreamResponse = res
      if (method === 'HEAD' || partialPage) {
        // HEAD: the rewritten length is only known from the body, so fetch it and answer with headers only.
        // 206: a slice of a page cannot be rewritten; the whole page is sent (a 200 to a Range is legal).
        discardBody(res.body)
        const whole = endToEndHeaders(headers, ['range', 'if-range'])
        page = await requestUpstream(dispatcher, { url: upstreamUrl, method: 'GET', headers: whole, signal })
      }
      if (rewritableStatus(page.statusCode)) {
        const sendHeaders = rewriteHeaderLinks(endToEndHeaders(page.rawHeaders), ctx, rewriting)
        await sendRewritten(ctx, page, sendHeaders, rewriting, { maxBytes: maxRewriteBytes, log })
        return
      }
      return passThrough(ctx, page, rewriting, components.pacer)
    }
    return passThrough(ctx, res, rewriting, components.pacer)
  }
}

function passThrough (ctx: StrategyContext, res: UpstreamResponse, rewriting: RuleRewriting, pacer: GcPacer | undefined): void {
  const { reply, request } = ctx
  const headers = rewriteHeaderLinks(endToEndHeaders(res.rawHeaders), ctx, rewriting)
  reply.code(res.statusCode).headers(groupHeaders(headers))
  if (request.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) {
    // Node sends no Content-Length for a bodyless reply unless it is set explicitly; upstream's is kept above.
    discardBody(res.body)
    void reply.send()
    return
  }
  void reply.send(paced(res.body, pacer))
}
