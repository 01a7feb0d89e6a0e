import { pino } from 'pino'
import { expect, it } from 'vitest'
import { Bans } from '../../../node/cluster/bans.ts'
import { SwarmBlame } from '../../../node/cluster/swarm-blame.ts'

it('reads in flight from one peer that fail together are one offence: one ban, one report, not a doubled ban', () => {
  const bans = new Bans({ baseMs: 1000 })
  const reported: string[] = []
  const banned: string[] = []
  const excluded: string[] = []
  const blame = new SwarmBlame({
    bans,
    peers: { forget: () => {} },
    logger: pino({ level: 'silent' }),
    reportCorrupt: (peer) => { reported.push(peer) },
    onBan: (peer) => { banned.push(peer) }
  }, 'sha256:' + 'a'.repeat(64), peer => { excluded.push(peer) })
  const t0 = Date.now()
  blame.ban('p1', 'b'.repeat(64), 7)
  blame.ban('p1', 'b'.repeat(64), 7)
  blame.ban('p1', 'b'.repeat(64), 8)
  expect(banned).toEqual(['p1'])
  expect(reported).toEqual(['p1'])
  expect(excluded).toEqual(['p1', 'p1', 'p1'])
  const until = bans.list().find(b => b.peer === 'p1')?.until ?? 0
  expect(until - t0).toBeLessThan(2000)
  // A later offence, once the ban is over, doubles it.
  expect(bans.ban('p1', until + 1)).toBe(2000)
})
