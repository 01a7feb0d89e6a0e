#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs'
import { HELP, UsageError, parseCliArgs } from './args.ts'
import type { CliArgs } from './args.ts'
import { configToYaml, loadConfig } from '../config/load.ts'
import { ConfigError } from '../config/errors.ts'
import { AimirrorError } from '../node/errors.ts'

// Commands load the node (libp2p, fastify, level…) only when they need it: `--help` and
// `config check` stay instant.

function version (): string {
  // From the source (cli/) or compiled (dist/cli/): package.json is one or two levels up.
  const here = new URL('../package.json', import.meta.url)
  const file = existsSync(here) ? here : new URL('../../package.json', import.meta.url)
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version: string }
  return pkg.version
}

async function run (args: CliArgs): Promise<number> {
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP)
      return 0
    case 'version':
      process.stdout.write(`aimirror ${version()}\n`)
      return 0
    case 'config-check': {
      const config = loadConfig({ file: args.config, flags: args.flags })
      process.stdout.write(`config ok: ${config.rules.length} rules, listening on ${config.server.host}:${config.server.port}, cache in ${config.cache.dir}\n`)
      return 0
    }
    case 'config-print':
      process.stdout.write(configToYaml(loadConfig({ file: args.config, flags: args.flags })))
      return 0
    case 'env':
      (await import('./env.ts')).printEnv(loadConfig({ file: args.config, flags: args.flags }))
      return 0
    case 'start':
      return await (await import('./start.ts')).runStart(loadConfig({ file: args.config, flags: args.flags }))
    case 'stats':
      return await (await import('./cluster-commands.ts')).runStats(loadConfig({ file: args.config, flags: args.flags }), args)
    case 'peers':
      return await (await import('./cluster-commands.ts')).runPeers(loadConfig({ file: args.config, flags: args.flags }), args)
    case 'keygen':
      return await (await import('./cluster-commands.ts')).runKeygen(args.file)
    case 'prefetch':
      return await (await import('./prefetch.ts')).runPrefetch(loadConfig({ file: args.config, flags: args.flags }), args)
  }
}

async function main (): Promise<void> {
  try {
    process.exitCode = await run(parseCliArgs(process.argv.slice(2)))
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`aimirror: invalid configuration\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`)
      process.exitCode = 2
    } else if (err instanceof UsageError) {
      process.stderr.write(`aimirror: ${err.message}\n`)
      process.exitCode = 2
    } else if (err instanceof AimirrorError) {
      // A known failure (a port taken, a cache directory in use): its message says what to change.
      process.stderr.write(`aimirror: ${err.message}\n`)
      process.exitCode = 1
    } else {
      process.stderr.write(`aimirror: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exitCode = 1
    }
  }
}

await main()
