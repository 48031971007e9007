// The clock a copy's start is told by. The copy journal keeps a copy whose source was last
// modified more than a second before the copy began (copy-journal.ts reusable): the times
// compared are the source's file times, so the start must be read on the source's clock too,
// and never ahead of it. The direct readers copy files of this host: its clock. The sql read
// method copies another host's files: this host's clock, less how far ahead of the server's it
// may be (measured once, its uncertainty counted against it).

/** Microseconds since the epoch, never ahead of the source's clock. */
export type SourceClock = () => number;

export const hostClock: SourceClock = () => Date.now() * 1000;

/** The server's clock through `query` (a SQL session on it), as a SourceClock. */
export async function serverClock(query: (text: string) => Promise<{ rows: { us: string }[] }>): Promise<SourceClock> {
  const r = await query(`SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint::text AS us`);
  // Date.now() is whole milliseconds: this host's true time at the answer is below back + 1 ms.
  const back = Date.now() + 1;
  const serverUs = Number(r.rows[0]!.us);
  const aheadUs = back * 1000 - serverUs;
  return () => Date.now() * 1000 - aheadUs;
}
