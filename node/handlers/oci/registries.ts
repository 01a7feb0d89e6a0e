/**
 * Which registry a request is for, and the repository name there (pure). Three ways to name one:
 *  - a path prefix: `/v2/ghcr.io/owner/img/...` (podman/skopeo mirrors, `registries.conf` locations);
 *  - containerd's `?ns=ghcr.io` hint (also carried in the token `service` the mirror hands out);
 *  - nothing (dockerd `registry-mirrors`): the matched rule's upstream, Docker Hub in the defaults.
 * Docker Hub's official images live under `library/`: a one-component name gets it, as docker does.
 */

export interface RegistryTarget {
  /** Registry name as configured (`docker.io`), or the upstream's host when it is not in the map. */
  readonly registry: string
  /** Upstream base URL, no trailing slash. */
  readonly upstream: string
  /** Repository name upstream. */
  readonly repo: string
  /** Repository name as the client wrote it (its path and its token scopes use this one). */
  readonly name: string
  /** The `ns` hint the client sent, if any (links handed back keep it). */
  readonly ns: string | null
}

const HUB = 'docker.io'
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])
const HUB_UPSTREAM_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io', 'registry.hub.docker.com'])

function canonical (host: string): string {
  const h = host.trim().toLowerCase()
  return HUB_ALIASES.has(h) ? HUB : h
}

function trimBase (url: string): string {
  return url.replace(/\/+$/, '')
}

export class RegistryMap {
  private readonly byName = new Map<string, string>()

  /** `registries`: registry host (as clients name it) → upstream base URL. */
  constructor (registries: Readonly<Record<string, string>>) {
    for (const [name, url] of Object.entries(registries)) this.byName.set(canonical(name), trimBase(url))
  }

  /** The configured upstream of a registry name (aliases of docker.io included). */
  upstreamOf (registry: string): string | undefined {
    return this.byName.get(canonical(registry))
  }

  has (registry: string): boolean {
    return this.byName.has(canonical(registry))
  }

  /** The registry a rule's upstream stands for: the map entry with that URL, else its host. */
  registryOf (upstream: string): string {
    const base = trimBase(upstream)
    for (const [name, url] of this.byName) if (url === base) return name
    const host = new URL(base).host.toLowerCase()
    return HUB_UPSTREAM_HOSTS.has(host) ? HUB : host
  }

  /** The upstream a token `service` names (a registry in the map), else the fallback. */
  serviceUpstream (service: string | null, fallbackUpstream: string): string {
    return (service === null ? undefined : this.upstreamOf(service)) ?? trimBase(fallbackUpstream)
  }

  /**
   * Resolves a client's name. `hint` is an `ns` value or a token `service`; `strictHint` makes an
   * unknown hint fail (an explicit `ns` for a registry that is not configured) instead of being ignored.
   * Null when the name cannot be served.
   */
  resolve (name: string, hint: string | null, fallbackUpstream: string, strictHint = false): RegistryTarget | null {
    const slash = name.indexOf('/')
    if (slash > 0) {
      const first = name.slice(0, slash)
      const upstream = this.upstreamOf(first)
      if (upstream !== undefined && (first.includes('.') || first.includes(':') || first === 'localhost')) {
        const registry = canonical(first)
        return { registry, upstream, repo: hubName(registry, name.slice(slash + 1)), name, ns: hint }
      }
    }
    if (hint !== null && hint !== '') {
      const upstream = this.upstreamOf(hint)
      if (upstream !== undefined) {
        const registry = canonical(hint)
        return { registry, upstream, repo: hubName(registry, name), name, ns: hint }
      }
      if (strictHint) return null
    }
    const upstream = trimBase(fallbackUpstream)
    const registry = this.registryOf(upstream)
    return { registry, upstream, repo: hubName(registry, name), name, ns: null }
  }
}

function hubName (registry: string, repo: string): string {
  return registry === HUB && !repo.includes('/') ? `library/${repo}` : repo
}
