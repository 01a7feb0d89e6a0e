import { isLoopbackHost } from '../config/loopback.ts'
import type { Config, Rule } from '../config/types.ts'
import { createRouter } from '../node/router/router.ts'
import type { Router } from '../node/router/router.ts'
import type { CliArgs } from './args.ts'
import { UsageError } from './args.ts'
import { formatBytes, nodeUrl } from './cluster-commands.ts'

/**
 * The path on the mirror that fetches `target`: a path as it is; the node's own URL's path; an upstream
 * URL (a release asset, a wheel, a model file) through the first rule whose upstream it lies under and
 * that the router sends back to exactly that URL (with its prefix, when the rule strips it).
 */
export function mirrorPathOf (target: string, base: string, router: Router): string {
  // A path is the node's to judge (`--url` may name a node with another config than this one's).
  if (target.startsWith('/')) return target
  if (!URL.canParse(target)) throw new UsageError(`not a URL or a path on the mirror: ${target}`)
  const url = new URL(target)
  if (sameNode(url, new URL(base))) return mirrorPathOf(url.pathname + url.search, base, router)
  for (const c of router.rules) {
    const under = url.origin === c.upstreamOrigin && (c.upstreamPath === '' || url.pathname === c.upstreamPath || url.pathname.startsWith(c.upstreamPath + '/'))
    if (!under) continue
    const upstreamRest = url.pathname.slice(c.upstreamPath.length)
    const rests = new Set([unrewrite(upstreamRest, c.rule.path_rewrite), upstreamRest].map(r => r + url.search))
    const candidates = [...rests].flatMap(rest => c.prefix !== null && c.rule.strip_prefix ? [c.prefix.replace(/\/$/, '') + rest, rest] : [rest])
    for (const path of candidates) {
      if (router.match(path)?.upstreamUrl.href === url.href) return path
    }
  }
  throw new UsageError(`no rule sends a request upstream to ${target}`)
}

/** A path before the rule's `path_rewrite` (each replacement undone, last first); the router confirms it. */
function unrewrite (path: string, rewrites: Rule['path_rewrite']): string {
  let out = path
  for (const { search, replace } of [...rewrites].reverse()) {
    if (search !== '' && replace !== '') out = out.split(replace).join(search)
  }
  return out
}

/** The node itself: its origin, or another name of this machine's loopback on its port. */
function sameNode (url: URL, base: URL): boolean {
  if (url.origin === base.origin) return true
  return url.protocol === base.protocol && url.port === base.port && isLoopbackHost(url.hostname) && isLoopbackHost(base.hostname)
}

interface Outcome { path: string, ok: boolean, bytes: number, seconds: number, reason?: string }

/** GETs `path` through the node, reading its body to the end; bytes count toward `progress`. */
async function fetchThrough (base: string, path: string, progress: { bytes: number }): Promise<Outcome> {
  const t0 = performance.now()
  const done = (ok: boolean, bytes: number, reason?: string): Outcome => ({ path, ok, bytes, seconds: (performance.now() - t0) / 1000, reason })
  let res: Response
  try {
    res = await fetch(base + path, { headers: { 'accept-encoding': 'identity' } })
  } catch (err) {
    const cause = (err as Error).cause
    return done(false, 0, `cannot reach the node (${cause instanceof Error ? cause.message : (err as Error).message})`)
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel()
    return done(false, 0, `${res.status} ${res.statusText}`)
  }
  const length = Number(res.headers.get('content-length') ?? NaN)
  let bytes = 0
  try {
    for await (const chunk of res.body) {
      bytes += chunk.length
      progress.bytes += chunk.length
    }
  } catch (err) {
    return done(false, bytes, `transfer failed after ${formatBytes(bytes)}: ${(err as Error).message}`)
  }
  if (Number.isFinite(length) && bytes !== length) return done(false, bytes, `got ${bytes} of ${length} bytes`)
  return done(true, bytes)
}

/**
 * `aimirror prefetch TARGET...`: fetches each target through the node (`--jobs` at once), so the cache
 * (and, in a cluster, the office) has it before anyone asks. One line per target on stdout; a progress
 * line on stderr when it is a terminal. Exit 1 when any target failed.
 */
export async function runPrefetch (config: Config, args: CliArgs): Promise<number> {
  const base = nodeUrl(config, args.url)
  const targets = args.targets ?? []
  const router = createRouter(config.rules)
  // A target that maps to no path fails on its own line; the others are fetched all the same.
  const jobs = targets.map((target): { path: string } | { target: string, reason: string } => {
    try {
      return { path: mirrorPathOf(target, base, router) }
    } catch (err) {
      if (!(err instanceof UsageError)) throw err
      return { target, reason: err.message }
    }
  })
  const paths = jobs.flatMap(j => 'path' in j ? [j.path] : [])
  const outcomes: Outcome[] = []
  for (const j of jobs) {
    if ('path' in j) continue
    outcomes.push({ path: j.target, ok: false, bytes: 0, seconds: 0, reason: j.reason })
    process.stdout.write(`fail  ${j.target}: ${j.reason}\n`)
  }
  const progress = { bytes: 0 }
  const t0 = performance.now()
  let finished = 0
  const ticker = process.stderr.isTTY
    ? setInterval(() => {
      const s = (performance.now() - t0) / 1000
      process.stderr.write(`\r${finished}/${paths.length} done, ${formatBytes(progress.bytes)}, ${(progress.bytes / 1e6 / s).toFixed(1)} MB/s   `)
    }, 1000)
    : null
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const o = await fetchThrough(base, paths[next++] as string, progress)
      finished++
      outcomes.push(o)
      if (ticker !== null) process.stderr.write('\r\x1b[K')
      process.stdout.write(o.ok
        ? `ok    ${formatBytes(o.bytes).padStart(10)}  ${o.seconds.toFixed(1).padStart(6)} s  ${o.path}\n`
        : `fail  ${o.path}: ${o.reason ?? 'unknown'}\n`)
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(args.jobs ?? 4, paths.length) }, worker))
  } finally {
    if (ticker !== null) clearInterval(ticker)
  }
  const failed = outcomes.filter(o => !o.ok).length
  if (failed > 0) process.stderr.write(`aimirror: ${failed} of ${outcomes.length} failed\n`)
  return failed > 0 ? 1 : 0
}
