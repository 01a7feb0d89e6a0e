import { PieceHasher } from '../../protocol/pieces.ts'
import type { InOrderSink } from '../fetch/upstream-source.ts'

export interface InFlightListInit {
  /** sha256 hex of the blob the download is verified against; null when a key names it (a URL, another digest). */
  digest: string | null
  /** Whether other members take part in this blob (asked once, when the first bytes come). */
  shared: () => boolean
  /** Keeps the list (called once the download's bytes matched the digest). */
  save: (digest: string, list: Buffer) => void
}

/**
 * The piece-hash list of a blob, made from its bytes as the download hashes them in order, so the node
 * need not read the blob back to offer it to peers. Units a holder's verified bytes filled are taken with
 * the hash they were checked against (`known`), not hashed again. Made only when other members take part
 * in the blob: a download nobody else shares leaves the list to after its commit, off the client's time.
 */
export class InFlightList implements InOrderSink {
  private readonly init: InFlightListInit
  /** undefined until decided; null when this blob is not shared. */
  private pieces: PieceHasher | null | undefined

  constructor (init: InFlightListInit) {
    this.init = init
  }

  /** Unit `index` of the blob hashes to `hash` (a holder's bytes that matched its list). */
  known (index: number, hash: Buffer): void {
    this.hasher()?.known(index, hash)
  }

  update (bytes: Buffer): void {
    this.hasher()?.update(bytes)
  }

  verified (sha256: string): void {
    const pieces = this.hasher()
    if (pieces !== null && (this.init.digest === null || sha256 === this.init.digest)) this.init.save(sha256, pieces.digest())
  }

  private hasher (): PieceHasher | null {
    if (this.pieces === undefined) this.pieces = this.init.shared() ? new PieceHasher() : null
    return this.pieces
  }
}
