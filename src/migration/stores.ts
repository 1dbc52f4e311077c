// What the domain rules take from the stores: the database and CouchDB, not
// the whole context (no queues, no darklaunch).
import type { Couch } from '../stores/couch.js';
import type { Db } from '../stores/postgres.js';

export type Stores = { db: Db; couch: Couch };
