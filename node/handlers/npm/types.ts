import type { Fetcher } from '../../fetch/fetcher.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import type { RewritePlan } from '../../rewrite/rules.ts'

export interface NpmComponents {
  metadata: MetadataCache
  /** The fetch engine; without it tarballs are left to the rule's strategy. */
  fetcher?: Fetcher
  rewritePlan: RewritePlan
  logger: Logger
}
