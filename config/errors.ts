/**
 * A user's configuration mistake. `problems` holds one line per problem, each naming where it is
 * (`rules[3].strategy`, `AIMIRROR_PORT`, `--port`, `config.yaml:4:3`) and what was expected, so the CLI can
 * print them all at once without a stack trace.
 */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG'
  readonly problems: readonly string[]
  /** Where the configuration came from (a file path, or "defaults"). */
  readonly source: string

  constructor (problems: readonly string[], options: { source?: string; cause?: unknown } = {}) {
    const source = options.source ?? 'defaults'
    const head = `invalid configuration (${source}): ${problems.length} problem${problems.length === 1 ? '' : 's'}`
    super(`${head}\n${problems.map((p) => `  ${p}`).join('\n')}`, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ConfigError'
    this.problems = Object.freeze([...problems])
    this.source = source
  }
}
