/**
 * Loads the configuration once, at the edge: embedded defaults ← file ← AIMIRROR_* env ← CLI flags,
 * validated in one pass (every problem reported), then cloned and deep-frozen.
 * This is the only module that reads process.env.
 */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { parseDocument, stringify } from 'yaml'
import type { ScalarTag, Tags } from 'yaml'
import { ConfigError } from './errors.ts'
import { configSchema } from './schema.ts'
import type { ParsedConfig } from './schema.ts'
import { defaultCacheDir, defaultsDocument } from './defaults.ts'
import { applyOverrides, envOverrides, flagOverrides, isRecord, mergeDocument, sourceLookup } from './layers.ts'
import type { Env, Flags, Override, RawDocument } from './layers.ts'
import { issuesToProblems } from './problems.ts'
import type { Config, Rule } from './types.ts'

export type { Env, Flags } from './layers.ts'

export interface LoadOptions {
  /** YAML file; when absent, AIMIRROR_CONFIG names it; with neither, the defaults alone. */
  file?: string | null
  /** Defaults to process.env. */
  env?: Env
  flags?: Flags
  /** Base for relative paths (cache.dir, logging.file); defaults to process.cwd(). */
  cwd?: string
}

export interface ParseOptions {
  /** Used only for the default cache dir (XDG_CACHE_HOME, HOME); defaults to process.env. */
  env?: Env
  /** Where the input came from, for error messages. */
  source?: string
  cwd?: string
}

/** YAML 1.1, as PyYAML read the seed project's files (`yes`/`no` booleans, `1_000`, `0o755`). */
const YAML_VERSION = '1.1'

/**
 * PyYAML's booleans: YAML 1.1 without `y`/`n`, which PyYAML reads as strings (a rule named `y`). (A key
 * given twice stays an error with its line, though PyYAML took the last: it is a mistake to show.)
 */
const BOOL = 'tag:yaml.org,2002:bool'
const boolTag = (value: boolean, test: RegExp): ScalarTag => ({ identify: v => v === value, default: true, tag: BOOL, test, resolve: () => value })
const PYYAML = {
  version: YAML_VERSION,
  customTags: (tags: Tags): Tags => [
    ...tags.filter(t => (t as { tag?: string }).tag !== BOOL),
    boolTag(true, /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/),
    boolTag(false, /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/)
  ]
} as const

function readYamlFile (file: string): RawDocument {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, expected a YAML file' : code === 'EACCES' ? 'permission denied' : `cannot read (${code ?? String(err)})`
    throw new ConfigError([`${file}: ${why}`], { source: file, cause: err })
  }
  const doc = parseDocument(text, PYYAML)
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const pos = e.linePos?.[0]
      const where = pos === undefined ? file : `${file}:${pos.line}:${pos.col}`
      return `${where}: YAML syntax error: ${e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? e.code}`
    }), { source: file })
  }
  const value: unknown = doc.toJS({ maxAliasCount: 1000 })
  if (value === null || value === undefined) return {}
  if (!isRecord(value)) {
    throw new ConfigError([`${file}: expected a mapping with the sections server, cache, rules, content_rewrite, logging, got ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`], { source: file })
  }
  return value
}

function expandHome (path: string, env: Env): string {
  if (path !== '~' && !path.startsWith('~/')) return path
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir()
  return join(home, path.slice(1))
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

/** Validates the layered document; fills what depends on the environment; clones and freezes. */
function finish (doc: RawDocument, overrides: readonly Override[], env: Env, cwd: string, source: string): Config {
  const cache = doc.cache
  if (isRecord(cache) && (cache.dir === null || cache.dir === undefined)) {
    doc = { ...doc, cache: { ...cache, dir: defaultCacheDir(env, homedir()) } }
  }
  const result = configSchema.safeParse(doc, { reportInput: true })
  if (!result.success) throw new ConfigError(issuesToProblems(result.error.issues, sourceLookup(overrides)), { source })
  return deepFreeze(structuredClone(normalise(result.data, env, cwd)))
}

function normalise (parsed: ParsedConfig, env: Env, cwd: string): Config {
  const absolute = (p: string): string => {
    const expanded = expandHome(p, env)
    return isAbsolute(expanded) ? expanded : resolve(cwd, expanded)
  }
  const rules: Rule[] = parsed.rules.map((rule) => ({
    ...rule,
    content_rewrite: rule.content_rewrite === null
      ? null
      : { content_types: rule.content_rewrite.content_types ?? parsed.content_rewrite.content_types, targets: rule.content_rewrite.targets }
  }))
  return {
    ...parsed,
    cache: { ...parsed.cache, dir: absolute(parsed.cache.dir) },
    logging: { ...parsed.logging, file: parsed.logging.file === null ? null : absolute(parsed.logging.file) },
    cluster: { ...parsed.cluster, key_file: parsed.cluster.key_file === null ? null : absolute(parsed.cluster.key_file) },
    rules
  }
}

/**
 * Validates and normalises an already-parsed document (e.g. a YAML file's contents) over the embedded
 * defaults. No AIMIRROR_* overrides apply here. Throws ConfigError listing every problem.
 */
export function parseConfig (input: unknown, opts: ParseOptions = {}): Config {
  const source = opts.source ?? 'input'
  if (input !== null && input !== undefined && !isRecord(input)) {
    throw new ConfigError([`${source}: expected a mapping with the sections server, cache, rules, content_rewrite, logging`], { source })
  }
  const doc = mergeDocument(defaultsDocument(), input ?? {})
  return finish(doc, [], opts.env ?? process.env, opts.cwd ?? process.cwd(), source)
}

/** The effective configuration: defaults ← file ← env ← flags. Throws ConfigError listing every problem. */
export function loadConfig (options: LoadOptions = {}): Config {
  const env = options.env ?? process.env
  const envFile = env.AIMIRROR_CONFIG !== undefined && env.AIMIRROR_CONFIG.trim() !== '' ? env.AIMIRROR_CONFIG : undefined
  const file = options.file ?? envFile
  let doc = defaultsDocument()
  if (file !== undefined && file !== null) doc = mergeDocument(doc, readYamlFile(file))
  const overrides = [...envOverrides(env), ...flagOverrides(options.flags ?? {})]
  doc = applyOverrides(doc, overrides)
  return finish(doc, overrides, env, options.cwd ?? process.cwd(), file ?? 'defaults')
}

/** The effective configuration as YAML (`aimirror config print`); loading it again gives the same config. */
export function configToYaml (config: Config): string {
  return `# aimirror effective configuration\n${stringify(config, { version: YAML_VERSION, lineWidth: 0 })}`
}
