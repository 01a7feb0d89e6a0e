import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { DEFAULTS_YAML, defaultCacheDir } from '../../../config/defaults.ts'
import { loadConfig } from '../../../config/load.ts'
import { createRouter } from '../../../node/router/router.ts'

describe('embedded defaults', () => {
  const config = loadConfig({ env: { HOME: '/home/test' } })

  it('load with no file', () => {
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 8081,
      upstream_proxy: null,
      public_host: null,
      max_concurrent_downloads: 64,
      connect_timeout_s: 10,
      read_timeout_s: 30,
      shutdown_timeout_s: 10
    })
    expect(config.cache).toEqual({
      dir: '/home/test/.cache/aimirror',
      max_size_gb: 100,
      lru_enabled: true,
      chunk_ttl_hours: 24,
      min_free_gb: 5,
      finish_abandoned: true,
      verify_every_days: 7
    })
    expect(config.logging).toEqual({ level: 'info', file: null })
    expect(config.content_rewrite).toEqual({
      content_types: ['text/html', 'application/json', 'application/vnd.pypi.simple'],
      targets: ['https://files.pythonhosted.org']
    })
  })

  it('are a YAML document', () => {
    const doc = parse(DEFAULTS_YAML) as { rules: unknown[] }
    expect(doc.rules).toHaveLength(config.rules.length)
  })

  it('rewrite off-host links for PyPI and npm', () => {
    const byName = new Map(config.rules.map((r) => [r.name, r]))
    expect(byName.get('pypi-simple')?.content_rewrite?.targets).toEqual(['https://files.pythonhosted.org'])
    expect(byName.get('npm')?.content_rewrite?.targets).toEqual(['https://registry.npmjs.org'])
    expect(byName.get('hf-files')?.head_meta_headers).toEqual(['x-repo-commit', 'x-linked-etag', 'x-linked-size', 'etag'])
    expect(byName.get('hf-blob-links')?.path_rewrite).toEqual([{ search: '/blob/', replace: '/resolve/' }])
    for (const name of ['hf-files', 'hf-blob-links', 'hf-api']) expect(byName.get(name)?.metadata_ttl_s).toBe(60)
    expect(byName.get('hf-files')?.concurrency).toBe(32)
  })

  it('recheck files known only by their URL where a name can change content, never where it cannot', () => {
    const byName = new Map(config.rules.map((r) => [r.name, r]))
    expect(byName.get('github-releases')?.revalidate_s).toBe(600)
    expect(byName.get('cran-packages')?.revalidate_s).toBe(86400)
    for (const name of ['pypi-files', 'pytorch-files', 'nvidia-files', 'conda-forge-packages', 'bioconda-packages', 'npm-tarballs', 'npm-tarballs-root']) {
      expect(byName.get(name)?.revalidate_s).toBeNull()
    }
  })

  it('have no catch-all rule', () => {
    for (const rule of config.rules) {
      expect(rule.path_prefix !== null || (rule.pattern !== null && rule.pattern !== '.*' && rule.pattern !== '^/')).toBe(true)
    }
  })
})

describe('default cache dir', () => {
  it('follows XDG_CACHE_HOME, else HOME', () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/xdg/cache', HOME: '/home/u' }, '/fallback')).toBe('/xdg/cache/aimirror')
    expect(defaultCacheDir({ HOME: '/home/u' }, '/fallback')).toBe('/home/u/.cache/aimirror')
    expect(defaultCacheDir({}, '/fallback')).toBe('/fallback/.cache/aimirror')
    // A relative XDG_CACHE_HOME is invalid per the spec and ignored.
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'rel', HOME: '/home/u' }, '/fallback')).toBe('/home/u/.cache/aimirror')
  })

  it('comes from the env the loader was given', () => {
    expect(loadConfig({ env: { XDG_CACHE_HOME: '/tmp/xdg-test' } }).cache.dir).toBe('/tmp/xdg-test/aimirror')
    expect(loadConfig({ env: { XDG_CACHE_HOME: '/tmp/xdg-test' }, flags: { cacheDir: '/elsewhere' } }).cache.dir).toBe('/elsewhere')
  })
})

describe('default routes', () => {
  const router = createRouter(loadConfig({ env: {} }).rules)
  const routeOf = (path: string): string | null => router.match(path)?.rule.name ?? null
  const upstreamOf = (path: string): string | undefined => router.match(path)?.upstreamUrl.href

  it.each([
    ['/v2/', 'oci-registry'],
    ['/v2/library/ubuntu/manifests/latest', 'oci-registry'],
    [`/v2/library/ubuntu/blobs/sha256:${'a'.repeat(64)}`, 'oci-blobs'],
    ['/v2/acme/resolve/manifests/latest', 'oci-registry'],
    ['/gpt2/resolve/main/config.json', 'hf-files'],
    ['/openai-community/gpt2/resolve/main/model.safetensors', 'hf-files'],
    ['/datasets/squad/resolve/main/train.json', 'hf-files'],
    ['/datasets/org/ds/resolve/refs%2Fconvert%2Fparquet/a/b.parquet', 'hf-files'],
    ['/spaces/org/app/resolve/main/app.py', 'hf-files'],
    ['/nvidia/Nemotron-Mini/resolve/main/model.safetensors', 'hf-files'],
    ['/org/repo/blob/main/README.md', 'hf-blob-links'],
    ['/api/models/gpt2', 'hf-api'],
    ['/api/models/org/repo/revision/main', 'hf-api'],
    ['/api/datasets/org/ds/tree/main', 'hf-api'],
    ['/api/spaces/org/app', 'hf-api'],
    ['/api/resolve-cache/models/org/repo/0123abcd/config.json', 'hf-resolve-cache'],
    ['/owner/repo/releases/download/v1.0/tool.tar.gz', 'github-releases'],
    ['/owner/repo/releases/download/release/v2/tool.zip', 'github-releases'],
    ['/owner/repo/releases/latest/download/tool.zip', 'github-releases'],
    ['/nvidia/cuda-samples/releases/download/v12.4/samples.tar.gz', 'github-releases'],
    ['/simple/torch/', 'pypi-simple'],
    ['/pypi/requests/json', 'pypi-json'],
    ['/packages/ab/cd/0123/torch-2.0-cp311-linux_x86_64.whl', 'pypi-files'],
    ['/packages/ab/cd/0123/torch-2.0-cp311-linux_x86_64.whl.metadata', 'pypi-files'],
    ['/pytorch/whl/cu124/torch/', 'pytorch'],
    ['/nvidia/nvidia-cudnn-cu12/', 'nvidia'],
    ['/conda-forge/linux-64/repodata.json', 'conda-forge'],
    ['/bioconda/noarch/repodata.json.zst', 'bioconda'],
    ['/npm/lodash', 'npm'],
    ['/npm/@types%2fnode', 'npm'],
    ['/npm/resolve/-/resolve-1.22.8.tgz', 'npm-tarballs'],
    ['/npm/blob/-/blob-0.1.0.tgz', 'npm-tarballs'],
    ['/npm/lodash', 'npm'],
    ['/pytorch/whl/cu124/torch-2.5.0-cp311-cp311-linux_x86_64.whl', 'pytorch-files'],
    ['/nvidia/nvidia-cudnn-cu12/nvidia_cudnn_cu12-9.1.0.70-py3-none-manylinux2014_x86_64.whl', 'nvidia-files'],
    ['/conda-forge/noarch/tzdata-2024a-h0c530f3_0.conda', 'conda-forge-packages'],
    ['/bioconda/linux-64/samtools-1.20-h50ea8bc_0.tar.bz2', 'bioconda-packages'],
    ['/cran/src/contrib/PACKAGES.gz', 'cran'],
    ['/cran/src/contrib/ggplot2_3.5.1.tar.gz', 'cran-packages'],
    ['/lodash/-/lodash-4.17.21.tgz', 'npm-tarballs-root'],
    ['/resolve/-/resolve-1.22.8.tgz', 'npm-tarballs-root'],
    ['/@types/node/-/node-20.11.0.tgz', 'npm-tarballs-root'],
    ['/src/contrib/PACKAGES.rds', 'cran-src'],
    ['/src/contrib/Archive/ggplot2/ggplot2_3.0.0.tar.gz', 'cran-packages'],
    ['/src/contrib/PACKAGES.rds', 'cran-src'],
    ['/bin/windows/contrib/4.4/PACKAGES', 'cran-bin'],
    ['/bin/macosx/big-sur-arm64/contrib/4.4/PACKAGES.gz', 'cran-bin'],
    ['/cran/src/contrib/PACKAGES', 'cran'],
    // Hub calls besides files and repository info (login checks, search) pass through.
    ['/api/whoami-v2', 'hf-api'],
    ['/api/models', 'hf-api']
  ])('%s → %s', (path, rule) => {
    expect(routeOf(path)).toBe(rule)
  })

  it.each(['/', '/favicon.ico', '/index.html', '/bin/sh', '/owner/repo', '/owner/repo/tree/main'])('%s has no route', (path) => {
    expect(routeOf(path)).toBeNull()
  })

  it('sends each path to the right upstream URL', () => {
    expect(upstreamOf('/pytorch/whl/cu124/torch/')).toBe('https://download.pytorch.org/whl/cu124/torch/')
    expect(upstreamOf('/conda-forge/linux-64/repodata.json')).toBe('https://conda.anaconda.org/conda-forge/linux-64/repodata.json')
    expect(upstreamOf('/npm/@types%2fnode')).toBe('https://registry.npmjs.org/@types%2fnode')
    expect(upstreamOf('/cran/src/contrib/PACKAGES')).toBe('https://cloud.r-project.org/src/contrib/PACKAGES')
    expect(upstreamOf('/org/repo/blob/main/README.md')).toBe('https://huggingface.co/org/repo/resolve/main/README.md')
    expect(upstreamOf('/packages/ab/cd/x.whl')).toBe('https://files.pythonhosted.org/packages/ab/cd/x.whl')
  })
})
