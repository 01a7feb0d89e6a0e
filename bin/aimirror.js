#!/usr/bin/env node
// Published entry: runs the compiled CLI when present, the TypeScript source otherwise (Node >= 22.18 strips types).
//
// Running the node (`start`, or no command: its default) re-executes itself once (process.execve,
// Node >= 23.11) with V8 settings for a long-running node that moves a lot of bytes: every socket and file read allocates a fresh buffer that V8 frees
// only when it collects. --expose-gc lets the fetch engine run a cheap young-generation collection
// every few MiB moved (instead of V8 running full mark-compacts under external-memory pressure), a
// small young generation keeps the heap small, and the old generation may grow by 40 % of what is live
// before a mark-compact (the live heap is ~25 MB; V8's own factor lets it double and more, which with
// 16 downloads at once left 15–20 MB of dead objects resident).
// No malloc thresholds: setting any glibc threshold turns off its dynamic mmap threshold, and then every
// 1 MiB read buffer is mmapped and faulted in afresh (measured: about twice the CPU per GiB). Two malloc
// arenas at most (unless the user set MALLOC_ARENA_MAX): each thread-pool thread otherwise grows an arena
// of its own that stays resident (about 10 MiB of peak RSS saved, same CPU).
// Without execve it runs as is.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'
import { NEEDS, tooOld } from './node-version.js'

const TUNED = 'AIMIRROR_TUNED'
const ARENAS = 'MALLOC_ARENA_MAX'
const V8_FLAGS = ['--expose-gc', '--max-semi-space-size=2', '--heap-growing-percent=40']

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const compiled = existsSync(join(root, 'dist', 'cli', 'main.js'))
const cliModule = (name) => pathToFileURL(join(root, ...(compiled ? ['dist', 'cli', `${name}.js`] : ['cli', `${name}.ts`]))).href

/** Whether these arguments run the node: `start`, or no command at all (its default). */
async function runsNode (argv) {
  try {
    const { parseCliArgs } = await import(cliModule('args'))
    return parseCliArgs(argv).command === 'start'
  } catch {
    // A usage error: the CLI reports it, untuned.
    return false
  }
}

async function retune () {
  const env = process.env
  if (env[TUNED] !== undefined || env.AIMIRROR_NO_TUNE !== undefined) return
  if (typeof process.execve !== 'function' || !(await runsNode(process.argv.slice(2)))) return
  const have = new Set([...process.execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].map(f => f.split('=')[0]))
  const flags = V8_FLAGS.filter(f => !have.has(f.split('=')[0]))
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...flags, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      { ...env, [ARENAS]: env[ARENAS] ?? '2', [TUNED]: '1' })
  } catch {
    // Not allowed here (sandbox, odd platform): run untuned.
  }
}

if (tooOld(process.versions.node)) {
  process.stderr.write(`aimirror: needs Node.js ${NEEDS} or later; this is ${process.versions.node} (${process.execPath})\n`)
  process.exit(1)
}

await retune()
await import(cliModule('main'))
