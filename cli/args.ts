import { parseArgs } from 'node:util'

export interface CliArgs {
  command: 'start' | 'config-check' | 'config-print' | 'env' | 'help' | 'version' | 'stats' | 'peers' | 'keygen' | 'prefetch'
  config: string | undefined
  flags: { port?: number; host?: string; cacheDir?: string; logLevel?: string }
  /** stats/peers: ask the whole cluster, print JSON, the node's URL; keygen: the file to write. */
  cluster?: boolean
  json?: boolean
  url?: string
  file?: string
  /** prefetch: what to fetch, and how many at once. */
  targets?: string[]
  jobs?: number
}

/** A mistake on the command line: one clear line, no stack trace. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE'
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'cache-dir': { type: 'string' },
  'log-level': { type: 'string' },
  cluster: { type: 'boolean' },
  json: { type: 'boolean' },
  url: { type: 'string' },
  jobs: { type: 'string', short: 'j' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' }
} as const

export function parseCliArgs (argv: readonly string[]): CliArgs {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? 'invalid arguments')
  }
  const { values, positionals } = parsed
  const flags: CliArgs['flags'] = {}
  if (values.port !== undefined) {
    const port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`--port: expected an integer from 0 to 65535, got "${values.port}"`)
    flags.port = port
  }
  if (values.host !== undefined) flags.host = values.host
  if (values['cache-dir'] !== undefined) flags.cacheDir = values['cache-dir']
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level']

  const base = { config: values.config, flags }
  if (values.help === true) return { command: 'help', ...base }
  if (values.version === true) return { command: 'version', ...base }

  const [first, second, ...rest] = positionals
  // Flags a command would ignore are refused: a script asking for JSON must not get a table.
  if (values.json === true && first !== 'stats' && first !== 'peers') throw new UsageError('--json: only "stats" and "peers" print JSON')
  if (values.cluster === true && first !== 'stats') throw new UsageError('--cluster: only "stats" takes it')
  if (first === 'prefetch') {
    const jobs = values.jobs === undefined ? undefined : Number(values.jobs)
    if (jobs !== undefined && (!/^\d+$/.test(values.jobs ?? '') || jobs < 1 || jobs > 64)) throw new UsageError(`--jobs: expected an integer from 1 to 64, got "${values.jobs ?? ''}"`)
    if (second === undefined) throw new UsageError('prefetch: name at least one URL or path to fetch')
    return { command: 'prefetch', ...base, url: values.url, targets: positionals.slice(1), jobs }
  }
  if (first === 'config') return configCommand(second, rest, base)
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`)
  if (first === undefined || first === 'start') {
    if (second !== undefined) throw new UsageError(`unexpected argument "${second}"`)
    return { command: 'start', ...base }
  }
  if ((first === 'env' || first === 'stats' || first === 'peers') && second !== undefined) throw new UsageError(`${first}: unexpected argument "${second}"`)
  if (first === 'env') return { command: 'env', ...base }
  if (first === 'help') return { command: 'help', ...base }
  if (first === 'stats' || first === 'peers') {
    return { command: first, ...base, cluster: values.cluster === true, json: values.json === true, url: values.url }
  }
  if (first === 'keygen') return { command: 'keygen', ...base, file: second }
  throw new UsageError(`unknown command "${first}" (try "aimirror --help")`)
}

/** `config check|print [FILE]`: a file named after the subcommand is the config file, as with -c. */
function configCommand (sub: string | undefined, files: string[], base: { config: string | undefined, flags: CliArgs['flags'] }): CliArgs {
  if (sub !== 'check' && sub !== 'print') throw new UsageError(`config: expected "check" or "print", got ${sub === undefined ? 'nothing' : `"${sub}"`}`)
  if (files.length > 1) throw new UsageError(`config ${sub}: one file at most, got ${files.length}`)
  const file = files[0]
  if (file !== undefined && base.config !== undefined && base.config !== file) throw new UsageError(`config ${sub}: two files named ("${file}" and -c "${base.config}")`)
  return { command: sub === 'check' ? 'config-check' : 'config-print', ...base, config: file ?? base.config }
}

export const HELP = `aimirror — download mirror and accelerator for PyPI, OCI registries, HuggingFace, CRAN, conda, npm
and any HTTP download.

Usage:
  aimirror [start] [options]     run the node (default command)
  aimirror config check [FILE]   validate the configuration (FILE, or -c) and exit
  aimirror config print [FILE]   print the effective configuration as YAML
  aimirror env                   print the settings that point each client at this node
  aimirror stats [--cluster] [--json]   this node's cache numbers, or every cluster node's and totals
  aimirror peers [--json]        the cluster peers this node is connected to
  aimirror keygen [FILE]         write a new cluster key (to FILE, never overwriting, or to stdout)
  aimirror prefetch [-j N] URL|PATH...   fetch files through the node so the cache has them before anyone
                                 asks: upstream URLs (a release asset, a wheel, a model file) or mirror paths
  aimirror --help | --version

Options:
  -c, --config FILE     YAML config file (also AIMIRROR_CONFIG); without one, the embedded defaults
  -p, --port N          listen port (AIMIRROR_PORT), default 8081
      --host ADDR       listen address (AIMIRROR_HOST), default 127.0.0.1
      --cache-dir DIR   cache directory (AIMIRROR_CACHE_DIR), default $XDG_CACHE_HOME/aimirror
      --log-level L     trace|debug|info|warn|error (AIMIRROR_LOG_LEVEL)
      --url URL         stats/peers/prefetch: the node to ask (default: the configured listen address)
  -j, --jobs N          prefetch: files fetched at once (default 4)

Cluster: AIMIRROR_CLUSTER=1 joins the LAN cluster, AIMIRROR_MDNS=0 turns multicast discovery off.
`
