import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { BlobChunks } from '../fetch/blob-chunks.ts'

/** Chunks written and not yet confirmed by the socket, per response: what a slow client holds up. */
const IN_FLIGHT = 4

/**
 * Writes a blob range to the client from recycled buffers: each goes back to its pool once the socket
 * wrote it (the write's callback), and at most IN_FLIGHT wait for a slow client. The head is the
 * reply's status and headers. A failure after the head went out aborts the connection: the client sees
 * a failed transfer, never a complete response with wrong or missing bytes. `done` runs once, when the
 * response is over either way.
 */
export async function sendChunks (reply: FastifyReply, chunks: BlobChunks, done: () => void): Promise<void> {
  reply.hijack()
  const res = reply.raw
  let closed = false
  let inFlight = 0
  let wakeUp: (() => void) | null = null
  const wake = (): void => {
    const w = wakeUp
    wakeUp = null
    w?.()
  }
  res.once('close', () => {
    closed = true
    chunks.close()
    done()
    wake()
  })
  res.on('drain', wake)
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders)
  try {
    for (;;) {
      while (!closed && (inFlight >= IN_FLIGHT || res.writableNeedDrain)) await new Promise<void>(resolve => { wakeUp = resolve })
      if (closed) return
      const chunk = await chunks.next()
      if (chunk === null) break
      if (closed) { chunks.recycle(chunk); return }
      inFlight++
      res.write(chunk, () => {
        inFlight--
        chunks.recycle(chunk)
        wake()
      })
    }
    res.end()
  } catch (err) {
    res.destroy(err instanceof Error ? err : new Error(String(err)))
  }
}
