import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/server.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Every file talks to the one server the global setup starts.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
