// The suite's closing lines on real Apache CouchDB: how many tests ran on the
// one COUCHDB_TEST_URL names, and how many were skipped and why (the reason
// each skipped variant carries in its title, "(skipped: ...)": see
// describeEachCouch in test/support/harness.ts). A machine without
// COUCHDB_TEST_URL still passes; these lines say what it did not cover.
import type { Reporter, TestModule } from 'vitest/node';
import { EXAMPLE_URL, maskCredentials, realCouchSource, TEST_URL_VAR } from '../../dev/couchdb-server.js';

/** The label describeEachCouch gives the real-CouchDB variant (COUCH_KINDS). */
export const REAL_LABEL = 'Apache CouchDB (real)';

export default class CouchSummary implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>) {
    const counts = { passed: 0, failed: 0, skipped: 0, pending: 0 };
    const files = new Set<string>();
    const skippedFor = new Map<string, number>();
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        if (!t.fullName.includes(REAL_LABEL)) continue;
        const state = t.result().state;
        counts[state]++;
        if (state === 'passed' || state === 'failed') files.add(m.moduleId);
        if (state === 'skipped') {
          // No reason in its title: left out by a -t filter or .only elsewhere.
          const why = /\(skipped: ([^)]*)\)/.exec(t.fullName)?.[1] ?? 'not selected in this run';
          skippedFor.set(why, (skippedFor.get(why) ?? 0) + 1);
        }
      }
    }
    const source = realCouchSource();
    const ran = counts.passed + counts.failed;
    const lines = [
      source.kind === 'url'
        ? `real CouchDB: ${ran} tests ran in ${files.size} files (${counts.passed} passed, ${counts.failed} failed) on ${TEST_URL_VAR}, ${maskCredentials(source.url)}`
        : `real CouchDB: ${ran} tests ran: ${source.why}`,
    ];
    for (const [why, n] of skippedFor) {
      const mend =
        source.kind === 'none' && why === source.why
          ? `; set ${TEST_URL_VAR} to a CouchDB admin's URL to run them, e.g. ${EXAMPLE_URL} (docker compose up -d couchdb)`
          : '';
      lines.push(`real CouchDB: ${n} tests skipped: ${why}${mend}`);
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
  }
}
