/** The counters as `/stats` shows them. */
export interface TrafficCounts {
  hits: number
  misses: number
  bytes_from_cache: number
  bytes_from_upstream: number
  /** Bytes downloads took from cluster peers (0 with the cluster off). */
  bytes_from_peers: number
}

/** What the store's clients and downloads moved since the node started: counters for `/stats`. */
export class Traffic {
  private hits = 0
  private misses = 0
  private fromCache = 0
  /** Every byte downloads received, from whichever source; the peers' share of it. */
  private received = 0
  private fromPeers = 0

  hit (): void { this.hits++ }
  miss (): void { this.misses++ }
  servedFromCache (n: number): void { this.fromCache += n }
  /** Bytes a download received (the engine does not tell its sources apart: see receivedFromPeers). */
  receivedByDownload (n: number): void { this.received += n }
  /** Bytes of those that came from cluster peers (counted by the cluster as they arrive). */
  receivedFromPeers (n: number): void { this.fromPeers += n }

  counts (): TrafficCounts {
    return {
      hits: this.hits,
      misses: this.misses,
      bytes_from_cache: this.fromCache,
      bytes_from_upstream: Math.max(0, this.received - this.fromPeers),
      bytes_from_peers: this.fromPeers
    }
  }
}
