import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Redis and PostgreSQL: the running ones, or throwaway ones where none answer.
    globalSetup: ['./test/support/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Each file builds its own stores; two at a time suits a 2-core machine.
    maxWorkers: 2,
    // The JSON report lets .ci/run print a plain "N passed, N failed" line.
    // The last line says how many tests ran on real Apache CouchDB, or why none did.
    reporters: ['default', ['json', { outputFile: '.test-results/vitest.json' }], './test/support/couch-summary.ts'],
  },
});
