import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Components keep no module-level state, so test files can share workers: starting a worker and
    // loading the TypeScript graph costs more than most files take to run. Most suites wait on sockets
    // and child processes, one worker per core keeps timing-sensitive suites honest.
    isolate: false,
    maxWorkers: 2,
    // No test sends multicast: nodes started through the CLI or loadConfig get mDNS off.
    env: { AIMIRROR_MDNS: '0' }
  }
})
