// `pgpitr stanza-create`: records a cluster in the repository (system
// identifier, major version, WAL segment size), creating the repository if
// needed, under the repository lock. Run again on the same cluster it changes
// nothing. A new repository's store is probed for exclusive create
// (repo/conditional-create.ts) and the answer recorded in its marker.

import { openSqlClient } from '../protocol/sql-client.js';
import type { ConnectionSettings } from '../protocol/conninfo.js';
import { parseSizeSetting } from '../postgres/settings.js';
import { majorOf } from '../postgres/versions.js';
import { createStanza } from '../repo/stanza.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { RepoLock } from '../repo/lock.js';
import { probeConditionalCreate, recordConditionalCreate, recordedConditionalCreate } from '../repo/conditional-create.js';
import { REPOSITORY_LOCK } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';

export interface StanzaCreated {
  info: StanzaInfo;
  created: boolean;
  /** Whether the store enforces exclusive create (probed once, recorded in the repository marker); false: locks are advisory. */
  conditionalCreate: boolean;
  /** What of the repository marker and its copy was missing or damaged and put back (repo/repo-marker.ts). */
  repaired: string | null;
}

export async function stanzaCreate(repo: Repository, stanza: string, connection: ConnectionSettings): Promise<StanzaCreated> {
  const client = await openSqlClient(connection, 'pgpitr stanza-create');
  let row: { sysid: string; version: string; seg: string };
  try {
    const r = await client.query<{ sysid: string; version: string; seg: string }>(
      "select system_identifier::text as sysid, current_setting('server_version_num') as version, current_setting('wal_segment_size') as seg from pg_control_system()",
    );
    row = r.rows[0]!;
  } finally {
    await client.end().catch(() => {});
  }
  await repo.storage.pathCreate?.('');
  const lock = await RepoLock.acquire(repo.storage, REPOSITORY_LOCK, 'stanza-create');
  try {
    const made = await createStanza(repo, {
      stanza,
      system_identifier: row.sysid,
      pg_major: majorOf(Number(row.version)),
      wal_segment_size: parseSizeSetting(row.seg),
    });
    // Once per repository: whether the locks just relied on are enforced by the store.
    let conditionalCreate = await recordedConditionalCreate(repo.storage);
    if (conditionalCreate === null) {
      conditionalCreate = await probeConditionalCreate(repo.storage);
      await recordConditionalCreate(repo.storage, conditionalCreate);
    }
    return { ...made, conditionalCreate };
  } finally {
    await lock.release();
  }
}
