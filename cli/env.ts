import type { Config } from '../config/types.ts'
import { clientBaseUrl, clientSettings } from './client-settings.ts'
import { createRouter } from '../node/router/router.ts'

/** `aimirror env`: the settings that point each client at this node (as configured, not as running). */
export function printEnv (config: Config, port: number = config.server.port): void {
  const router = createRouter(config.rules)
  const base = clientBaseUrl(config, port)
  const settings = clientSettings(config, base, (path) => router.match(path)?.rule ?? null)
  if (settings.trim() === '') {
    // Nothing to print is not nothing to say: the rules serve none of the clients it knows.
    process.stderr.write('aimirror: no rule serves a client this command knows (pip, uv, conda, npm, R, huggingface_hub, docker/containerd); generic rules are used by their URLs as they are\n')
    return
  }
  process.stdout.write(`${settings}\n`)
}
