import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import type { BlobChunks } from '../fetch/blob-chunks.ts'

/** Chunks written and not yet confirmed by the socket, per response: what a slow client holds up. */
const IN_FLIGHT = 4

/**
 * Answers a fastify request with a blob range from recycled buffers (see writeChunks). The head is the
 * reply's status and headers (`setHead` sets them), sent with the first bytes; a failure before them
 * is thrown (the error handler answers it). `done` runs once, when the response is over either way.
 */
export async function sendChunks (reply: FastifyReply, chunks: BlobChunks, done: () => void, setHead?: () => void): Promise<void> {
  await writeChunks(reply.raw, chunks, {
    head: () => {
      setHead?.()
      reply.hijack()
      reply.raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders)
    },
    done
  })
}

/**
 * Writes a blob range to `res` from recycled buffers: each goes back to its pool once the socket wrote
 * it (the write's callback), and at most IN_FLIGHT wait for a slow client. `head()` (when given) is
 * called with the first bytes in hand; a failure before it rejects, after it aborts the connection: the
 * client sees a failed transfer, never a complete response with wrong or missing bytes. `done` runs
 * once, when the response is over either way.
 */
export async function writeChunks (res: ServerResponse, chunks: BlobChunks, hooks: { head?: () => void, done?: () => void } = {}): Promise<void> {
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
    hooks.done?.()
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
  hooks.head?.()
  res.on('drain', wake)
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
