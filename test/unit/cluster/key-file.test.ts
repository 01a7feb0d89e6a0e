import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keyFileExposure, loadClusterKey } from '../../../node/cluster/identity.ts'
import { formatClusterKey } from '../../../protocol/membership.ts'

describe('the cluster key file', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'aimirror-key-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('is read when it is one; otherwise the error names the field and why', async () => {
    const good = join(dir, 'good.key')
    await writeFile(good, formatClusterKey(), { mode: 0o600 })
    expect(await loadClusterKey(good)).toBeInstanceOf(Uint8Array)
    expect(await loadClusterKey(null)).toBeNull()
    await expect(loadClusterKey(join(dir, 'missing.key'))).rejects.toThrow(/cannot read the cluster key file .*missing\.key \(cluster\.key_file\): no such file; create one with "aimirror keygen/)
    await expect(loadClusterKey(dir)).rejects.toThrow(/\(cluster\.key_file\) is a directory; name a file in it, made with "aimirror keygen .*cluster\.key"/)
    const junk = join(dir, 'junk.key')
    await writeFile(junk, 'not a key\n')
    await expect(loadClusterKey(junk)).rejects.toThrow(/junk\.key is not a cluster key \(cluster\.key_file\)/)
  })

  it.skipIf(process.platform === 'win32')('open to others than its owner is said, with the fix', async () => {
    const key = join(dir, 'shared.key')
    await writeFile(key, formatClusterKey(), { mode: 0o600 })
    await chmod(key, 0o600)
    expect(await keyFileExposure(key)).toBeNull()
    expect(await keyFileExposure(null)).toBeNull()
    await chmod(key, 0o644)
    expect(await keyFileExposure(key)).toMatch(/shared\.key \(cluster\.key_file\) is readable by others \(mode 0644\).*chmod 600/)
  })
})
