import type { Config } from '../config/types.ts'
import { createNode } from '../node/index.ts'
import { clientBaseUrl, clientSettings } from './client-settings.ts'
import { createRouter } from '../node/router/router.ts'
import { hostPort } from '../node/http/host-port.ts'
import { reopenLogFiles } from '../node/log.ts'

/**
 * Runs the node until SIGINT/SIGTERM, then stops it gracefully within the configured deadline. SIGHUP
 * reopens `logging.file` (log rotation), instead of ending the process as it does by default. A cache
 * index removed under the running node (the cache cleared by hand) makes the process start itself again.
 */
export async function runStart (config: Config): Promise<number> {
  const node = createNode(config)
  await node.start()
  const onHangup = (): void => {
    const n = reopenLogFiles()
    process.stderr.write(`aimirror: SIGHUP, ${n === 0 ? 'no logging.file to reopen' : 'logging.file reopened'}\n`)
  }
  process.on('SIGHUP', onHangup)
  const stopped = new Promise<number>((resolve) => {
    let stopping = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`aimirror: ${signal} again, exiting now\n`)
        resolve(1)
        process.exit(1)
      }
      stopping = true
      process.stderr.write(`aimirror: ${signal}, stopping: requests in flight get up to ${config.server.shutdown_timeout_s}s (server.shutdown_timeout_s)\n`)
      node.stop({ deadlineMs: config.server.shutdown_timeout_s * 1000 }).then(() => {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
        process.off('SIGHUP', onHangup)
        resolve(0)
      }, (err: unknown) => {
        process.stderr.write(`aimirror: stop failed: ${String(err)}\n`)
        resolve(1)
      })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    node.cacheLost.then((reason) => {
      if (stopping) return
      stopping = true
      node.components.logger.error({ dir: config.cache.dir }, `${reason} while the node ran; starting again on the cache directory as it is now`)
      node.stop({ deadlineMs: config.server.shutdown_timeout_s * 1000 }).then(() => {
        // The same process (pid, stdout, supervisor) starts afresh: the index is opened (and locked) anew.
        if (process.execve === undefined) throw new Error('this platform cannot restart a process in place; start the node again')
        process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], process.env)
      }).catch((err: unknown) => {
        process.stderr.write(`aimirror: could not start again: ${String(err)}\n`)
        resolve(1)
      })
    }, () => {})
  })
  // Said once the signals are handled: whoever reads it (a supervisor, a test) may signal at once.
  const { port } = node.address()
  const base = clientBaseUrl(config, port)
  const router = createRouter(config.rules)
  process.stdout.write(
    `aimirror listening on http://${hostPort(config.server.host, port)}` +
    ` (cache ${config.cache.dir}, ${config.rules.length} rules)\n\n` +
    `Point your clients at it:\n${clientSettings(config, base, (path) => router.match(path)?.rule ?? null) || '  (no rule serves a client aimirror knows; requests go to the rule their path matches)'}\n\n` +
    `What it is doing: ${base}/dashboard (Prometheus: ${base}/metrics)\n\n`)
  return await stopped
}
