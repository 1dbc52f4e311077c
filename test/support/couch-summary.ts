// A closing line for the suite: how many tests ran on real Apache CouchDB, or
// how many were skipped for want of one, and why (test/support/harness.ts,
// describeEachCouch). A machine without ../shared/couchdb still passes; this
// line says what it did not cover.
import type { Reporter, TestModule } from 'vitest/node';
import { realCouchSource } from '../../src/dev/couchdb-server.js';

/** The label describeEachCouch gives the real-CouchDB variant (COUCH_KINDS). */
export const REAL_LABEL = 'Apache CouchDB 3.5 (real)';

export default class CouchSummary implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>) {
    const counts = { passed: 0, failed: 0, skipped: 0, pending: 0 };
    const files = new Set<string>();
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        if (!t.fullName.includes(REAL_LABEL)) continue;
        const state = t.result().state;
        counts[state]++;
        if (state === 'passed' || state === 'failed') files.add(m.moduleId);
      }
    }
    const source = realCouchSource();
    const ran = counts.passed + counts.failed;
    const where = source.kind === 'script' ? source.script : source.kind === 'url' ? 'COUCHDB_TEST_URL' : '';
    const lines = [`real CouchDB: ${ran} tests ran in ${files.size} files (${counts.passed} passed, ${counts.failed} failed)${where ? ` on ${where}` : ''}`];
    const why =
      source.kind === 'none'
        ? `: ${source.why}`
        : source.kind === 'url'
          ? ' (a case that kills CouchDB needs a node started from ../shared/couchdb, not COUCHDB_TEST_URL)'
          : '';
    if (counts.skipped) lines.push(`real CouchDB: ${counts.skipped} tests skipped${why}`);
    process.stdout.write(`\n${lines.join('\n')}\n`);
  }
}
