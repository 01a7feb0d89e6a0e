import { execFile, execFileSync } from 'node:child_process'

/** curl on PATH, or null. */
export function findCurl (): string | null {
  try {
    const found = execFileSync('which', ['curl'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return found === '' ? null : found
  } catch {
    return null
  }
}

export interface CurlResult {
  status: number
  bytes: number
  /** Request start → end of body, seconds. */
  totalS: number
}

/**
 * One GET with curl, body to /dev/null: measures the server, not a client that hashes in JavaScript
 * (which caps near 300–450 MB/s here). Bytes are verified separately.
 */
export async function curlGet (curl: string, url: string, timeoutMs: number): Promise<CurlResult> {
  return await new Promise((resolve, reject) => {
    execFile(curl, ['-s', '-o', '/dev/null', '-H', 'Accept-Encoding: identity', '-w', '%{http_code} %{size_download} %{time_total}', url],
      { timeout: timeoutMs }, (err, stdout) => {
        if (err !== null) { reject(err); return }
        const [status, bytes, total] = stdout.trim().split(' ').map(Number)
        resolve({ status: status ?? 0, bytes: bytes ?? 0, totalS: total ?? 0 })
      })
  })
}
