import type { OutgoingHttpHeaders } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { BlobChunks } from '../fetch/blob-chunks.ts'

/** Chunks written and not yet confirmed by the socket, per response: what a slow client holds up. */
const IN_FLIGHT = 4

/**
 * Writes a blob range to the client from recycled buffers: each goes back to its pool once the socket
 * wrote it (the write's callback), and at most IN_FLIGHT wait for a slow client. The head is the
 * reply's status and headers, sent with the first bytes. A failure before them is thrown (the error
 * handler answers it); after them it aborts the connection: the client sees a failed transfer, never a
 * complete response with wrong or missing bytes. `done` runs once, when the response is over either way.
 */
export async function sendChunks (reply: FastifyReply, chunks: BlobChunks, done: () => void): Promise<void> {
  const res = reply.raw
  let closed = false
  let over = false
  let inFlight = 0
  let wakeUp: (() => void) | null = null
  const wake = (): void => {
    const w = wakeUp
    wakeUp = null
    w?.()
  }
  const finish = (): void => {
    if (over) return
    over = true
    chunks.close()
    done()
  }
  res.once('close', () => {
    closed = true
    finish()
    wake()
  })
  let chunk: Buffer | null
  try {
    chunk = await chunks.next()
  } catch (err) {
    finish()
    if (closed) return
    throw err
  }
  if (closed) { if (chunk !== null) chunks.recycle(chunk); return }
  reply.hijack()
  res.on('drain', wake)
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders)
  try {
    while (chunk !== null) {
      const sent = chunk
      inFlight++
      res.write(sent, () => {
        inFlight--
        chunks.recycle(sent)
        wake()
      })
      while (!closed && (inFlight >= IN_FLIGHT || res.writableNeedDrain)) await new Promise<void>(resolve => { wakeUp = resolve })
      if (closed) return
      chunk = await chunks.next()
      if (closed) { if (chunk !== null) chunks.recycle(chunk); return }
    }
    res.end()
  } catch (err) {
    res.destroy(err instanceof Error ? err : new Error(String(err)))
  }
}
