import { isLoopbackHost } from '../config/loopback.ts'
import type { Config, HandlerName, Rule } from '../config/types.ts'

/** Finds the rule that would serve a path (the node's router, injected to keep one matching logic). */
export type RuleLookup = (pathname: string) => Rule | null

/** The base URL clients should use: public_host when set, else the listen address (wildcards → loopback). */
export function clientBaseUrl (config: Config, port: number): string {
  const publicHost = config.server.public_host
  if (publicHost !== null) return /^https?:\/\//.test(publicHost) ? publicHost.replace(/\/+$/, '') : `http://${publicHost}`
  let host = config.server.host
  if (host === '0.0.0.0' || host === '' ) host = '127.0.0.1'
  if (host === '::') host = '[::1]'
  else if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`
  return `http://${host}:${port}`
}

function prefixesFor (config: Config, handler: HandlerName): string[] {
  const prefixes = config.rules
    .filter((rule) => rule.handler === handler && rule.path_prefix !== null)
    .map((rule) => (rule.path_prefix ?? '').replace(/\/+$/, ''))
  return [...new Set(prefixes)]
}

/**
 * Human-readable settings for each client, derived from the rules actually configured:
 * an ecosystem whose paths no rule serves is left out rather than advertised wrongly.
 */
export function clientSettings (config: Config, base: string, lookup: RuleLookup): string {
  const baseUrl = new URL(base)
  const host = baseUrl.host
  const out: string[] = []
  // A catch-all rule (the seed's `default`) matches everything: only a rule of the right kind counts.
  const serves = (path: string, handler: HandlerName): boolean => lookup(path)?.handler === handler

  if (serves('/simple/pip/', 'pypi')) {
    out.push('pip / uv:',
      `  pip config set global.index-url ${base}/simple/`,
      `  export PIP_INDEX_URL=${base}/simple/  UV_DEFAULT_INDEX=${base}/simple/`)
    // pip trusts plain HTTP only to this machine itself: localhost, 127.0.0.0/8, ::1 (not localhost.example.com).
    if (!(baseUrl.protocol === 'http:' && isLoopbackHost(baseUrl.hostname))) out.push(`  pip config set global.trusted-host ${host}`)
    for (const prefix of prefixesFor(config, 'pypi')) {
      if (prefix === '/simple' || prefix === '/packages' || prefix === '/pypi') continue
      out.push(`  extra index: --extra-index-url ${base}${prefix}/${prefix === '/pytorch' ? 'whl/cu124  (any whl/<variant>)' : ''}`)
    }
  }
  if (serves('/v2/library/ubuntu/manifests/latest', 'oci')) {
    out.push('docker (/etc/docker/daemon.json, then restart dockerd):',
      `  { "registry-mirrors": ["${base}"]${base.startsWith('http://') ? `, "insecure-registries": ["${host}"]` : ''} }`,
      'containerd (/etc/containerd/certs.d/docker.io/hosts.toml; other registries: certs.d/_default/hosts.toml):',
      '  server = "https://registry-1.docker.io"',
      `  [host."${base}"]`,
      '    capabilities = ["pull", "resolve"]',
      'skopeo / podman (registries.conf):',
      `  [[registry]] prefix = "docker.io" location = "docker.io"  [[registry.mirror]] location = "${host}" insecure = true`)
  }
  if (serves('/gpt2/resolve/main/config.json', 'hf')) {
    out.push('huggingface_hub / hf CLI:', `  export HF_ENDPOINT=${base}`,
      '@huggingface/hub:', `  downloadFile({ ..., hubUrl: "${base}" })`)
  }
  if (serves('/src/contrib/PACKAGES', 'cran')) {
    out.push('R:', `  options(repos = c(CRAN = "${base}"))`)
  }
  const condaPrefixes = prefixesFor(config, 'conda')
  if (condaPrefixes.length > 0) {
    out.push('conda / mamba / pixi (~/.condarc):', '  channels:', ...condaPrefixes.map((p) => `    - ${base}${p}`))
  }
  const npmPrefixes = prefixesFor(config, 'npm')
  if (npmPrefixes.length > 0) {
    out.push('npm / yarn / pnpm:', `  npm config set registry ${base}${npmPrefixes[0] ?? ''}/`)
  }
  const releases = lookup('/owner/repo/releases/download/v1/file.tar.gz')
  if (releases !== null && new URL(releases.upstream).hostname === 'github.com') {
    out.push('GitHub releases:', `  ${base}/<owner>/<repo>/releases/download/<tag>/<file>`)
  }
  // Generic rules are used by their URLs as they are: each prefix and where it leads.
  const generic = config.rules.filter(rule => (rule.handler ?? 'generic') === 'generic' && rule.path_prefix !== null && new URL(rule.upstream).hostname !== 'github.com')
  if (generic.length > 0) {
    out.push('other downloads (generic rules):')
    for (const rule of generic) {
      const prefix = (rule.path_prefix ?? '').replace(/\/+$/, '')
      const upstream = rule.upstream.replace(/\/+$/, '') + (rule.strip_prefix ? '' : prefix)
      out.push(`  ${base}${prefix}/<path>  (${upstream}/<path>)`)
    }
  }
  return out.join('\n')
}
