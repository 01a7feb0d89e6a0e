import type { Readable } from 'node:stream'
import bunzip2 from 'unbzip2-stream'
import type { MetadataResult } from '../../metadata/types.ts'
import type { RepodataCoding } from './paths.ts'
import { readPrefix } from '../../upstream/request.ts'
import { decoderFor } from './repodata-index.ts'

/**
 * The first `n` decoded bytes of a repodata body (plain, zstd or bzip2), as latin1 text: enough to see
 * its `info` block, which writers put first. bzip2 is decoded here only this far (its first block, at
 * most 900 kB): a whole document would hold the event loop for seconds.
 */
export async function decodedHead (result: MetadataResult, coding: RepodataCoding, n: number): Promise<string> {
  const raw = result.body.open()
  try {
    const bytes = coding === 'bz2' ? await bz2Head(raw, n) : await streamHead(raw, coding, n)
    return bytes.subarray(0, n).toString('latin1')
  } finally {
    raw.destroy()
  }
}

async function streamHead (raw: Readable, coding: RepodataCoding, n: number): Promise<Buffer> {
  const decoder = decoderFor(coding)
  if (decoder === undefined) return Buffer.alloc(0)
  return await readPrefix(decoder === null ? raw : raw.pipe(decoder), n)
}

/** unbzip2-stream is a classic (through) stream: read it by its events until `n` bytes came out. */
async function bz2Head (raw: Readable, n: number): Promise<Buffer> {
  const decoder = bunzip2()
  const chunks: Buffer[] = []
  let size = 0
  return await new Promise<Buffer>((resolve, reject) => {
    const finish = (): void => {
      raw.unpipe(decoder)
      decoder.destroy()
      resolve(Buffer.concat(chunks))
    }
    decoder.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size >= n) finish()
    })
    decoder.on('end', finish)
    decoder.on('error', (err: unknown) => { raw.unpipe(decoder); reject(err instanceof Error ? err : new Error(String(err))) })
    raw.on('error', reject)
    raw.pipe(decoder)
  })
}
