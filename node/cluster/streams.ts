import type { AbortOptions, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { z } from 'zod'
import { WireError } from '../../protocol/errors.ts'
import { LIMITS } from '../../protocol/ids.ts'
import { decodeMessage, encodeMessage } from '../../protocol/messages.ts'
import { deadline } from '../abort.ts'

/**
 * Length-prefixed JSON messages on a libp2p stream, with the protocol's size limit. A frame over the
 * limit or a body that does not decode is a WireError('BAD_MESSAGE'); callers reset the stream.
 */
export class MessageStream {
  readonly stream: Stream
  private readonly lp: LengthPrefixedStream<Stream>

  constructor (stream: Stream) {
    this.stream = stream
    this.lp = lpStream(stream, { maxDataLength: LIMITS.maxMessageBytes })
  }

  async read<T> (schema: z.ZodType<T>, options: AbortOptions): Promise<T> {
    let frame
    try {
      frame = await this.lp.read(options)
    } catch (err) {
      const name = (err as Error).name
      if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError') {
        throw new WireError('BAD_MESSAGE', 'message too large')
      }
      throw err
    }
    return decodeMessage(schema, frame.subarray())
  }

  async write (message: unknown, options: AbortOptions): Promise<void> {
    await this.lp.write(encodeMessage(message), options)
  }

  /** Graceful close; a stream that cannot close in time is reset. */
  async close (options: AbortOptions): Promise<void> {
    try {
      await this.stream.close(options)
    } catch (err) {
      this.stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** Runs `work` within the protocol's per-stream deadline and the caller's signal; the deadline is cleared after. */
export async function withinStreamDeadline<T> (work: (signal: AbortSignal) => Promise<T>, parent?: AbortSignal, ms: number = LIMITS.streamDeadlineMs): Promise<T> {
  const d = deadline(ms, parent)
  try {
    return await work(d.signal)
  } finally {
    d.clear()
  }
}
