/** `host:port` as URLs and messages write it: an IPv6 address in brackets. */
export function hostPort (host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}
