import { describe, expect, it } from 'vitest'
import { classifyCranPath, rPlatform, variesByUserAgent } from '../../../../node/handlers/cran/paths.ts'

describe('CRAN paths', () => {
  it.each([
    ['/src/contrib/PACKAGES', { kind: 'index' }],
    ['/src/contrib/PACKAGES.gz', { kind: 'index' }],
    ['/src/contrib/PACKAGES.rds', { kind: 'index' }],
    ['/src/contrib/Meta/archive.rds', { kind: 'index' }],
    ['/bin/windows/contrib/4.4/PACKAGES.rds', { kind: 'index' }],
    ['/src/contrib/ggplot2_3.5.1.tar.gz', { kind: 'package', archive: '/src/contrib/Archive/ggplot2/ggplot2_3.5.1.tar.gz' }],
    ['/cran/latest/src/contrib/data.table_1.15.4.tar.gz', { kind: 'package', archive: '/cran/latest/src/contrib/Archive/data.table/data.table_1.15.4.tar.gz' }],
    ['/src/contrib/Archive/ggplot2/ggplot2_3.5.0.tar.gz', { kind: 'package', archive: null }],
    ['/bin/windows/contrib/4.4/ggplot2_3.5.1.zip', { kind: 'package', archive: null }],
    ['/bin/macosx/big-sur-arm64/contrib/4.4/ggplot2_3.5.1.tgz', { kind: 'package', archive: null }],
    ['/web/packages/ggplot2/index.html', null],
    ['/src/contrib/', null]
  ])('%s', (path, expected) => {
    expect(classifyCranPath(path)).toEqual(expected)
  })

  it('reads the R platform from R user agents only, for repositories that vary by it', () => {
    expect(rPlatform('R (4.4.1 x86_64-pc-linux-gnu x86_64 linux-gnu)')).toBe('4.4.1 x86_64-pc-linux-gnu x86_64 linux-gnu')
    expect(rPlatform('libcurl/7.88.1')).toBeNull()
    expect(rPlatform(undefined)).toBeNull()
    expect(variesByUserAgent(new URL('https://packagemanager.posit.co/cran/__linux__/jammy/latest/src/contrib/PACKAGES'))).toBe(true)
    expect(variesByUserAgent(new URL('https://cloud.r-project.org/src/contrib/PACKAGES'))).toBe(false)
  })
})
