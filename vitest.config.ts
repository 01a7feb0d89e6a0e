import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Components keep no module-level state, so test files can share workers: starting a worker and
    // loading the TypeScript graph costs more than most files take to run. Most suites wait on sockets
    // and child processes, so a few more workers than cores keeps both cores busy.
    isolate: false,
    maxWorkers: 3,
    // No test sends multicast: nodes started through the CLI or loadConfig get mDNS off.
    env: { AIMIRROR_MDNS: '0' }
  }
})
