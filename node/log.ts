import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { pino } from 'pino'
import type { Logger } from 'pino'
import type { LoggingConfig } from '../config/types.ts'
import { redactSignature } from './signed-url.ts'

export type { Logger }

/** What the request line of the log shows of an incoming request. */
interface LoggedRequest {
  method: string
  url: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}

/**
 * The node's root logger: JSON lines on stdout, and also to `logging.file` when set.
 * Components take a child: `logger.child({ component: 'fetch' })`.
 */
export function createLogger (logging: LoggingConfig, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level: logging.level,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization'], censor: '[redacted]' },
    // A signed URL's signature is a credential: logged URLs keep their signing parameters' names only.
    // (`req` replaces the HTTP server's own serializer, which logs the URL as it came.)
    serializers: {
      url: (url: unknown) => typeof url === 'string' ? redactSignature(url) : url,
      // Cache keys and blob names of URL-keyed files are URLs too.
      key: (key: unknown) => typeof key === 'string' ? redactSignature(key) : key,
      name: (name: unknown) => typeof name === 'string' ? redactSignature(name) : name,
      req: (req: LoggedRequest) => ({ method: req.method, url: redactSignature(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort })
    }
  }
  if (destination !== undefined) return pino(options, destination)
  if (logging.file === null) return pino(options)
  const unwritable = writeProblem(logging.file)
  if (unwritable !== null) {
    // The seed's config names a system path: a user without the right to it still gets a node (and is told).
    const logger = pino(options)
    logger.warn({ file: logging.file, err: unwritable }, 'logging.file cannot be written; logging to stdout only')
    return logger
  }
  const file = pino.destination({ dest: logging.file, mkdir: true, sync: false })
  // A log file that fails later (disk full, removed mount) must not take the node down.
  file.on('error', () => {})
  logFiles.add(file)
  return pino(options, pino.multistream([
    { stream: process.stdout, level: logging.level === 'silent' ? 'fatal' : logging.level },
    { stream: file, level: logging.level === 'silent' ? 'fatal' : logging.level }
  ]))
}

/** The `logging.file` destinations open in this process (reopened after a log rotation). */
const logFiles = new Set<{ reopen: () => void }>()

/**
 * Reopens every `logging.file` by its path: after logrotate moved the file away (its `postrotate` sends
 * SIGHUP), lines go to the new file instead of the rotated one. How many were reopened.
 */
export function reopenLogFiles (): number {
  for (const file of logFiles) {
    try {
      file.reopen()
    } catch {
      // The path cannot be opened now (its directory went): lines keep going to the old file.
    }
  }
  return logFiles.size
}

/** Why `path` cannot be appended to (its directory made first), or null. */
function writeProblem (path: string): string | null {
  try {
    mkdirSync(dirname(path), { recursive: true })
    closeSync(openSync(path, 'a'))
    return null
  } catch (err) {
    return (err as Error).message
  }
}
