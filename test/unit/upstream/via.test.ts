import { describe, expect, it } from 'vitest'
import { OWN_VIA, cameBack, withOwnVia } from '../../../node/upstream/via.ts'

describe('Via', () => {
  it('adds this node\'s entry to any form of request headers, after the ones already there', () => {
    expect(withOwnVia(null)).toEqual({ via: OWN_VIA })
    expect(withOwnVia({ range: 'bytes=0-0', Via: '1.1 proxy' })).toEqual({ range: 'bytes=0-0', via: `1.1 proxy, ${OWN_VIA}` })
    expect(withOwnVia(['range', 'bytes=0-0'])).toEqual(['range', 'bytes=0-0', 'via', OWN_VIA])
    expect(withOwnVia(['VIA', '1.0 a'])).toEqual(['VIA', `1.0 a, ${OWN_VIA}`])
    expect(withOwnVia(new Map([['accept', '*/*']]))).toEqual({ accept: '*/*', via: OWN_VIA })
  })

  it('knows a request this node sent, and only that', () => {
    expect(cameBack(undefined)).toBe(false)
    expect(cameBack('1.1 proxy, 1.1 aimirror-000000000000')).toBe(false)
    expect(cameBack(`1.1 proxy, ${OWN_VIA}, 1.1 aimirror-000000000000`)).toBe(true)
    expect(cameBack(['1.1 proxy', OWN_VIA])).toBe(true)
  })
})
