import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { parseClusterKey } from '../../protocol/membership.ts'
import { ClusterSetupError } from '../errors.ts'

/**
 * The node's libp2p identity, kept in the data dir so its peer id survives restarts (peers and the DHT
 * know it by that id). Created on first start, readable by the owner only.
 */
export async function loadPeerKey (path: string): Promise<PrivateKey> {
  let bytes: Buffer | null = null
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ClusterSetupError(`cannot read the peer identity ${path}`, { cause: err })
  }
  if (bytes !== null) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new ClusterSetupError(`the peer identity ${path} is not a libp2p private key; remove it to make a new one`, { cause: err })
    }
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(temp, privateKeyToProtobuf(key), { mode: 0o600 })
  await chmod(temp, 0o600)
  await rename(temp, path)
  return key
}

/** The cluster key from its file; null when the cluster is open (no file configured). */
export async function loadClusterKey (path: string | null): Promise<Uint8Array | null> {
  if (path === null) return null
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EISDIR') {
      throw new ClusterSetupError(`the cluster key file ${path} (cluster.key_file) is a directory; name a file in it, made with "aimirror keygen ${join(path, 'cluster.key')}"`, { cause: err })
    }
    const why = code === 'ENOENT' ? 'no such file' : (err as Error).message
    throw new ClusterSetupError(`cannot read the cluster key file ${path} (cluster.key_file): ${why}; create one with "aimirror keygen ${path}"`, { cause: err })
  }
  try {
    return parseClusterKey(text)
  } catch (err) {
    throw new ClusterSetupError(`${path} is not a cluster key (cluster.key_file): ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Why the key file is open to more than its owner, or null. Whoever reads the key joins the cluster and
 * gets every blob: "aimirror keygen" writes it 0600, but a copy (scp, a volume) often lands 0644.
 */
export async function keyFileExposure (path: string | null): Promise<string | null> {
  if (path === null || process.platform === 'win32') return null
  const mode = (await stat(path)).mode & 0o777
  if ((mode & 0o077) === 0) return null
  return `the cluster key file ${path} (cluster.key_file) is readable by others (mode ${mode.toString(8).padStart(4, '0')}): whoever reads it joins the cluster; chmod 600 ${path}`
}
