import type { Config } from '../config/types.ts'
import { clientBaseUrl, clientSettings } from './client-settings.ts'
import { createRouter } from '../node/router/router.ts'

/** `aimirror env`: the settings that point each client at this node (as configured, not as running). */
export function printEnv (config: Config, port: number = config.server.port): void {
  const router = createRouter(config.rules)
  const base = clientBaseUrl(config, port)
  process.stdout.write(`${clientSettings(config, base, (path) => router.match(path)?.rule ?? null)}\n`)
}
