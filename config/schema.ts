/**
 * The YAML file's schema (snake_case, as written), applied to the document after it has been layered over
 * the embedded defaults, so every section field is present here; rule fields have their defaults below.
 * Every message starts with "expected …" so problems.ts can append what was actually found.
 * Seed files (the Python aimirror's config.yaml) validate unchanged: module-path handlers, upper-case log
 * levels, empty strings for "none" and Python regexes are accepted and normalised.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import type { Config, HandlerName, LogLevel } from './types.ts'
import { compileRulePattern, translatePythonRegex } from './pattern.ts'
import { checkOwnPorts, checkSelfUpstreams } from './own-ports.ts'

const NUMERIC = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\s*$/i

/** Numbers may arrive as strings (environment variables, quoted YAML); anything else stays as it is. */
function numeric (value: unknown): unknown {
  return typeof value === 'string' && NUMERIC.test(value) ? Number(value) : value
}

function intIn (min: number, max: number): z.ZodType<number, unknown> {
  const e = { error: `expected an integer from ${min} to ${max}` }
  return z.preprocess(numeric, z.number(e).int(e).min(min, e).max(max, e))
}

function intAtLeast (min: number): z.ZodType<number, unknown> {
  const e = { error: `expected an integer >= ${min}` }
  return z.preprocess(numeric, z.number(e).int(e).min(min, e))
}

/** Any integer; chunk_size <= 0 means "size / concurrency", normalised to 0. */
const chunkSize = z.preprocess(numeric, z.number({ error: 'expected an integer (bytes; 0 or less = size / concurrency)' })
  .int({ error: 'expected an integer (bytes; 0 or less = size / concurrency)' })).transform((n) => Math.max(0, n))

function numberAtLeast (min: number, exclusive = false): z.ZodType<number, unknown> {
  const e = { error: `expected a number ${exclusive ? '>' : '>='} ${min}` }
  const n = z.number(e).refine((v) => Number.isFinite(v), e)
  return z.preprocess(numeric, exclusive ? n.gt(min, e) : n.min(min, e))
}

/** A timeout in seconds: above 0, at most a day (Node's timers cannot hold much more, and cut it to 1 ms). */
function timeoutSeconds (zeroAllowed = false): z.ZodType<number, unknown> {
  const e = { error: `expected seconds ${zeroAllowed ? '>=' : '>'} 0 and at most 86400 (a day)` }
  const n = z.number(e).refine((v) => Number.isFinite(v), e).max(86_400, e)
  return z.preprocess(numeric, zeroAllowed ? n.min(0, e) : n.gt(0, e))
}

const bool = z.boolean({ error: 'expected true or false' })

function text (expected = 'expected a non-empty string'): z.ZodType<string, unknown> {
  return z.string({ error: expected }).trim().min(1, { error: expected })
}

/** Seed files write "" for "none"; YAML `~` works too. */
function optionalText<T> (inner: z.ZodType<T, unknown>): z.ZodType<T | null, unknown> {
  return z.preprocess((v) => (v === '' || v === undefined ? null : v), inner.nullable())
}

function list<T> (item: z.ZodType<T, unknown>, what = 'a list'): z.ZodType<T[], unknown> {
  return z.array(item, { error: `expected ${what}` })
}

function parseHttpUrl (value: string): URL | null {
  if (!/^https?:\/\//i.test(value)) return null
  try { return new URL(value) } catch { return null }
}

/** Why an upstream URL may not carry a user and password (a forward proxy's may). */
const NO_URL_CREDENTIALS = 'expected no user or password in the URL: they would be shown in logs, /health and the banner, and are not sent; let clients send their credentials (pip index-url https://user:token@mirror/..., npm _auth, docker login), which the mirror forwards to the upstream'

/** An absolute http(s) URL usable as a base: no query, no fragment; trailing slashes stripped (`credentials`: user:password@ allowed). */
function baseUrl (expected = 'expected an absolute http(s) URL without query or fragment', credentials = false): z.ZodType<string, unknown> {
  return z.string({ error: expected }).trim().transform((value, ctx) => {
    const url = parseHttpUrl(value)
    if (url === null || url.search !== '' || url.hash !== '' || url.hostname === '') {
      ctx.addIssue({ code: 'custom', message: expected, input: value })
      return z.NEVER
    }
    if (!credentials && (url.username !== '' || url.password !== '')) {
      ctx.addIssue({ code: 'custom', message: NO_URL_CREDENTIALS, input: value.replace(/\/\/[^@/]*@/, '//[credentials]@') })
      return z.NEVER
    }
    return value.replace(/\/+$/, '')
  })
}

/** scheme://host[:port] — what link rewriting searches for in bodies. */
const origin = z.string({ error: 'expected an origin like "https://files.pythonhosted.org"' }).trim().transform((value, ctx) => {
  const url = parseHttpUrl(value)
  if (url === null || url.pathname.replace(/\/+$/, '') !== '' || url.search !== '' || url.hash !== '') {
    ctx.addIssue({ code: 'custom', message: 'expected an origin like "https://files.pythonhosted.org" (scheme, host and optional port only)', input: value })
    return z.NEVER
  }
  return value.replace(/\/+$/, '')
})

const HOST_PORT = /^(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/i

/** `host[:port]` or a full http(s) base URL (kept as given, minus a trailing slash). */
const publicHost = z.string({ error: 'expected "host[:port]" or an http(s) base URL' }).trim().transform((value, ctx) => {
  const expected = 'expected "host[:port]" or an http(s) base URL'
  if (/^https?:\/\//i.test(value)) {
    const url = parseHttpUrl(value)
    if (url !== null && url.search === '' && url.hash === '') return value.replace(/\/+$/, '')
  } else {
    const m = HOST_PORT.exec(value)
    if (m !== null && (m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65535))) return value
  }
  ctx.addIssue({ code: 'custom', message: expected, input: value })
  return z.NEVER
})

export const HANDLER_NAMES: readonly HandlerName[] = ['pypi', 'oci', 'hf', 'npm', 'conda', 'cran', 'generic']

/** The Python aimirror named handlers by module path. */
export const SEED_HANDLER_ALIASES: Readonly<Record<string, HandlerName>> = {
  'handlers.docker': 'oci',
  'handlers.pypi': 'pypi',
  'handlers.pip': 'pypi',
  'handlers.huggingface': 'hf',
  'handlers.hf': 'hf',
  'handlers.npm': 'npm',
  'handlers.conda': 'conda',
  'handlers.cran': 'cran',
  'handlers.r': 'cran'
}

const HANDLER_EXPECTED = `expected one of ${HANDLER_NAMES.join(', ')} (or a seed module path: ${Object.keys(SEED_HANDLER_ALIASES).join(', ')})`

const handler = z.string({ error: HANDLER_EXPECTED }).transform((value, ctx): HandlerName => {
  const key = value.trim().toLowerCase()
  const name = (HANDLER_NAMES as readonly string[]).includes(key) ? key as HandlerName : SEED_HANDLER_ALIASES[key]
  if (name === undefined) {
    ctx.addIssue({ code: 'custom', message: HANDLER_EXPECTED, input: value })
    return z.NEVER
  }
  return name
})

const LOG_LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: 'trace', debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error', critical: 'fatal', fatal: 'fatal', silent: 'silent'
}
const LEVEL_EXPECTED = 'expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case; also trace, warn, fatal, silent)'

export const logLevel = z.string({ error: LEVEL_EXPECTED }).transform((value, ctx): LogLevel => {
  const level = LOG_LEVELS[value.trim().toLowerCase()]
  if (level === undefined) {
    ctx.addIssue({ code: 'custom', message: LEVEL_EXPECTED, input: value })
    return z.NEVER
  }
  return level
})

/** A regular expression searched in the path; Python syntax from seed files is translated. */
const pattern = z.string({ error: 'expected a regular expression (string)' }).transform((value, ctx) => {
  const source = translatePythonRegex(value)
  try {
    compileRulePattern(source)
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '') : String(err)
    ctx.addIssue({ code: 'custom', message: `expected a valid regular expression (${why})`, input: value })
    return z.NEVER
  }
  return source
})

const pathPrefix = z.string({ error: 'expected a path prefix starting with "/"' }).refine((v) => v.startsWith('/'), { error: 'expected a path prefix starting with "/"' })

const headerName = z.string({ error: 'expected an HTTP header name' })
  .regex(/^[!#$%&'*+.^_`|~0-9a-z-]+$/i, { error: 'expected an HTTP header name' })
  .transform((v) => v.toLowerCase())

function mapping<S extends z.core.$ZodLooseShape> (shape: S, what: string): z.ZodObject<S, z.core.$strict> {
  return z.strictObject(shape, { error: (issue) => (issue.code === 'invalid_type' ? `expected a mapping (${what})` : undefined) })
}

export const pathRewriteShape = {
  search: z.string({ error: 'expected a non-empty string' }).min(1, { error: 'expected a non-empty string' }),
  replace: z.string({ error: 'expected a string' })
}

export const contentRewriteShape = {
  content_types: list(text(), 'a list of content types'),
  targets: list(origin, 'a list of origins')
}

/** A rule's content_rewrite may omit either list (content types then come from the global section). */
const ruleContentRewriteShape = {
  content_types: list(text(), 'a list of content types').optional(),
  targets: list(origin, 'a list of origins').default([])
}

export const headerRewriteShape = {
  realm: optionalText(baseUrl('expected an absolute http(s) URL (the token endpoint)')).default(null),
  service: optionalText(text()).default(null)
}

export const ruleShape = {
  name: text('expected a rule name (non-empty string)'),
  pattern: optionalText(pattern).default(null),
  path_prefix: optionalText(pathPrefix).default(null),
  strip_prefix: bool.default(false),
  upstream: baseUrl(),
  strategy: z.enum(['proxy', 'parallel'], { error: 'expected "proxy" or "parallel"' }).default('proxy'),
  min_size: intAtLeast(0).default(1024 * 1024),
  max_size: z.preprocess((v) => (v === '' ? null : v), intAtLeast(0).nullable()).default(null),
  concurrency: intIn(1, 256).default(16),
  chunk_size: chunkSize.default(0),
  cache_key_source: z.enum(['original', 'final'], { error: 'expected "original" or "final"' }).default('final'),
  path_rewrite: z.preprocess((v) => v ?? [], list(mapping(pathRewriteShape, 'search and replace'), 'a list of {search, replace}')),
  head_meta_headers: z.preprocess((v) => v ?? [], list(headerName, 'a list of header names')),
  /** Absent = inferred from the upstream host (seed files name a handler only where the Python tool needed one). */
  handler: z.preprocess((v) => (v === '' ? null : v), handler.nullable()).optional(),
  content_rewrite: mapping(ruleContentRewriteShape, 'content_types and targets').nullable().default(null),
  header_rewrite: mapping(headerRewriteShape, 'realm and service').nullable().default(null),
  metadata_ttl_s: numberAtLeast(0).default(300),
  revalidate_s: z.preprocess((v) => (v === '' ? null : v), numberAtLeast(0).nullable()).default(600)
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const whenObject = { when: (payload: { value: unknown }): boolean => isRecord(payload.value) }

/** Well-known upstream hosts and the handler that speaks their protocol. */
export const HANDLER_BY_HOST: Readonly<Record<string, HandlerName>> = {
  'registry-1.docker.io': 'oci',
  'ghcr.io': 'oci',
  'quay.io': 'oci',
  'nvcr.io': 'oci',
  'gcr.io': 'oci',
  'registry.k8s.io': 'oci',
  'public.ecr.aws': 'oci',
  'registry.ollama.ai': 'oci',
  'huggingface.co': 'hf',
  'hf-mirror.com': 'hf',
  'pypi.org': 'pypi',
  'files.pythonhosted.org': 'pypi',
  'download.pytorch.org': 'pypi',
  'pypi.nvidia.com': 'pypi',
  'registry.npmjs.org': 'npm',
  'registry.yarnpkg.com': 'npm',
  'conda.anaconda.org': 'conda',
  'cloud.r-project.org': 'cran',
  'cran.r-project.org': 'cran'
}

/** The handler a rule without one gets: by upstream host, else none (plain HTTP). */
export function inferHandler (upstream: string): HandlerName | null {
  try {
    return HANDLER_BY_HOST[new URL(upstream).hostname.toLowerCase()] ?? null
  } catch {
    return null
  }
}

export const ruleSchema = mapping(ruleShape, 'a rule').superRefine((rule, ctx) => {
  // Runs even when some fields failed, so every problem is reported at once: read defensively.
  const r: Record<string, unknown> = rule
  const has = (key: string): boolean => r[key] !== null && r[key] !== undefined && r[key] !== ''
  if (!has('pattern') && !has('path_prefix')) {
    ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'missing: a rule needs "pattern" or "path_prefix" (or both)' })
  }
  if (r.strip_prefix === true && !has('path_prefix')) {
    ctx.addIssue({ code: 'custom', path: ['strip_prefix'], message: 'strip_prefix needs "path_prefix"' })
  }
  if (typeof r.max_size === 'number' && typeof r.min_size === 'number' && r.max_size < r.min_size) {
    ctx.addIssue({ code: 'custom', path: ['max_size'], message: `expected a size >= min_size (${r.min_size})`, input: r.max_size })
  }
}, whenObject).transform((rule) => ({ ...rule, handler: rule.handler === undefined ? inferHandler(rule.upstream) : rule.handler }))

const rules = list(ruleSchema, 'a list of rules').superRefine((items, ctx) => {
  const seen = new Map<string, number>()
  items.forEach((item, index) => {
    const name = isRecord(item) && typeof item.name === 'string' ? item.name.trim() : undefined
    if (name === undefined) return
    const first = seen.get(name)
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicate rule name "${name}" (also rules[${first}].name); names must be unique` })
    } else seen.set(name, index)
  })
}, { when: (payload) => Array.isArray(payload.value) })

export const serverShape = {
  host: text('expected a listen address (e.g. "127.0.0.1", "0.0.0.0", "::")')
    .refine((v) => /^\S+$/.test(v), { error: 'expected a listen address (e.g. "127.0.0.1", "0.0.0.0", "::")' })
    .refine((v) => !/[[\]]/.test(v), { error: 'expected an IPv6 listen address without brackets (e.g. "::1")' })
    .refine((v) => !v.includes('%'), { error: 'expected a listen address without an IPv6 zone id (%): the address alone, or "::"' }),
  port: intIn(0, 65535),
  upstream_proxy: optionalText(baseUrl('expected an http(s) proxy URL like "http://proxy.example:3128"', true)),
  public_host: optionalText(publicHost),
  max_concurrent_downloads: intIn(1, 100_000),
  connect_timeout_s: timeoutSeconds(),
  read_timeout_s: timeoutSeconds(),
  shutdown_timeout_s: timeoutSeconds(true)
}

export const cacheShape = {
  dir: text('expected a directory path'),
  max_size_gb: numberAtLeast(0),
  lru_enabled: bool,
  chunk_ttl_hours: numberAtLeast(0, true),
  min_free_gb: numberAtLeast(0),
  finish_abandoned: bool,
  verify_every_days: numberAtLeast(0)
}

export const loggingShape = {
  level: logLevel,
  file: optionalText(text('expected a file path'))
}

const registryHost = z.string({ error: 'expected a registry host like "ghcr.io" or "registry.local:5000"' })
  .refine((v) => HOST_PORT.test(v) && !/^\[/.test(v), { error: 'expected a registry host like "ghcr.io" or "registry.local:5000"' })

export const ociShape = {
  registries: z.record(registryHost, baseUrl(), { error: 'expected a mapping of registry host to upstream URL' }),
  token_ttl_s: intAtLeast(60),
  access_check_ttl_s: numberAtLeast(0)
}

const FLAG_WORDS: Readonly<Record<string, boolean>> = { true: true, false: false, 1: true, 0: false, yes: true, no: false, on: true, off: false }

/** true/false; from the environment also 1/0, yes/no, on/off. */
const flag = z.preprocess((v) => (typeof v === 'string' ? FLAG_WORDS[v.trim().toLowerCase()] ?? v : v), bool)

const MULTIADDR_EXPECTED = 'expected a multiaddr like "/ip4/0.0.0.0/tcp/4001"'

const multiaddrText = z.string({ error: MULTIADDR_EXPECTED }).trim().refine((v) => {
  try { return v.startsWith('/') && multiaddr(v).getComponents().some((c) => c.name === 'tcp') } catch { return false }
}, { error: MULTIADDR_EXPECTED })

const PEER_EXPECTED = 'expected a peer as "host:port" or a multiaddr like "/ip4/10.0.0.5/tcp/4001"'

/** A static peer: a TCP multiaddr (optionally with /p2p/<id>) or host:port. */
const peerAddress = z.string({ error: PEER_EXPECTED }).trim().refine((v) => {
  if (v.startsWith('/')) {
    try { return multiaddr(v).getComponents().some((c) => c.name === 'tcp') } catch { return false }
  }
  const m = HOST_PORT.exec(v)
  return m !== null && m[1] !== undefined && Number(m[1]) >= 1 && Number(m[1]) <= 65535
}, { error: PEER_EXPECTED })

/** A list, or (from the environment) one comma-separated string. */
function listOrCsv<T> (item: z.ZodType<T, unknown>, what: string): z.ZodType<T[], unknown> {
  return z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v ?? []), list(item, what))
}

export const clusterShape = {
  enabled: flag,
  name: text('expected a cluster name').refine((v) => /^[A-Za-z0-9._-]{1,64}$/.test(v), { error: 'expected a cluster name of letters, digits, ".", "_" or "-" (at most 64)' }),
  listen: listOrCsv(multiaddrText, 'a list of multiaddrs'),
  announce: listOrCsv(multiaddrText, 'a list of multiaddrs'),
  peers: listOrCsv(peerAddress, 'a list of peers'),
  mdns: flag,
  key_file: optionalText(text('expected a file path')),
  data_host: text('expected a listen address (e.g. "0.0.0.0")'),
  data_port: intIn(0, 65535),
  data_tls: flag,
  lookup_ms: intIn(0, 10_000)
}

export const configShape = {
  server: mapping(serverShape, 'server settings'),
  cache: mapping(cacheShape, 'cache settings'),
  rules,
  content_rewrite: mapping(contentRewriteShape, 'content_types and targets'),
  logging: mapping(loggingShape, 'logging settings'),
  oci: mapping(ociShape, 'registries, token_ttl_s, access_check_ttl_s'),
  cluster: mapping(clusterShape, 'cluster settings')
}

export const configSchema = mapping(configShape, 'the sections server, cache, rules, content_rewrite, logging, oci, cluster').superRefine((config, ctx) => {
  checkOwnPorts(config, ctx)
  checkSelfUpstreams(config, ctx)
})

export type ParsedConfig = z.output<typeof configSchema>

/** Known keys per place in the document (`rules[]` stands for any rule), for "did you mean" hints. */
export const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(configShape),
  server: Object.keys(serverShape),
  cache: Object.keys(cacheShape),
  logging: Object.keys(loggingShape),
  oci: Object.keys(ociShape),
  cluster: Object.keys(clusterShape),
  content_rewrite: Object.keys(contentRewriteShape),
  'rules[]': Object.keys(ruleShape),
  'rules[].content_rewrite': Object.keys(ruleContentRewriteShape),
  'rules[].header_rewrite': Object.keys(headerRewriteShape),
  'rules[].path_rewrite[]': Object.keys(pathRewriteShape)
}

// The schema's output must fit the public Config type (checked at compile time only).
// Rule content_rewrite.content_types is filled from the global section by the loader.
type _Fits = Omit<ParsedConfig, 'rules'> extends Omit<Config, 'rules'> ? true : never
const _fits: _Fits = true
void _fits
