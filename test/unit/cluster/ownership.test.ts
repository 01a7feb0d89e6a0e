import { describe, expect, it } from 'vitest'
import { ownerOf } from '../../../node/cluster/ownership.ts'

describe('ownership of shared download units', () => {
  const peers = ['12D3KooWA', '12D3KooWB', '12D3KooWC', '12D3KooWD']

  it('gives every unit one owner, the same whatever the order of the set', () => {
    for (let u = 0; u < 200; u++) {
      const owner = ownerOf(u, peers)
      expect(peers).toContain(owner)
      expect(ownerOf(u, [...peers].reverse())).toBe(owner)
    }
    expect(ownerOf(0, [])).toBeNull()
  })

  it('spreads units evenly', () => {
    const counts = new Map<string, number>()
    for (let u = 0; u < 4000; u++) {
      const o = ownerOf(u, peers) as string
      counts.set(o, (counts.get(o) ?? 0) + 1)
    }
    for (const p of peers) expect(counts.get(p)).toBeGreaterThan(850)
  })

  it('moves only the units of a node that leaves', () => {
    const without = peers.filter(p => p !== '12D3KooWC')
    for (let u = 0; u < 500; u++) {
      const before = ownerOf(u, peers)
      if (before !== '12D3KooWC') expect(ownerOf(u, without)).toBe(before)
    }
  })
})
