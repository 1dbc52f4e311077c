// Loaded into PouchDB Server (node --require, from dev/pouch-server.ts) so
// that the stand-in answers "which databases are there" the way a CouchDB
// does: without a queue every request waits in.
//
// Why: PouchDB Server looks up the database list before every request to a
// database (express-pouchdb's setDBOnReq). pouchdb-all-dbs answers that
// list from a cache, but through a task queue that runs one task per turn of
// the event loop. With a few hundred requests in the air (a run at
// concurrency 300), each request waits behind all the others' lookups, and
// the server falls into a slow regime that feeds itself: copies of 0.2-0.7 s
// where the same load is otherwise served in 60-80 ms. CouchDB has no such
// queue. docs/benchmarks-history.md ("the stand-in's queue") has the figures.
//
// What this changes: the answer is kept until a database is created or
// destroyed; the first lookup after either still goes through the queue,
// behind the task that records the change, so a database is listed as soon
// as it was before, and no longer once it is gone. It is kept at each layer
// express-pouchdb wraps around the lookup (one decodes every name on every
// call), so a request no longer costs more the more databases there are.
// POUCHDB_STOCK=1 runs the server without it, to compare.
'use strict';

const Module = require('node:module');

const load = Module._load;
Module._load = function loadWithListCache(request, parent, isMain) {
  const exported = load.call(this, request, parent, isMain);
  if (request !== 'pouchdb-all-dbs' || typeof exported !== 'function') return exported;
  return function installAllDbs(Pouch) {
    exported(Pouch);
    let changes = 0;
    const changed = () => {
      changes += 1;
    };
    Pouch.on('created', changed);
    Pouch.on('destroyed', changed);
    /** `lookup` answered from its last answer while no database was created or destroyed since it was asked. */
    const remembered = (lookup) => {
      let kept = null;
      return function allDbs(callback) {
        let answer;
        if (kept && kept.changes === changes) answer = Promise.resolve(kept.names.slice());
        else {
          const asked = changes;
          answer = Promise.resolve(lookup.call(this)).then((names) => {
            // Fresh flat strings: the queue's are slices of its keys, which every decodeURIComponent
            // over the list would otherwise flatten again.
            if (asked === changes) kept = { changes: asked, names: names.map((name) => Buffer.from(name, 'utf8').toString('utf8')) };
            return names.slice();
          });
        }
        if (typeof callback === 'function') answer.then((names) => callback(null, names), callback);
        return answer;
      };
    };
    // express-pouchdb wraps allDbs by assigning a new function over it: each one is kept the same way.
    let current = remembered(Pouch.allDbs);
    Object.defineProperty(Pouch, 'allDbs', {
      configurable: true,
      enumerable: true,
      get: () => current,
      set: (lookup) => {
        current = remembered(lookup);
      },
    });
  };
};
