import type { Handler } from '../types.ts'
import { serveFile } from './files.ts'
import { serveIndex } from './index-pages.ts'
import { classifyPath } from './names.ts'
import { prefetchDistribution } from './prefetch.ts'
import { requestPathname } from './request-path.ts'
import type { PypiComponents } from './types.ts'

export type { PypiComponents } from './types.ts'

/**
 * Python package indexes (pip, uv): PyPI and extra indexes mounted under a prefix (PyTorch, NVIDIA).
 * Index pages go through the metadata cache with links rewritten; distribution files and their
 * `.metadata` through the fetch engine, verified by the sha256 the index published; a `.metadata`
 * request starts its distribution's download in the background (see prefetch.ts). Other methods
 * are left to the rule's strategy.
 */
export function createPypiHandler (components: PypiComponents): Handler {
  return {
    name: 'pypi',
    async handle (ctx) {
      const method = ctx.request.method
      if (method !== 'GET' && method !== 'HEAD') return false
      const kind = classifyPath(requestPathname(ctx))
      if (kind === 'core-metadata' && method === 'GET') {
        prefetchDistribution(ctx, components).catch((err: unknown) => {
          components.logger.debug({ err, url: ctx.upstreamUrl.href }, 'prefetch failed')
        })
      }
      if (kind === 'file' || kind === 'core-metadata') return await serveFile(ctx, components)
      await serveIndex(ctx, components, kind === 'json-api')
      return true
    }
  }
}
