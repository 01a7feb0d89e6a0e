import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../../config/load.ts'
import { createRewritePlan } from '../../../node/rewrite/rules.ts'
import { createRouter } from '../../../node/router/router.ts'

const file = fileURLToPath(new URL('../../fixtures/config/seed-example.yaml', import.meta.url))
const config = loadConfig({ file, env: {}, cwd: '/' })
const router = createRouter(config.rules)

// What the seed's router does with its own example config: rules in order, re.search on the path,
// target = upstream + path after each path_rewrite (str.replace), query carried over.
const DOCKER = 'https://registry-1.docker.io'
const TORCH = '/packages/fb/d7/71b982339efc4fff3c622c6fefecddfd3e0b35b60c5f822872d5b806bb71/torch-1.0.0-cp27-cp27m-manylinux1_x86_64.whl'
const cases: Array<[string, string, string, string]> = [
  ['/v2/library/nginx/blobs/sha256:4a7e0b1c9d', 'docker-blob', 'parallel', `${DOCKER}/v2/library/nginx/blobs/sha256:4a7e0b1c9d`],
  ['/v2/', 'docker-registry', 'proxy', `${DOCKER}/v2/`],
  ['/v2/library/nginx/manifests/latest', 'docker-registry', 'proxy', `${DOCKER}/v2/library/nginx/manifests/latest`],
  ['/v2/library/nginx/blobs/uploads/', 'docker-registry', 'proxy', `${DOCKER}/v2/library/nginx/blobs/uploads/`],
  ['/mirror/v2/x', 'docker-registry', 'proxy', `${DOCKER}/mirror/v2/x`], // search, not match: the seed's quirk
  ['/v2', 'default', 'proxy', 'https://pypi.org/v2'],
  [TORCH, 'pip-packages', 'parallel', `https://pypi.org${TORCH}`],
  ['/packages/ab/cd/six-1.16.0.tar.gz', 'pip-packages', 'parallel', 'https://pypi.org/packages/ab/cd/six-1.16.0.tar.gz'],
  ['/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl.metadata', 'default', 'proxy', 'https://pypi.org/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl.metadata'],
  ['/src/contrib/PACKAGES.gz', 'r-package', 'parallel', 'https://cran.r-project.org/src/contrib/PACKAGES.gz'],
  ['/src/contrib/Archive/glue/glue_1.6.0.tar.gz', 'r-package', 'parallel', 'https://cran.r-project.org/src/contrib/Archive/glue/glue_1.6.0.tar.gz'],
  ['/TheBloke/Llama-2-7B-GGUF/resolve/main/llama-2-7b.Q4_K_M.gguf', 'huggingface-files', 'parallel', 'https://huggingface.co/TheBloke/Llama-2-7B-GGUF/resolve/main/llama-2-7b.Q4_K_M.gguf'],
  ['/unsloth/model/resolve/main/file.gguf', 'huggingface-files', 'parallel', 'https://huggingface.co/unsloth/model/resolve/main/file.gguf'],
  ['/gpt2/blob/main/config.json', 'huggingface-files', 'parallel', 'https://huggingface.co/gpt2/resolve/main/config.json'],
  ['/api/models/gpt2', 'huggingface-api', 'proxy', 'https://huggingface.co/api/models/gpt2'],
  ['/api/models/gpt2/revision/main?expand=siblings', 'huggingface-api', 'proxy', 'https://huggingface.co/api/models/gpt2/revision/main?expand=siblings'],
  ['/api/models/x/resolve/main/y', 'huggingface-files', 'parallel', 'https://huggingface.co/api/models/x/resolve/main/y'],
  ['/simple/torch/', 'default', 'proxy', 'https://pypi.org/simple/torch/'],
  ['/simple/torch/?format=json', 'default', 'proxy', 'https://pypi.org/simple/torch/?format=json'],
  ['/blob/x', 'default', 'proxy', 'https://pypi.org/blob/x'],
  ['/', 'default', 'proxy', 'https://pypi.org/']
]

describe('seed example config routes like the seed', () => {
  it.each(cases)('%s → %s (%s)', (path, name, strategy, url) => {
    const m = router.match(path)
    expect(m?.rule.name).toBe(name)
    expect(m?.rule.strategy).toBe(strategy)
    expect(m?.upstreamUrl.href).toBe(url)
  })

  it('rewrites files.pythonhosted.org and pypi.org links of index pages to the mirror', () => {
    const plan = createRewritePlan(config.content_rewrite, router.rules)
    const m = router.match('/simple/six/')
    if (m === null) throw new Error('no route')
    const rewriting = plan.forRule(m.rule)
    expect(rewriting.isLinkBearing('text/html; charset=utf-8')).toBe(true)
    expect(rewriting.isLinkBearing('application/vnd.pypi.simple.v1+json')).toBe(true)
    expect(rewriting.isLinkBearing('application/octet-stream')).toBe(false)
    expect(rewriting.links.rewriteText('<a href="https://files.pythonhosted.org/packages/ab/six.whl#sha256=1">', 'http://127.0.0.1:8081'))
      .toBe('<a href="http://127.0.0.1:8081/packages/ab/six.whl#sha256=1">')
  })
})
