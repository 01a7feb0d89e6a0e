import { describe, expect, it } from 'vitest'
import { ClusterSetupError, StartError } from '../../../node/errors.ts'
import { startError, startStep } from '../../../node/start-errors.ts'

function errno (code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code })
}

describe('start-up errors', () => {
  it('say what failed, the field that decides it and why, from an errno deep in the cause chain', () => {
    const wrapped = new Error('listen failed', { cause: new Error('transport', { cause: errno('EADDRINUSE', 'listen EADDRINUSE') }) })
    const err = startError('cannot listen on 127.0.0.1:80', 'server.port', wrapped)
    expect(err).toBeInstanceOf(StartError)
    expect(err.code).toBe('ERR_START')
    expect(err.message).toBe('cannot listen on 127.0.0.1:80 (server.port): the address is already in use (by another aimirror node or another program)')
  })

  it('read an errno named only in a message (libp2p gathers its listen failures into one)', () => {
    const err = startError('cannot listen for cluster peers', 'cluster.listen', new Error('Some addresses failed: /ip4/1.2.3.4/tcp/1: Error: listen EADDRNOTAVAIL'))
    expect(err.message).toContain('(cluster.listen): this machine has no such address')
  })

  it('keep the message of an error they cannot name, and pass catalogue errors unchanged', async () => {
    expect(startError('cannot use the cache directory /x', 'cache.dir', new Error('odd failure')).message).toBe('cannot use the cache directory /x (cache.dir): odd failure')
    const setup = new ClusterSetupError('cannot read the cluster key file /k')
    await expect(startStep('cannot start the cluster', 'cluster', async () => { throw setup })).rejects.toBe(setup)
    await expect(startStep('x', 'y', async () => 7)).resolves.toBe(7)
  })
})
