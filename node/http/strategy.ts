/**
 * The seam between the HTTP front and the ways a matched request is served.
 *
 * The server matches a rule, builds a StrategyContext, lets the rule's handler look at it, and then calls
 * the strategy named by `rule.strategy`: `proxy` (stream through, rewriting link-bearing pages) or
 * `parallel` (cached, parallel Range fetch; supplied by the fetch engine). While no `parallel` strategy
 * is supplied, `parallel` rules are proxied. A strategy answers through `reply` (status, headers, and a
 * body stream for non-HEAD requests) or throws a catalogue error before anything was sent; errors thrown
 * after headers went out end the connection instead (the client sees a failed transfer).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Rule } from '../../config/types.ts'

export interface StrategyContext {
  /** The rule that matched (first match wins). */
  readonly rule: Rule
  /** Where the request goes upstream (already checked to lie under `rule.upstream`), query included. */
  readonly upstreamUrl: URL
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** Base URL clients reach the mirror at (`http://host:port[/path]`, no trailing slash), for link rewriting. */
  readonly mirrorBase: string
  /** Aborted when the client goes away or the node stops; pass it to every upstream request. */
  readonly signal: AbortSignal
}

/** Serves one request. Resolves once the response has been handed to the reply (or fully sent). */
export type Strategy = (ctx: StrategyContext) => Promise<void>

export interface Strategies {
  readonly proxy: Strategy
  readonly parallel?: Strategy
}
