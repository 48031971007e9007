// What the repository backup asks of the base-backup engine: the files as one plain stream
// (or -j's readers) into the set writer (the sink), the WAL streamed into the set with
// --wal=included and otherwise waited for in the archive, page checksums verified and their
// failures recorded rather than fatal.

import type { BaseBackupOptions } from '../options.js';
import type { BackupSink } from '../sink.js';
import type { ConnectionSettings } from '../../protocol/conninfo.js';

/** What of the repository backup's request (repo-backup.ts) the engine's options come from. */
export interface EngineRequest {
  connection: ConnectionSettings;
  walIncluded: boolean;
  fastCheckpoint: boolean;
  maxRateKb?: number | undefined;
  progress: boolean;
  parallel?: BaseBackupOptions['parallel'];
  stanza: { system_identifier: string };
}

export function repoEngineOptions(req: EngineRequest, label: string, sink: BackupSink, onServerStopped: () => void): BaseBackupOptions {
  return {
    connection: req.connection,
    target: { kind: 'repository' },
    format: 'plain',
    walMethod: req.walIncluded ? 'stream' : 'none',
    // Without the WAL in the backup, repo-backup.ts waits for it in this stanza's archive (archived-wal-wait.ts).
    serverWaitsForArchive: false,
    compression: null,
    fastCheckpoint: req.fastCheckpoint,
    maxRateKb: req.maxRateKb,
    label,
    progress: req.progress,
    estimateSize: true,
    createSlot: false,
    noSlot: false,
    tablespaceMappings: [],
    writeRecoveryConf: false,
    noClean: false,
    noSync: false,
    manifest: true,
    // The kept backup_manifest has PostgreSQL's default checksum, CRC-32C, which the set
    // records too: a parallel backup's readers compute it once for both.
    manifestChecksums: undefined,
    manifestForceEncode: false,
    verifyChecksums: true,
    // A damaged page is stored as it is and named in the record (as pgBackRest): no backup at all
    // while a block is damaged would leave the cluster without any.
    recordChecksumFailures: true,
    statusIntervalMs: 10_000,
    sink,
    parallel: req.parallel,
    expectSystemIdentifier: req.stanza.system_identifier,
    onServerStopped,
  };
}
