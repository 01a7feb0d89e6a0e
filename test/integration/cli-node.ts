import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { until } from './fetch-helpers.ts'

const MAIN = fileURLToPath(new URL('../../cli/main.ts', import.meta.url))

/**
 * The real CLI's `start` as a child process (cluster off, no environment overrides), with `nodeArgs`
 * for Node itself; resolves once `url`/health answers.
 */
export async function startCliNode (config: string, url: string, nodeArgs: readonly string[] = [], env: Record<string, string> = {}): Promise<ChildProcess> {
  const c = spawn(process.execPath, [...nodeArgs, MAIN, 'start', '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env, AIMIRROR_CLUSTER: '0', AIMIRROR_CONFIG: '', AIMIRROR_PORT: '', AIMIRROR_HOST: '' }
  })
  let stderr = ''
  c.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  await until(async () => {
    if (c.exitCode !== null) throw new Error(`node exited: ${stderr}`)
    return await new Promise<boolean>(resolve => {
      request(`${url}/health`, res => { res.resume(); resolve(res.statusCode === 200) }).on('error', () => { resolve(false) }).end()
    })
  }, 20_000)
  return c
}
