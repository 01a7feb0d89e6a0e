import type { Config, ContentRewrite, Rule, ServerConfig } from '../../config/types.ts'

/** A complete rule with seed-like defaults; tests override only what they are about. */
export function makeRule (partial: Partial<Rule> & Pick<Rule, 'upstream'>): Rule {
  return {
    name: 'rule',
    pattern: null,
    path_prefix: null,
    strip_prefix: false,
    strategy: 'proxy',
    min_size: 0,
    max_size: null,
    concurrency: 4,
    chunk_size: 0,
    cache_key_source: 'original',
    path_rewrite: [],
    head_meta_headers: [],
    handler: null,
    content_rewrite: null,
    header_rewrite: null,
    metadata_ttl_s: 60,
    revalidate_s: null,
    ...partial
  }
}

export interface ConfigParts {
  rules: Rule[]
  server?: Partial<ServerConfig>
  content_rewrite?: Partial<ContentRewrite>
  cacheDir?: string
}

/** A complete Config for tests: loopback, port 0, silent logs, short timeouts. */
export function makeConfig (parts: ConfigParts): Config {
  return {
    server: {
      host: '127.0.0.1',
      port: 0,
      upstream_proxy: null,
      public_host: null,
      max_concurrent_downloads: 16,
      connect_timeout_s: 2,
      read_timeout_s: 5,
      shutdown_timeout_s: 2,
      ...parts.server
    },
    cache: {
      dir: parts.cacheDir ?? '/nonexistent-aimirror-cache',
      max_size_gb: 1,
      lru_enabled: true,
      chunk_ttl_hours: 24,
      min_free_gb: 0,
      finish_abandoned: false,
      verify_every_days: 0
    },
    rules: parts.rules,
    content_rewrite: {
      content_types: ['text/html', 'application/json', 'application/vnd.pypi.simple'],
      targets: [],
      ...parts.content_rewrite
    },
    logging: { level: 'silent', file: null },
    oci: { registries: {}, token_ttl_s: 3600, access_check_ttl_s: 60 },
    // Tests never send multicast: mDNS stays off even where a test turns the cluster on.
    cluster: { enabled: false, name: 'test', listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], peers: [], mdns: false, key_file: null, data_host: '127.0.0.1', data_port: 0, data_tls: false, lookup_ms: 50 }
  }
}
