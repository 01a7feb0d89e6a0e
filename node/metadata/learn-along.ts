/** Facts handed on in batches of about this many while a page streams. */
const BATCH = 1000

/**
 * Passes `chunks` on while their producer fills `found`; hands `learn` what was found in batches (and
 * the rest at the end), so a page of any size is learnt from without keeping all of it.
 */
export async function * learnAlong<T> (chunks: AsyncIterable<Buffer>, found: T[], learn: (batch: T[]) => Promise<void>): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    if (found.length >= BATCH) await learn(found.splice(0))
    yield chunk
  }
  if (found.length > 0) await learn(found.splice(0))
}
