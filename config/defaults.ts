/**
 * The embedded defaults, as the YAML a user would write (shown by `aimirror config print` and the README).
 * A config file's sections merge over these field by field; a file's `rules` replace these rules entirely.
 */
import { isAbsolute, join } from 'node:path'
import { parse } from 'yaml'

export const DEFAULTS_YAML = `# aimirror embedded defaults
server:
  host: "127.0.0.1"            # localhost only; a LAN-facing listener is an explicit choice
  port: 8081
  upstream_proxy: null         # http(s)://[user:pass@]host:port of a forward proxy; null = direct
  public_host: null            # host[:port] or base URL clients use; null = each request's Host
  max_concurrent_downloads: 64 # global cap on upstream downloads (the rest queue); their further connections share as many
  connect_timeout_s: 10
  read_timeout_s: 30
  shutdown_timeout_s: 10

cache:
  dir: null                    # null = $XDG_CACHE_HOME/aimirror, else ~/.cache/aimirror
  max_size_gb: 100
  lru_enabled: true
  chunk_ttl_hours: 24          # partial downloads untouched this long are dropped
  min_free_gb: 5
  finish_abandoned: true       # a download nobody waits for still finishes into the cache
  verify_every_days: 7         # every blob is hashed again in the background this often (0: never)

# First match wins. Order matters where path shapes overlap:
#  1. OCI (/v2/) and the HF API (/api/) own their roots outright.
#  2. Shape-based rules come before the literal mounts, because HF and GitHub owners share names with the
#     mounts (huggingface.co/nvidia/..., github.com/nvidia/...): HF needs .../resolve/<rev>/<file>, GitHub
#     needs .../releases/download/..., npm root tarballs need /<name>/-/<file>.tgz. None of these shapes
#     occurs under a mount, and an HF revision never starts with "-", so the npm package "resolve"
#     (/npm/resolve/-/resolve-1.22.8.tgz) is not taken for an HF file.
#  3. Literal mounts: PyPI, PyTorch, NVIDIA, conda channels, npm, CRAN.
# There is no catch-all: an unmatched path gets the node's own 404.
rules:
  # --- Docker Hub / OCI registries ---
  - name: oci-blobs
    pattern: "^/v2/.+/blobs/sha256:[a-f0-9]{64}$"
    upstream: "https://registry-1.docker.io"
    handler: oci
    strategy: parallel         # the mirror renews its registry tokens during long downloads
    cache_key_source: original
    concurrency: 32            # multi-GB layers from per-connection throttled proxies
  - name: oci-registry
    path_prefix: "/v2/"
    upstream: "https://registry-1.docker.io"
    handler: oci
    strategy: proxy
    metadata_ttl_s: 60         # tags are revalidated with HEAD (not counted as a Docker Hub pull)

  # --- HuggingFace API (file listings, revisions, paths-info, non-LFS file redirects) ---
  - name: hf-resolve-cache
    path_prefix: "/api/resolve-cache/"
    upstream: "https://huggingface.co"
    handler: hf
    strategy: parallel
    cache_key_source: original
    head_meta_headers: [x-repo-commit, x-linked-etag, x-linked-size, etag]
  - name: hf-api             # every other Hub call (whoami, search, repo creation) is passed through
    path_prefix: "/api/"
    upstream: "https://huggingface.co"
    handler: hf
    strategy: proxy
    metadata_ttl_s: 60         # branch -> commit and API JSON are rechecked after a minute

  # --- shape-based rules ---
  - name: github-releases
    pattern: "^/[\\\\w.-]+/[\\\\w.-]+/releases/(?:download/.+|latest/download)/[^/]+$"
    upstream: "https://github.com"
    strategy: parallel
    cache_key_source: original # assets redirect to short-lived signed URLs
    revalidate_s: 600          # latest/download moves, and assets can be uploaded again
  - name: hf-files
    pattern: "^/(?:datasets/|spaces/)?[\\\\w.-]+(?:/[\\\\w.-]+)?/resolve/[^/-][^/]*/.+$"
    upstream: "https://huggingface.co"
    handler: hf
    strategy: parallel
    cache_key_source: original # LFS files redirect to signed CDN URLs
    head_meta_headers: [x-repo-commit, x-linked-etag, x-linked-size, etag]
    concurrency: 32            # the hub's CDN limits each connection, not the number of them
    metadata_ttl_s: 60         # a branch resolves to its commit for a minute; files at a commit never change
  - name: hf-blob-links      # web "blob" links pasted from the browser are served as downloads
    pattern: "^/(?:datasets/|spaces/)?[\\\\w.-]+(?:/[\\\\w.-]+)?/blob/[^/-][^/]*/.+$"
    upstream: "https://huggingface.co"
    handler: hf
    strategy: parallel
    cache_key_source: original
    path_rewrite:
      - search: "/blob/"
        replace: "/resolve/"
    head_meta_headers: [x-repo-commit, x-linked-etag, x-linked-size, etag]
    concurrency: 32
    metadata_ttl_s: 60
  - name: npm-tarballs-root  # npm rehosts registry.npmjs.org tarball paths at the registry's root
    pattern: "^/(?:@[\\\\w.-]+/)?[\\\\w.-]+/-/[^/]+\\\\.tgz$"
    upstream: "https://registry.npmjs.org"
    handler: npm
    strategy: parallel
    revalidate_s: null         # files never change under their name: never rechecked upstream

  # --- PyPI and other Python indexes ---
  - name: pypi-files
    path_prefix: "/packages/"
    upstream: "https://files.pythonhosted.org"
    handler: pypi
    strategy: parallel
    min_size: 0                # the index publishes sizes: even a 1 MB wheel comes in parallel pieces
    concurrency: 32            # torch and CUDA wheels are GBs; the CDN limits each connection
    revalidate_s: null         # files never change under their name: never rechecked upstream
  - name: pypi-simple
    path_prefix: "/simple/"
    upstream: "https://pypi.org"
    handler: pypi
    strategy: proxy
    metadata_ttl_s: 600
    content_rewrite:
      targets: ["https://files.pythonhosted.org"]
  - name: pypi-json
    path_prefix: "/pypi/"
    upstream: "https://pypi.org"
    handler: pypi
    strategy: proxy
    metadata_ttl_s: 600
    content_rewrite:
      targets: ["https://files.pythonhosted.org"]
  # Index pages are mutable: proxied. Files are immutable: fetched in parallel and cached.
  - name: pytorch-files
    path_prefix: "/pytorch/"
    pattern: '\\.(?:whl|tar\\.gz|zip)$'
    strip_prefix: true
    upstream: "https://download.pytorch.org"
    handler: pypi
    strategy: parallel
    concurrency: 32
    revalidate_s: null         # files never change under their name: never rechecked upstream
  - name: pytorch
    path_prefix: "/pytorch/"
    strip_prefix: true
    upstream: "https://download.pytorch.org"
    handler: pypi
    strategy: proxy
    metadata_ttl_s: 600
  - name: nvidia-files
    path_prefix: "/nvidia/"
    pattern: '\\.(?:whl|tar\\.gz|zip)$'
    strip_prefix: true
    upstream: "https://pypi.nvidia.com"
    handler: pypi
    strategy: parallel
    concurrency: 32
    revalidate_s: null         # files never change under their name: never rechecked upstream
  - name: nvidia
    path_prefix: "/nvidia/"
    strip_prefix: true
    upstream: "https://pypi.nvidia.com"
    handler: pypi
    strategy: proxy
    metadata_ttl_s: 600

  # --- conda channels: packages in parallel, repodata (and its probes) proxied with their real status ---
  - name: conda-forge-packages
    path_prefix: "/conda-forge/"
    pattern: '\\.(?:conda|tar\\.bz2)$'
    strip_prefix: true
    upstream: "https://conda.anaconda.org/conda-forge"
    handler: conda
    strategy: parallel
    revalidate_s: null         # files never change under their name: never rechecked upstream
  - name: conda-forge
    path_prefix: "/conda-forge/"
    strip_prefix: true
    upstream: "https://conda.anaconda.org/conda-forge"
    handler: conda
    strategy: proxy
  - name: bioconda-packages
    path_prefix: "/bioconda/"
    pattern: '\\.(?:conda|tar\\.bz2)$'
    strip_prefix: true
    upstream: "https://conda.anaconda.org/bioconda"
    handler: conda
    strategy: parallel
    revalidate_s: null         # files never change under their name: never rechecked upstream
  - name: bioconda
    path_prefix: "/bioconda/"
    strip_prefix: true
    upstream: "https://conda.anaconda.org/bioconda"
    handler: conda
    strategy: proxy

  # --- npm: tarballs in parallel, packuments proxied with tarball links rewritten ---
  - name: npm-tarballs
    path_prefix: "/npm/"
    pattern: '/-/[^/]+\\.tgz$'
    strip_prefix: true
    upstream: "https://registry.npmjs.org"
    handler: npm
    strategy: parallel
    revalidate_s: null         # files never change under their name: never rechecked upstream
  - name: npm
    path_prefix: "/npm/"
    strip_prefix: true
    upstream: "https://registry.npmjs.org"
    handler: npm
    strategy: proxy
    content_rewrite:
      targets: ["https://registry.npmjs.org"]

  # --- CRAN (repos = "http://host:port" or "http://host:port/cran"): tarballs in parallel, PACKAGES proxied ---
  - name: cran-packages
    pattern: '^/(?:cran/)?(?:src/contrib|bin/(?:windows|macosx))/.+\\.(?:tar\\.gz|tgz|zip)$'
    upstream: "https://cloud.r-project.org"
    handler: cran
    strategy: parallel
    path_rewrite:
      - search: "/cran/"
        replace: "/"
    revalidate_s: 86400        # versioned names; binaries are rebuilt now and then
  - name: cran-src
    path_prefix: "/src/contrib/"
    upstream: "https://cloud.r-project.org"
    handler: cran
    strategy: proxy
    metadata_ttl_s: 1800
  - name: cran-bin
    pattern: '^/bin/(?:windows|macosx)/'
    upstream: "https://cloud.r-project.org"
    handler: cran
    strategy: proxy
    metadata_ttl_s: 1800
  - name: cran
    path_prefix: "/cran/"
    strip_prefix: true
    upstream: "https://cloud.r-project.org"
    handler: cran
    strategy: proxy
    metadata_ttl_s: 1800

# Links in matching responses that point at these origins are rewritten to the mirror.
content_rewrite:
  content_types: ["text/html", "application/json", "application/vnd.pypi.simple"]
  targets: ["https://files.pythonhosted.org"]

logging:
  level: info
  file: null

# Registries reachable through /v2/: containerd's ?ns=<host>, path-prefixed names (/v2/ghcr.io/owner/img/...)
# and token scopes name them by host. Requests with no registry hint (dockerd registry-mirrors) go to the
# matched rule's upstream. A file's registries replace this list.
oci:
  registries:
    docker.io: "https://registry-1.docker.io"
    ghcr.io: "https://ghcr.io"
    quay.io: "https://quay.io"
    nvcr.io: "https://nvcr.io"
    registry.k8s.io: "https://registry.k8s.io"
    gcr.io: "https://gcr.io"
    public.ecr.aws: "https://public.ecr.aws"
    mcr.microsoft.com: "https://mcr.microsoft.com"
    registry.ollama.ai: "https://registry.ollama.ai"
  token_ttl_s: 3600            # lifetime of the tokens the mirror issues to clients (>= 60)
  access_check_ttl_s: 60       # how long upstream's "yes" to a client credential for private content is remembered

# LAN peer cluster: nodes find each other (mDNS, static peers), ask peers before upstream and serve them
# verified pieces. Off by default because it opens LAN-facing ports. AIMIRROR_CLUSTER=1|0 turns it on/off,
# AIMIRROR_MDNS=0 turns multicast discovery off (use static peers then).
cluster:
  enabled: false
  name: "default"              # nodes join only nodes of the same name
  listen: ["/ip4/0.0.0.0/tcp/4001"]
  announce: []                 # multiaddrs to announce instead of the listen addresses
  peers: []                    # static peers: "10.0.0.5:4001" or "/ip4/10.0.0.5/tcp/4001[/p2p/<id>]"
  mdns: true                   # multicast DNS discovery on the LAN
  key_file: null               # cluster key from "aimirror keygen": only holders join; null = open cluster
  data_host: "0.0.0.0"         # peer data port: pieces over HTTP Range, for ticket holders only
  data_port: 4002
  data_tls: false              # HTTPS between nodes (certificate pinned from tickets): bytes private on the LAN, more CPU
  lookup_ms: 200               # a cold download waits at most this long for the cluster before going upstream
`

/** The defaults as a plain object (a fresh copy on every call: callers may merge into it). */
export function defaultsDocument (): Record<string, unknown> {
  return parse(DEFAULTS_YAML) as Record<string, unknown>
}

/** Where the cache lives when nothing says otherwise (XDG base directory spec). */
export function defaultCacheDir (env: Readonly<Record<string, string | undefined>>, homedir: string): string {
  const xdg = env.XDG_CACHE_HOME
  // The spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'aimirror')
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir
  return join(home, '.cache', 'aimirror')
}
