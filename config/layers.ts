/**
 * Layering of raw (not yet validated) documents: embedded defaults ← file ← environment ← flags.
 * A file's sections merge over the defaults field by field; its `rules`, when present, replace the default
 * rules. Environment and flag values are recorded with their origin, so a bad one is reported by the name
 * the user typed (`AIMIRROR_PORT`, `--port`) rather than by its place in the document.
 */
import type { IssuePath } from './problems.ts'

export type RawDocument = Record<string, unknown>
export type Env = Readonly<Record<string, string | undefined>>

export interface Flags {
  port?: number
  host?: string
  cacheDir?: string
  logLevel?: string
}

export interface Override {
  readonly path: readonly [string, string]
  readonly value: unknown
  /** Env var or flag name, used in problem lines. */
  readonly source: string
}

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Sections a file may give in part. */
const SECTIONS = ['server', 'cache', 'content_rewrite', 'logging', 'oci', 'cluster']

/** `layer` over `base`: sections field by field, `rules` wholesale, anything else as given (to be rejected). */
export function mergeDocument (base: RawDocument, layer: RawDocument): RawDocument {
  const out: RawDocument = { ...base }
  for (const [key, value] of Object.entries(layer)) {
    const under = base[key]
    // `logging:` with nothing under it is null in YAML: keep the defaults.
    if (SECTIONS.includes(key) && value === null) continue
    out[key] = SECTIONS.includes(key) && isRecord(value) && isRecord(under) ? { ...under, ...value } : value
  }
  return out
}

const ENV_OVERRIDES: ReadonlyArray<{ name: string; path: readonly [string, string]; emptyIsNone?: boolean }> = [
  { name: 'AIMIRROR_HOST', path: ['server', 'host'] },
  { name: 'AIMIRROR_PORT', path: ['server', 'port'] },
  { name: 'AIMIRROR_PUBLIC_HOST', path: ['server', 'public_host'], emptyIsNone: true },
  { name: 'AIMIRROR_UPSTREAM_PROXY', path: ['server', 'upstream_proxy'], emptyIsNone: true },
  { name: 'AIMIRROR_CACHE_DIR', path: ['cache', 'dir'] },
  { name: 'AIMIRROR_MAX_SIZE_GB', path: ['cache', 'max_size_gb'] },
  { name: 'AIMIRROR_LOG_LEVEL', path: ['logging', 'level'] },
  { name: 'AIMIRROR_CLUSTER', path: ['cluster', 'enabled'] },
  { name: 'AIMIRROR_MDNS', path: ['cluster', 'mdns'] },
  { name: 'AIMIRROR_CLUSTER_NAME', path: ['cluster', 'name'] },
  { name: 'AIMIRROR_CLUSTER_KEY_FILE', path: ['cluster', 'key_file'], emptyIsNone: true },
  { name: 'AIMIRROR_CLUSTER_PEERS', path: ['cluster', 'peers'] }
]

/**
 * Overrides from the environment. An empty variable counts as unset, except where empty means "none"
 * (AIMIRROR_PUBLIC_HOST, AIMIRROR_UPSTREAM_PROXY), as in seed files.
 */
export function envOverrides (env: Env): Override[] {
  const out: Override[] = []
  for (const { name, path, emptyIsNone } of ENV_OVERRIDES) {
    const value = env[name]
    if (value === undefined || (value.trim() === '' && emptyIsNone !== true)) continue
    out.push({ path, value: value.trim() === '' ? null : value, source: name })
  }
  return out
}

export function flagOverrides (flags: Flags): Override[] {
  const out: Override[] = []
  if (flags.host !== undefined) out.push({ path: ['server', 'host'], value: flags.host, source: '--host' })
  if (flags.port !== undefined) out.push({ path: ['server', 'port'], value: flags.port, source: '--port' })
  if (flags.cacheDir !== undefined) out.push({ path: ['cache', 'dir'], value: flags.cacheDir, source: '--cache-dir' })
  if (flags.logLevel !== undefined) out.push({ path: ['logging', 'level'], value: flags.logLevel, source: '--log-level' })
  return out
}

/** Applies overrides in order (later wins) to a copy; a section that is not a mapping is left to validation. */
export function applyOverrides (doc: RawDocument, overrides: readonly Override[]): RawDocument {
  const out: RawDocument = { ...doc }
  for (const { path: [section, key], value } of overrides) {
    const current = out[section]
    if (current === undefined || current === null) out[section] = { [key]: value }
    else if (isRecord(current)) out[section] = { ...current, [key]: value }
  }
  return out
}

/** The origin label for a document path, if the last override of that field came from env or a flag. */
export function sourceLookup (overrides: readonly Override[]): (path: IssuePath) => string | undefined {
  const last = new Map<string, string>()
  for (const o of overrides) last.set(`${o.path[0]}.${o.path[1]}`, o.source)
  // A problem inside an overridden value (an item of a list) is the override's too.
  return (path) => (path.length >= 2 ? last.get(`${String(path[0])}.${String(path[1])}`) : undefined)
}
