import type { Fetcher } from '../../fetch/fetcher.ts'
import type { Logger } from '../../log.ts'
import type { MetadataCache } from '../../metadata/cache.ts'
import type { RewritePlan } from '../../rewrite/rules.ts'

export interface PypiComponents {
  metadata: MetadataCache
  /** The fetch engine; without it files are left to the rule's strategy (URL-keyed). */
  fetcher?: Fetcher
  rewritePlan: RewritePlan
  logger: Logger
}
