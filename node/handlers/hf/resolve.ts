import type { Dispatcher } from 'undici'
import { isAimirrorError, UpstreamProtocolError, UpstreamTimeoutError } from '../../errors.ts'
import type { Fetcher } from '../../fetch/fetcher.ts'
import { digestIdentity } from '../../fetch/identity.ts'
import type { BlobIdentity } from '../../fetch/identity.ts'
import type { BlobMeta } from '../../fetch/response-meta.ts'
import { blobRequestHeaders, sendBlob, sendUpstreamAnswer } from '../../http/blob-reply.ts'
import { answerBlobRequest, rangeStartHint } from '../../http/blob-response.ts'
import { endToEndHeaders, groupHeaders } from '../../http/headers.ts'
import type { StrategyContext } from '../../http/strategy.ts'
import { AwayOrigins } from '../../upstream/away.ts'
import type { Logger } from '../../log.ts'
import type { AccessMemory } from './access.ts'
import { credentialScope } from './access.ts'
import { fileMetaFromHeaders, hubHeaders, mirrorEtag, normalizeEtag } from './file-meta.ts'
import type { HfFileMeta } from './file-meta.ts'
import { isCommit, repoKey, resolvePath } from './paths.ts'
import type { FileRef } from './paths.ts'
import { lowerHeaders, probeResolve } from './probe.ts'
import type { ProbeResult } from './probe.ts'
import type { HfRecords } from './records.ts'
import { isXetHeader, stripXetHeaders, stripXetLinks } from './xet.ts'
import { waitFor } from '../../abort.ts'

export interface ResolveComponents {
  fetcher: Fetcher
  dispatcher: Dispatcher
  records: HfRecords
  access: AccessMemory
  logger: Logger
  /** Origins that just failed to answer: the last known answer is served without the grace wait. */
  away?: AwayOrigins
}

export interface ResolveInit {
  /** With a last known answer at hand, how long upstream may take before that answer is served. Default 5 s. */
  staleGraceMs?: number
}

/** Client headers that go upstream with the metadata probe and the download. */
const FORWARDED = ['authorization', 'user-agent']
const STALE = { warning: '110 - "Response is Stale"', 'x-aimirror-stale': '1' }

function header (ctx: StrategyContext, name: string): string | undefined {
  const v = ctx.request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** The upstream URL of a file at a revision (always under the rule's upstream). */
export function upstreamFileUrl (upstream: string, file: FileRef, revision: string): URL {
  return new URL(upstream.replace(/\/+$/, '') + resolvePath({ ...file, revision }))
}

/**
 * A file kept in git without a usable git blob id: keyed by repository, commit and path (whichever hub
 * served it), which never change what they name.
 */
export function gitFileIdentity (file: FileRef, commit: string): BlobIdentity {
  return { key: `hf:${repoKey(file.repo)}@${commit}/${file.path}`, sha256: null, expected: null }
}

const GIT_SHA1 = /^[0-9a-f]{40}$/

/**
 * What the bytes of a file are keyed and verified by: the LFS sha256; for files kept in git the hub's
 * ETag, which is their git blob id (sha1 of `blob <size>\0` + bytes), so they are verified too and the
 * same file at many commits or in many repositories is stored once.
 */
export function fileIdentity (file: FileRef, meta: HfFileMeta): BlobIdentity {
  if (meta.sha256 !== null) return digestIdentity({ algorithm: 'sha256', hex: meta.sha256 })
  const oid = normalizeEtag(meta.etag).toLowerCase()
  if (GIT_SHA1.test(oid)) return digestIdentity({ algorithm: 'git-sha1', hex: oid })
  return gitFileIdentity(file, meta.commit)
}

function notFoundKey (file: FileRef, commit: string): string {
  return `hf-not-found\n${repoKey(file.repo)}@${commit}/${file.path}`
}


function upstreamDown (err: unknown): boolean {
  return isAimirrorError(err) && (err.code === 'ERR_UPSTREAM_UNREACHABLE' || err.code === 'ERR_UPSTREAM_TIMEOUT' || err.code === 'ERR_UPSTREAM_PROTOCOL')
}

/**
 * `/resolve/` (and `/api/resolve-cache/`) for HEAD and GET, answered by the mirror itself with the
 * hub's headers (`X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`, `ETag`, real length, Range), never
 * with a redirect, never with Xet headers. The file's metadata comes from a HEAD upstream (cached: by
 * commit forever, branch → commit for the rule's `metadata_ttl_s`); the bytes from the fetch engine,
 * keyed by the LFS sha256 (verified) or, for files kept in git, by the commit-addressed URL.
 */
export function createResolveServer (components: ResolveComponents, init: ResolveInit = {}): (ctx: StrategyContext, file: FileRef) => Promise<void> {
  const { fetcher, dispatcher, records, access } = components
  const away = components.away ?? new AwayOrigins({ logger: components.logger })
  const staleGraceMs = init.staleGraceMs ?? 5000
  const probes = new Map<string, Promise<ProbeResult>>()
  const log = components.logger.child({ component: 'hf' })

  async function serve (ctx: StrategyContext, file: FileRef, meta: HfFileMeta, forward: Record<string, string>, stale: boolean): Promise<void> {
    const headers = hubHeaders(meta)
    const blobMeta: BlobMeta = {
      size: meta.size,
      etag: mirrorEtag(meta),
      lastModified: null,
      contentType: meta.contentType,
      headers: stale ? { ...headers, ...STALE } : headers,
      validator: { etag: null, lastModified: null }
    }
    if (ctx.request.method === 'HEAD') {
      const answer = answerBlobRequest(blobMeta, blobRequestHeaders(ctx))
      ctx.reply.code(answer.status).headers(answer.headers)
      await ctx.reply.send()
      return
    }
    const rule = ctx.rule
    const url = upstreamFileUrl(rule.upstream, file, meta.commit)
    const identity = fileIdentity(file, meta)
    const acquired = await fetcher.acquire(identity, { url, headers: forward }, {
      signal: ctx.signal,
      hint: rangeStartHint(header(ctx, 'range')),
      chunkSize: rule.chunk_size,
      concurrency: rule.concurrency,
      minSize: rule.min_size,
      maxSize: rule.max_size
    })
    if (acquired.kind === 'upstream-response') {
      await sendUpstreamAnswer(ctx, acquired, stripXetHeaders)
      return
    }
    if (acquired.meta.size !== null && acquired.meta.size !== meta.size) {
      acquired.release()
      throw new UpstreamProtocolError('Upstream file size differs from its /resolve metadata', { detail: { expected: meta.size, got: acquired.meta.size } })
    }
    await sendBlob(ctx, acquired, blobMeta)
  }

  function refusalHeaders (refused: Extract<ProbeResult, { kind: 'refused' }>): string[] {
    const raw = endToEndHeaders(refused.rawHeaders, ['content-length'])
    const kept: string[] = []
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string
      let value: string | null = raw[i + 1] as string
      if (isXetHeader(name)) continue
      if (name.toLowerCase() === 'link') value = stripXetLinks(value)
      if (value !== null) kept.push(name, value)
    }
    return kept
  }

  async function sendRefusal (ctx: StrategyContext, status: number, headers: Record<string, string | string[]>, body: Buffer, headLength: string | undefined): Promise<void> {
    ctx.reply.code(status).headers(headers)
    if (ctx.request.method === 'HEAD') {
      if (headLength !== undefined) ctx.reply.header('content-length', headLength)
      await ctx.reply.send()
      return
    }
    ctx.reply.header('content-length', String(body.length))
    await ctx.reply.send(body)
  }

  /**
   * A hub refusal passed on as it came. A public "no such file at this commit" (404 with X-Repo-Commit)
   * is also remembered: it cannot change, and is replayed while upstream is down.
   */
  async function passRefusal (ctx: StrategyContext, file: FileRef, scope: string | null, refused: Extract<ProbeResult, { kind: 'refused' }>): Promise<void> {
    const kept = refusalHeaders(refused)
    const lower = lowerHeaders(kept)
    const commit = (lower['x-repo-commit'] ?? '').toLowerCase()
    if (refused.status === 404 && scope === null && isCommit(commit)) {
      await records.putAnswer(notFoundKey(file, commit), { status: 404, headers: lower, body: refused.body, at: Date.now() })
      if (!isCommit(file.revision)) await records.putRevision(file.repo, file.revision, commit)
    }
    await sendRefusal(ctx, refused.status, groupHeaders(kept), refused.body, lowerHeaders(refused.rawHeaders)['content-length'])
  }

  /**
   * One HEAD upstream per (URL, credential scope, error body wanted) at a time: clients asking for the
   * same file together share it. It is not tied to any one client, so a client leaving cancels only its
   * own wait; the dispatcher's timeouts bound it.
   */
  function sharedProbe (url: URL, forward: Record<string, string>, scope: string | null, withErrorBody: boolean): Promise<ProbeResult> {
    const key = `${url.href}\n${scope ?? ''}\n${withErrorBody ? 'body' : 'head'}`
    let flight = probes.get(key)
    if (flight === undefined) {
      const askedAt = Date.now()
      flight = probeResolve(dispatcher, url, { headers: forward, withErrorBody }).finally(() => probes.delete(key))
      flight.then(() => away.answered(url.origin), (err: unknown) => away.failed(url.origin, err, askedAt))
      probes.set(key, flight)
    }
    return flight
  }

  /**
   * Upstream is down: the file as last known (public content only; a branch as it last pointed), or the
   * hub's remembered "not found" for it.
   */
  async function serveLastKnown (ctx: StrategyContext, file: FileRef, known: HfFileMeta | undefined, commit: string | null, forward: Record<string, string>, why: string): Promise<boolean> {
    const fallback = known ?? (commit === null ? undefined : await records.getFile(file.repo, commit, file.path))
    if (fallback === undefined && commit !== null) {
      const gone = await records.getAnswer(notFoundKey(file, commit))
      if (gone === undefined) return false
      log.warn({ repo: file.repo.id, revision: file.revision, path: file.path, why }, 'upstream down; replaying the hub\'s remembered 404')
      await sendRefusal(ctx, gone.status, { ...gone.headers, ...STALE }, gone.body, String(gone.body.length))
      return true
    }
    // Content learned with credentials is not served without upstream's word on this client's.
    if (fallback === undefined || fallback.scope !== 'public') return false
    log.warn({ repo: file.repo.id, revision: file.revision, path: file.path, why }, 'upstream down; serving the last known file')
    await serve(ctx, file, fallback, forward, known === undefined)
    return true
  }

  return async function serveResolve (ctx: StrategyContext, file: FileRef): Promise<void> {
    const authorization = header(ctx, 'authorization')
    const scope = credentialScope(authorization)
    const forward: Record<string, string> = {}
    for (const name of FORWARDED) {
      const v = header(ctx, name)
      if (v !== undefined) forward[name] = v
    }
    const ttlMs = ctx.rule.metadata_ttl_s * 1000

    // What is known already: the commit (given, or a fresh branch record) and the file at that commit.
    let commit: string | null = isCommit(file.revision) ? file.revision : null
    let staleCommit: string | null = null
    if (commit === null) {
      const rec = await records.getRevision(file.repo, file.revision)
      if (rec !== undefined && Date.now() - rec.at < ttlMs) commit = rec.commit
      else staleCommit = rec?.commit ?? null
    }
    const known = commit === null ? undefined : await records.getFile(file.repo, commit, file.path)
    if (known !== undefined && (known.scope === 'public' || access.allowed(scope, file.repo))) {
      await serve(ctx, file, known, forward, false)
      return
    }

    // Ask upstream: at the commit when it is known (the answer cannot move), else at the revision.
    let result: ProbeResult
    // With something to fall back on, a slow upstream is not waited for longer than clients wait (10 s).
    const fallback = known ?? (staleCommit === null ? undefined : await records.getFile(file.repo, staleCommit, file.path))
    const url = upstreamFileUrl(ctx.rule.upstream, file, commit ?? file.revision)
    // The file as last known, or the hub's remembered "not found" for it, is something to fall back on.
    const lastCommit = commit ?? staleCommit
    const answerable = fallback?.scope === 'public' ||
      (fallback === undefined && lastCommit !== null && await records.getAnswer(notFoundKey(file, lastCommit)) !== undefined)
    // A hub that just failed to answer is still asked (its answer ends that), but not waited for.
    const slow = answerable ? AbortSignal.timeout(away.isAway(url.origin) ? 0 : staleGraceMs) : null
    try {
      result = await waitFor(sharedProbe(url, forward, scope, ctx.request.method === 'GET'), slow === null ? ctx.signal : AbortSignal.any([ctx.signal, slow]))
    } catch (err) {
      const timedOut = slow?.aborted === true && !ctx.signal.aborted
      // As for clients, not answering within the grace time is being away; the probe's answer ends that.
      if (timedOut && !away.isAway(url.origin)) away.noAnswer(url.origin, Date.now() - staleGraceMs)
      if (!timedOut && !upstreamDown(err)) throw err
      const why = timedOut ? 'upstream slow' : (err as { code?: string }).code ?? 'unknown'
      if (await serveLastKnown(ctx, file, known, commit ?? staleCommit, forward, why)) return
      throw timedOut ? new UpstreamTimeoutError(undefined, { cause: err }) : err
    }
    if (result.kind === 'refused') {
      if (result.status >= 500 && await serveLastKnown(ctx, file, known, commit ?? staleCommit, forward, `status ${result.status}`)) return
      if (result.status === 401 || result.status === 403) access.revoke(scope, file.repo)
      await passRefusal(ctx, file, scope, result)
      return
    }
    const learned = fileMetaFromHeaders(result.headers, result.redirect, scope === null ? 'public' : 'auth')
    if (typeof learned === 'string') {
      throw new UpstreamProtocolError('Upstream /resolve answer is not a Hub answer', { detail: { problem: learned } })
    }
    access.grant(scope, file.repo)
    // Once seen without credentials a file stays public; with credentials it needs them.
    const before = known ?? await records.getFile(file.repo, learned.commit, file.path)
    const meta: HfFileMeta = before?.scope === 'public' ? { ...learned, scope: 'public' } : learned
    if (!isCommit(file.revision)) await records.putRevision(file.repo, file.revision, meta.commit)
    if (before === undefined || before.scope !== meta.scope) await records.putFile(file.repo, file.path, meta)
    await serve(ctx, file, meta, forward, false)
  }
}
