// Whether a server can be a stanza's: the same database system, PostgreSQL major
// version and WAL segment size (pg_resetwal --wal-segsize keeps the system
// identifier, and a stanza holds segments of one size). Used by backup, check
// and receive-wal before anything is stored.

import type { StanzaInfo } from './stanza.js';

export interface ServerIdentity {
  systemIdentifier: string;
  major: number;
  walSegmentSize: number;
}

/** How the server differs from the stanza ("is database system ...", "runs PostgreSQL ...", "has WAL segments of ..."), or null. */
export function stanzaMismatch(server: ServerIdentity, st: Pick<StanzaInfo, 'system_identifier' | 'pg_major' | 'wal_segment_size'>): string | null {
  if (server.systemIdentifier !== st.system_identifier) return `is database system ${server.systemIdentifier}, the stanza is for system ${st.system_identifier}`;
  if (server.major !== st.pg_major) return `runs PostgreSQL ${server.major}, the stanza is of PostgreSQL ${st.pg_major}`;
  if (server.walSegmentSize !== st.wal_segment_size) return `has WAL segments of ${server.walSegmentSize} bytes, the stanza's are of ${st.wal_segment_size}`;
  return null;
}
