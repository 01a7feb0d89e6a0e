import { pino } from 'pino'
import type { Logger } from 'pino'
import type { LoggingConfig } from '../config/types.ts'

export type { Logger }

/**
 * The node's root logger: JSON lines on stdout, and also to `logging.file` when set.
 * Components take a child: `logger.child({ component: 'fetch' })`.
 */
export function createLogger (logging: LoggingConfig, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level: logging.level,
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization'], censor: '[redacted]' }
  }
  if (destination !== undefined) return pino(options, destination)
  if (logging.file === null) return pino(options)
  return pino(options, pino.multistream([
    { stream: process.stdout, level: logging.level === 'silent' ? 'fatal' : logging.level },
    { stream: pino.destination({ dest: logging.file, mkdir: true, sync: false }), level: logging.level === 'silent' ? 'fatal' : logging.level }
  ]))
}
