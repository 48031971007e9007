// What the sql read method's threads (sql-read-worker.ts) and their pool
// (sql-read-pool.ts) say to each other besides jobs and their answers
// (read-job.ts): the thread's connection is open (or why not), the listing
// asked for through it, and the connection closed. These carry id -1.

import type { ListedTablespace } from './listing.js';
import type { ReadReply } from './read-job.js';

export type SqlWorkerRequest = { kind: 'list'; options: unknown } | { kind: 'close' };

export type SqlWorkerReply =
  | { id: -1; kind: 'opened' }
  | { id: -1; kind: 'listed'; listing: ListedTablespace[] }
  | { id: -1; kind: 'closed' }
  | Extract<ReadReply, { kind: 'failed' }>;
