import { describe, expect, it } from 'vitest'
import { UsageError, parseCliArgs } from '../../../cli/args.ts'

describe('parseCliArgs', () => {
  it.each([
    [[], 'start'],
    [['start'], 'start'],
    [['config', 'check'], 'config-check'],
    [['config', 'print'], 'config-print'],
    [['env'], 'env'],
    [['--help'], 'help'],
    [['help'], 'help'],
    [['--version'], 'version'],
    [['start', '--help'], 'help']
  ])('%j → %s', (argv, command) => {
    expect(parseCliArgs(argv).command).toBe(command)
  })

  it('reads flags', () => {
    const args = parseCliArgs(['--config', 'c.yaml', '--port', '9000', '--host', '0.0.0.0', '--cache-dir', '/tmp/c', '--log-level', 'debug'])
    expect(args.config).toBe('c.yaml')
    expect(args.flags).toEqual({ port: 9000, host: '0.0.0.0', cacheDir: '/tmp/c', logLevel: 'debug' })
  })

  it('config check and print take the file after them, as -c does', () => {
    expect(parseCliArgs(['config', 'check', 'n1.yaml'])).toMatchObject({ command: 'config-check', config: 'n1.yaml' })
    expect(parseCliArgs(['config', 'print', '/etc/aimirror.yaml'])).toMatchObject({ command: 'config-print', config: '/etc/aimirror.yaml' })
    expect(parseCliArgs(['config', 'check', '-c', 'a.yaml', 'a.yaml']).config).toBe('a.yaml')
    expect(parseCliArgs(['config', 'check', '-c', 'a.yaml']).config).toBe('a.yaml')
    expect(() => parseCliArgs(['config', 'check', '-c', 'a.yaml', 'b.yaml'])).toThrow(/two files named \("b\.yaml" and -c "a\.yaml"\)/)
    expect(() => parseCliArgs(['config', 'check', 'a.yaml', 'b.yaml'])).toThrow(/one file at most/)
  })

  it('prefetch takes any number of targets, the node and how many at once', () => {
    expect(parseCliArgs(['prefetch', '/a', 'https://x.example/b', '--url', 'http://n:1', '-j', '8'])).toMatchObject({
      command: 'prefetch', targets: ['/a', 'https://x.example/b'], url: 'http://n:1', jobs: 8
    })
    expect(parseCliArgs(['prefetch', '/a']).jobs).toBeUndefined()
  })

  it.each([
    [['--port', '80a']],
    [['--port', '70000']],
    [['--bogus']],
    [['frobnicate']],
    [['config']],
    [['config', 'lint']],
    [['start', 'extra']],
    [['prefetch']],
    [['prefetch', '-j', '0', '/x']],
    [['prefetch', '--jobs', 'many', '/x']],
    // A flag the command would ignore: a script asking for JSON must not get a table.
    [['prefetch', '--json', '/x']],
    [['env', '--json']],
    [['peers', '--cluster']]
  ])('rejects %j with a usage error', (argv) => {
    let caught: unknown
    try { parseCliArgs(argv) } catch (err) { caught = err }
    expect(caught).toBeInstanceOf(UsageError)
    expect((caught as UsageError).code).toBe('ERR_USAGE')
  })
})
