/** A URL hostname of this machine's loopback: `localhost`, 127.0.0.0/8, `[::1]` (not localhost.example.com). */
export function isLoopbackHost (hostname: string): boolean {
  return /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i.test(hostname)
}

/** A URL hostname that reaches this machine whatever its addresses: loopback, or an unspecified address. */
export function isThisMachine (hostname: string): boolean {
  return isLoopbackHost(hostname) || /^(?:0\.0\.0\.0|\[::\]|\[::ffff:127(?:\.\d{1,3}){3}\])$/i.test(hostname)
}
