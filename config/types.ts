/**
 * The effective configuration after loading, validation and normalisation.
 * Keys keep the YAML spelling (snake_case) so `config print` round-trips and seed files map 1:1.
 * Every value is present (defaults applied); the object is deep-frozen by the loader.
 */

export type Strategy = 'proxy' | 'parallel'

/** Built-in ecosystem handlers. Seed module paths (`handlers.docker`) map onto these names. */
export type HandlerName = 'pypi' | 'oci' | 'hf' | 'npm' | 'conda' | 'cran' | 'generic'

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'

export interface PathRewrite {
  readonly search: string
  readonly replace: string
}

export interface ContentRewrite {
  /** Substrings matched against the response Content-Type. */
  readonly content_types: readonly string[]
  /** Absolute origins (scheme://host[:port]) replaced by the mirror's own base URL. */
  readonly targets: readonly string[]
}

/** Seed compatibility: rewrites a Docker `WWW-Authenticate` realm/service to the mirror. */
export interface HeaderRewrite {
  readonly realm: string | null
  readonly service: string | null
}

export interface Rule {
  readonly name: string
  /** Regular expression searched in the request path (without query). Null when path_prefix is used. */
  readonly pattern: string | null
  /** Literal path prefix; matched before pattern when both are given (both must match). */
  readonly path_prefix: string | null
  /** Remove path_prefix from the path before it is appended to upstream. */
  readonly strip_prefix: boolean
  /** Base URL of the upstream, no trailing slash. May carry a path. */
  readonly upstream: string
  readonly strategy: Strategy
  /** Files smaller than this (bytes) are proxied instead of fetched in parallel. */
  readonly min_size: number
  /** Files larger than this (bytes) are proxied; null = no limit. */
  readonly max_size: number | null
  /** Parallel connections per file. */
  readonly concurrency: number
  /** Piece size in bytes; <= 0 means size / concurrency (kept within sane bounds by the fetch engine). */
  readonly chunk_size: number
  /** Cache key from the URL the client asked for (`original`) or the URL after redirects (`final`). */
  readonly cache_key_source: 'original' | 'final'
  readonly path_rewrite: readonly PathRewrite[]
  /** Extra upstream response headers replayed on HEAD (lower-case). */
  readonly head_meta_headers: readonly string[]
  readonly handler: HandlerName | null
  /** Rule-specific link rewriting; merged with the global content_rewrite targets. */
  readonly content_rewrite: ContentRewrite | null
  readonly header_rewrite: HeaderRewrite | null
  /** Freshness of metadata (index pages, packuments, manifests by tag) served by this rule, seconds. */
  readonly metadata_ttl_s: number
  /**
   * A file cached by its URL (no published digest) is checked with the upstream once it was last
   * confirmed this many seconds ago, and fetched again if it changed; null: never (immutable files).
   */
  readonly revalidate_s: number | null
}

export interface ServerConfig {
  readonly host: string
  readonly port: number
  /** http(s)://[user:pass@]host:port of a forward proxy for every upstream request; null = direct. */
  readonly upstream_proxy: string | null
  /** host[:port] (or a full base URL) clients use to reach the mirror; null = taken from each request's Host. */
  readonly public_host: string | null
  /** Global cap on concurrent upstream downloads; excess is queued, never rejected. */
  readonly max_concurrent_downloads: number
  readonly connect_timeout_s: number
  /** Upstream must send headers, and each body chunk, within this many seconds. */
  readonly read_timeout_s: number
  /** Graceful stop deadline for SIGINT/SIGTERM. */
  readonly shutdown_timeout_s: number
}

export interface CacheConfig {
  readonly dir: string
  readonly max_size_gb: number
  readonly lru_enabled: boolean
  /** Partial downloads untouched for this long are discarded. */
  readonly chunk_ttl_hours: number
  /** Keep at least this much free disk; eviction starts below it. */
  readonly min_free_gb: number
  /** A download nobody wants any more still finishes so the cache gains it. */
  readonly finish_abandoned: boolean
  /** Every cached blob is hashed again in the background this often; 0: never. */
  readonly verify_every_days: number
}

export interface LoggingConfig {
  readonly level: LogLevel
  /** Also log to this file; null = stdout only. */
  readonly file: string | null
}

/** Registry mirroring (`/v2/`): which registries a client can reach through the mirror, and token lifetimes. */
export interface OciConfig {
  /**
   * Registry host as clients name it (`docker.io`, `ghcr.io`) → upstream base URL. Used for containerd's
   * `?ns=<host>`, path-prefixed names (`/v2/ghcr.io/owner/img/...`) and token scopes. Requests with no
   * registry hint go to the matched rule's upstream.
   */
  readonly registries: Readonly<Record<string, string>>
  /** Lifetime of the tokens the mirror's token endpoint issues to clients (at least 60). */
  readonly token_ttl_s: number
  /** How long an upstream-confirmed access of a client credential to private content is remembered. */
  readonly access_check_ttl_s: number
}

/** The LAN peer cluster (node/cluster). Off unless configured: it opens LAN-facing ports. */
export interface ClusterConfig {
  readonly enabled: boolean
  /** Nodes join only nodes of the same name. */
  readonly name: string
  /** libp2p listen multiaddrs (control protocol, DHT). */
  readonly listen: readonly string[]
  /** Multiaddrs announced to peers instead of the listen addresses; [] = the listen addresses. */
  readonly announce: readonly string[]
  /** Static peers (multiaddr, optionally with /p2p/<id>, or host:port), for LANs where multicast is blocked. */
  readonly peers: readonly string[]
  /** Find peers by multicast DNS. */
  readonly mdns: boolean
  /** Shared cluster key (`aimirror keygen`); only holders join. null = open cluster (digest-verified blobs only). */
  readonly key_file: string | null
  /** Address of the peer data port (blob pieces over HTTP Range, ticket-authorised). */
  readonly data_host: string
  readonly data_port: number
  /** HTTPS on the data port, each member pinning the certificate its ticket names. */
  readonly data_tls: boolean
  /** How long a cold download waits for the cluster's answer before going upstream, ms. */
  readonly lookup_ms: number
}

export interface Config {
  readonly server: ServerConfig
  readonly cache: CacheConfig
  readonly rules: readonly Rule[]
  readonly content_rewrite: ContentRewrite
  readonly logging: LoggingConfig
  readonly oci: OciConfig
  readonly cluster: ClusterConfig
}
