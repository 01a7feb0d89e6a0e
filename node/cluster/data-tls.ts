import { randomBytes, webcrypto, X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { Agent, buildConnector } from 'undici'

/** The data port's TLS identity: a certificate made at start, never written to disk. */
export interface DataCert {
  key: string
  cert: string
  /** sha256 of the certificate (hex): members learn it with their tickets and accept nothing else. */
  sha256: string
}

/** sha256 of a certificate as hex, from the colon-separated form Node reports. */
export function certSha256 (fingerprint256: string): string {
  return fingerprint256.replaceAll(':', '').toLowerCase()
}

/**
 * A self-signed ECDSA P-256 certificate for the data port. Nobody validates it against a CA: its hash
 * travels with each ticket over the Noise-authenticated control stream, and members pin it.
 */
export async function createDataCert (name: string): Promise<DataCert> {
  // @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
  await import('reflect-metadata')
  const x509 = await import('@peculiar/x509')
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${name.replace(/[^\w.-]/g, '_')}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 10 * 365 * 86400_000),
    signingAlgorithm: alg,
    keys
  })
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
  const pem = cert.toString('pem')
  return {
    key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd()}\n-----END PRIVATE KEY-----\n`,
    cert: pem,
    sha256: certSha256(new X509Certificate(pem).fingerprint256)
  }
}

/** A peer's data port presented a certificate other than the one its ticket named. */
export class PinMismatchError extends Error {
  readonly code = 'ERR_PEER_CERT'
  constructor (origin: string) {
    super(`${origin} presented a certificate other than the one its ticket named`)
    this.name = 'PinMismatchError'
  }
}

/**
 * Connection pool for the peers' data ports. Over TLS each connection is accepted only when the peer's
 * certificate is the one pinned for its host and port (`pins`: "host:port" → sha256 hex, filled from
 * tickets); an https port with no pin gets no connection. Which scheme a port speaks comes from its
 * ticket (over the authenticated control stream), so nobody on the wire can downgrade it.
 */
export function pinnedAgent (pins: ReadonlyMap<string, string>, options: Agent.Options = {}): Agent {
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 })
  return new Agent({
    ...options,
    connect: (opts, cb) => {
      const origin = `${opts.hostname}:${opts.port}`
      if (opts.protocol === 'http:') { base(opts, cb); return }
      if (!pins.has(origin)) { cb(new PinMismatchError(origin), null); return }
      base({ ...opts, servername: undefined }, (err, socket) => {
        if (err !== null) { cb(err, null); return }
        const refused = pinMismatch(pins, origin, socket as TLSSocket)
        if (refused !== null) {
          socket.destroy()
          cb(refused, null)
          return
        }
        cb(null, socket)
      })
    }
  })
}

/**
 * The same check for RangeSockets (`verify`): a TLS connection to a data port is used only when its
 * certificate is the one pinned for its host and port.
 */
export function pinnedSockets (pins: ReadonlyMap<string, string>): { tls: { rejectUnauthorized: false }, verify: (url: URL, socket: TLSSocket) => Error | null } {
  return {
    tls: { rejectUnauthorized: false },
    verify: (url, socket) => pinMismatch(pins, `${url.hostname}:${url.port}`, socket)
  }
}

/** A PinMismatchError unless `socket` presented the certificate pinned for `origin` ("host:port"). */
function pinMismatch (pins: ReadonlyMap<string, string>, origin: string, socket: TLSSocket): PinMismatchError | null {
  const want = pins.get(origin)
  const cert = socket.getPeerCertificate()
  if (want === undefined || cert.fingerprint256 === undefined || certSha256(cert.fingerprint256) !== want) return new PinMismatchError(origin)
  return null
}
