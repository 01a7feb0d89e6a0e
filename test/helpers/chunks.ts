/** `data` as a stream of `size`-byte chunks (fresh buffers, as a file or socket gives them). */
export async function * chunksOf (data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield Buffer.from(data.subarray(at, at + size))
}

export async function collect (chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = []
  for await (const chunk of chunks) out.push(chunk)
  return Buffer.concat(out)
}

/** Chunk sizes that cut a document everywhere that matters: single bytes, odd sizes, whole. */
export const CUTS = [1, 2, 3, 7, 64, 1 << 20] as const
