import { MemoryDatastore } from 'datastore-core/memory'
import type { Key } from 'interface-datastore'
import type { AbortOptions } from '@libp2p/interface'

/**
 * libp2p's in-memory datastore, keeping a copy of each value the size of the value. The DHT's provider
 * records are a few bytes each, cut from buffers tens of KiB long (a message read off a stream, Node's
 * allocation pool): kept as they come, each record held its whole buffer, about 13 KB a record and
 * hundreds of MiB after a day of downloads.
 */
export class CompactDatastore extends MemoryDatastore {
  override put (key: Key, val: Uint8Array, options?: AbortOptions): ReturnType<MemoryDatastore['put']> {
    return super.put(key, new Uint8Array(val), options)
  }
}
