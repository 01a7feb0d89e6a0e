import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { LRUCache } from 'lru-cache'
import { lruCache } from '../../lru.ts'
import { isFileMeta } from './file-meta.ts'
import type { HfFileMeta } from './file-meta.ts'
import type { ListedFile } from './listing-meta.ts'
import { repoKey } from './paths.ts'
import type { FileRef, RepoRef } from './paths.ts'

/** Where a revision (branch or tag) pointed, and when upstream last said so. */
export interface RevisionRecord {
  readonly commit: string
  readonly at: number
}

/** A small upstream answer kept to be replayed (POST paths-info), body included. */
export interface StoredAnswer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: Buffer
  readonly at: number
}

export interface HfRecordsInit {
  /** Directory of the records (created on first write). */
  dir: string
  /** Revisions kept in memory (the most recently used). Default 10 000. */
  maxRevisionsInMemory?: number
  /** Files learned from listings kept in memory until first asked for (the most recently used). Default 50 000. */
  maxListedInMemory?: number
}

const COMMIT = /^[0-9a-f]{40}$/

function fileKey (repo: RepoRef, commit: string, path: string): string {
  return `${repoKey(repo)}@${commit}/${path}`
}

function name (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/**
 * Small durable records of the HF handler, one JSON file each under `dir`: file metadata by
 * (repository, commit, path), which never changes, and revision → commit, which does (its age decides
 * whether upstream is asked again). They outlive restarts so commit-addressed files are served with
 * upstream down. Writes go to a temp file and are renamed into place.
 */
export class HfRecords {
  private readonly dir: string
  private readonly revisions: LRUCache<string, RevisionRecord>
  /** Listed files nobody asked for yet: a listing page names up to 1000, too many files to write each time. */
  private readonly listed: LRUCache<string, HfFileMeta>

  constructor (init: HfRecordsInit) {
    this.dir = init.dir
    this.revisions = lruCache(init.maxRevisionsInMemory ?? 10_000)
    this.listed = lruCache(init.maxListedInMemory ?? 50_000)
  }

  /** The file's record; one learned from a listing is written to disk the first time it is asked for. */
  async getFile (repo: RepoRef, commit: string, path: string): Promise<HfFileMeta | undefined> {
    const key = fileKey(repo, commit, path)
    const v = await this.read(this.filePath(key))
    if (isFileMeta(v) && v.commit === commit) return v
    const listed = this.listed.get(key)
    if (listed === undefined) return undefined
    await this.write(this.filePath(key), listed)
    this.listed.delete(key)
    return listed
  }

  async putFile (repo: RepoRef, path: string, meta: HfFileMeta): Promise<void> {
    await this.write(this.filePath(fileKey(repo, meta.commit, path)), meta)
  }

  /**
   * Files learned from a listing, kept in memory (a public one is never replaced by one learned with
   * credentials); `getFile` prefers a record on disk, which came from the hub's own answer for the file.
   */
  learnFiles (repo: RepoRef, files: readonly ListedFile[]): void {
    for (const f of files) {
      const key = fileKey(repo, f.meta.commit, f.path)
      const known = this.listed.get(key)
      if (known !== undefined && (known.scope === 'public' || f.meta.scope === 'auth')) continue
      this.listed.set(key, f.meta)
    }
  }

  async getRevision (repo: RepoRef, revision: string): Promise<RevisionRecord | undefined> {
    const key = `${repoKey(repo)}@${revision}`
    const mem = this.revisions.get(key)
    if (mem !== undefined) return mem
    const v = await this.read(this.revisionPath(key))
    if (v === null || typeof v !== 'object') return undefined
    const r = v as Record<string, unknown>
    if (typeof r.commit !== 'string' || !COMMIT.test(r.commit) || typeof r.at !== 'number') return undefined
    const rec = { commit: r.commit, at: r.at }
    this.revisions.set(key, rec)
    return rec
  }

  async putRevision (repo: RepoRef, revision: string, commit: string, at = Date.now()): Promise<void> {
    const key = `${repoKey(repo)}@${revision}`
    const rec = { commit, at }
    this.revisions.set(key, rec)
    await this.write(this.revisionPath(key), rec)
  }

  /** The file a `FileRef` names once its revision is known to be `commit`. */
  async getFileAt (file: FileRef, commit: string): Promise<HfFileMeta | undefined> {
    return await this.getFile(file.repo, commit, file.path)
  }

  async getAnswer (key: string): Promise<StoredAnswer | undefined> {
    const v = await this.read(this.answerPath(key))
    if (v === null || typeof v !== 'object') return undefined
    const r = v as Record<string, unknown>
    if (typeof r.status !== 'number' || typeof r.at !== 'number' || typeof r.body !== 'string' ||
      r.headers === null || typeof r.headers !== 'object') return undefined
    const headers: Record<string, string> = {}
    for (const [k, val] of Object.entries(r.headers as Record<string, unknown>)) if (typeof val === 'string') headers[k] = val
    return { status: r.status, headers, body: Buffer.from(r.body, 'base64'), at: r.at }
  }

  async putAnswer (key: string, answer: StoredAnswer): Promise<void> {
    await this.write(this.answerPath(key), { ...answer, body: answer.body.toString('base64') })
  }

  private answerPath (key: string): string {
    const n = name(key)
    return join(this.dir, 'answers', n.slice(0, 2), n + '.json')
  }

  private filePath (key: string): string {
    const n = name(key)
    return join(this.dir, 'files', n.slice(0, 2), n + '.json')
  }

  private revisionPath (key: string): string {
    const n = name(key)
    return join(this.dir, 'revisions', n.slice(0, 2), n + '.json')
  }

  private async read (path: string): Promise<unknown> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch {
      return null
    }
    try {
      return JSON.parse(text) as unknown
    } catch {
      // A torn or foreign file is treated as absent and replaced on the next write.
      return null
    }
  }

  private async write (path: string, value: unknown): Promise<void> {
    const dir = join(path, '..')
    await mkdir(dir, { recursive: true })
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await writeFile(tmp, JSON.stringify(value))
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  }
}
