import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogger } from '../../../node/log.ts'
import { redactSignature } from '../../../node/signed-url.ts'

describe('logging.file', () => {
  const dirs: string[] = []
  afterEach(async () => {
    vi.restoreAllMocks()
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
  })

  it('that cannot be written: the node logs to stdout only, says so, and does not crash', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-log-'))
    dirs.push(dir)
    // A directory path under a regular file can never be made, root or not.
    await writeFile(join(dir, 'plain'), 'x')
    const lines: string[] = []
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true })
    const logger = createLogger({ level: 'info', file: join(dir, 'plain', 'sub', 'aimirror.log') })
    logger.info('still here')
    expect(lines.some(l => l.includes('logging.file cannot be written'))).toBe(true)
    expect(lines.some(l => l.includes('still here'))).toBe(true)
  })

  it('that can be written gets the lines, its directory made', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aimirror-log-'))
    dirs.push(dir)
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    const file = join(dir, 'a', 'b', 'aimirror.log')
    const logger = createLogger({ level: 'info', file })
    logger.info('to the file')
    await new Promise<void>(resolve => { logger.flush(() => resolve()) })
    await vi.waitFor(async () => { expect(await readFile(file, 'utf8')).toContain('to the file') })
  })
})

describe('signed URLs in the log', () => {
  it('keep their signing parameters\' names, not their values, in the request line and in any url field', async () => {
    const lines: string[] = []
    const sink = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
    const logger = createLogger({ level: 'info', file: null }, sink)
    const app = Fastify({ loggerInstance: logger })
    app.get('/f/*', async () => 'ok')
    const res = await app.inject({ url: '/f/obj.bin?v=2&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=s3cr3t' })
    expect(res.statusCode).toBe(200)
    logger.warn({ url: 'https://cdn.example/o?se=2030&sig=s3cr3t&sv=1' }, 'a warning')
    // Cache keys and blob names of URL-keyed files too (a download's lines name them).
    logger.child({ component: 'fetch' }).info({ key: 'url:https://h/f.bin?access_token=s3cr3t', name: 'url:https://h/f.bin?api_key=s3cr3t' }, 'download committed')
    await app.close()
    const text = lines.join('')
    expect(text).toContain('"url":"/f/obj.bin?v=2&X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]"')
    expect(text).toContain('"url":"https://cdn.example/o?se=[redacted]&sig=[redacted]&sv=[redacted]"')
    expect(text).toContain('"key":"url:https://h/f.bin?access_token=[redacted]"')
    expect(text).toContain('"name":"url:https://h/f.bin?api_key=[redacted]"')
    expect(text).not.toContain('s3cr3t')
    expect(text).not.toContain('AKIA')
  })

  it('leave a URL that is not signed as it is', () => {
    expect(redactSignature('/a?exp=2&st=3')).toBe('/a?exp=2&st=3')
    expect(redactSignature('/a?v=1&name=x')).toBe('/a?v=1&name=x')
    expect(redactSignature('/a?token=abc&expires=9#x')).toBe('/a?token=[redacted]&expires=[redacted]#x')
  })

  it('hide the values of credentials in a query, signed or not', () => {
    expect(redactSignature('/a?token=abc')).toBe('/a?token=[redacted]')
    expect(redactSignature('/p/x.bin?v=2&access_token=ATOK&Private_Token=P')).toBe('/p/x.bin?v=2&access_token=[redacted]&Private_Token=[redacted]')
    expect(redactSignature('https://h/x?api_key=K&page=2')).toBe('https://h/x?api_key=[redacted]&page=2')
  })
})
