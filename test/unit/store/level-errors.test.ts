import { expect, it } from 'vitest'
import { diskRefusal } from '../../../node/store/level-errors.ts'

it('tells a disk that refuses writes from damage, in the error or its causes', () => {
  const level = (message: string): Error => Object.assign(new Error('Database failed to open'), { cause: Object.assign(new Error(message), { code: 'LEVEL_IO_ERROR' }) })
  expect(diskRefusal(level('IO error: /c/index/000005.ldb: No space left on device'))).toBe('no space left on device')
  expect(diskRefusal(level('IO error: /c/index/LOCK: Read-only file system'))).toBe('read-only file system')
  expect(diskRefusal(Object.assign(new Error('open failed'), { code: 'EACCES' }))).toBe('permission denied')
  // Damage: a missing or corrupt table is made anew.
  expect(diskRefusal(level('IO error: /c/index/000007.ldb: No such file or directory'))).toBeNull()
  expect(diskRefusal(Object.assign(new Error('Corruption: bad block'), { code: 'LEVEL_CORRUPTION' }))).toBeNull()
  expect(diskRefusal(null)).toBeNull()
})
