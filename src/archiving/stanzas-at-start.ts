// The stanza records the asynchronous pusher starts with, one per repository:
// it starts as soon as one repository answers with its record (it needs one,
// for the segment size and the system identifier). A repository that is down
// answers only once its requests have been retried (seconds, on object
// storage): waiting for it would leave the others without WAL meanwhile, and a
// pusher started during an outage would find pg_wal past the queue limit and
// drop WAL for every repository. Those that have not answered yet, or failed,
// are read again by their queue with each file.

import type { StanzaInfo } from '../repo/stanza.js';

export type StanzaAnswer = { value: StanzaInfo } | { error: unknown } | null;

/** The first record known, and what each repository had answered by then (null: nothing yet). Throws the first repository's error when none can be read. */
export async function stanzasAtStart(reads: Promise<StanzaInfo>[]): Promise<{ known: StanzaInfo; each: StanzaAnswer[] }> {
  const each: StanzaAnswer[] = reads.map(() => null);
  const tracked = reads.map((p, i) =>
    p.then(
      (value) => {
        each[i] = { value };
        return value;
      },
      (error: unknown) => {
        each[i] = { error };
        throw error;
      },
    ),
  );
  try {
    return { known: await Promise.any(tracked), each };
  } catch (e) {
    throw (e as AggregateError).errors[0];
  }
}
