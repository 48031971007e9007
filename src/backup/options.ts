// The validated request for one base backup. The CLI turns pg_basebackup-style
// flags into this; the engine trusts it.

import type { ConnectionSettings } from '../protocol/conninfo.js';
import type { BackupSink } from './sink.js';

export type CompressionAlgorithmName = 'gzip' | 'lz4' | 'zstd';

export interface CompressionChoice {
  location: 'client' | 'server';
  algorithm: CompressionAlgorithmName;
  level?: number | undefined;
  /** Server-side COMPRESSION_DETAIL text (level=N,workers=N,long). */
  detail?: string | undefined;
  workers?: number | undefined;
  long?: boolean | undefined;
}

export type BackupTarget =
  | { kind: 'directory'; path: string }
  | { kind: 'stdout' }
  | { kind: 'server'; path: string }
  | { kind: 'blackhole' }
  /** Into a repository: the caller gives the sink (backup/repo/repo-sink.ts) and keeps the record. */
  | { kind: 'repository' };

/** How a parallel backup's workers read files: straight from the data directory on this host, or through SQL functions. */
export type ReadMethodChoice = 'auto' | 'direct' | 'sql';

export interface TablespaceMapping {
  oldDir: string;
  newDir: string;
}

export interface BaseBackupOptions {
  connection: ConnectionSettings;
  target: BackupTarget;
  format: 'plain' | 'tar';
  walMethod: 'none' | 'fetch' | 'stream';
  /**
   * Whether the server's backup stop waits for the WAL to be archived (default: with -X none, as
   * pg_basebackup). The server checks once a second; a repository backup waits on its own
   * archive instead, which it polls more often and which is the archive it needs.
   */
  serverWaitsForArchive?: boolean | undefined;
  compression: CompressionChoice | null;
  fastCheckpoint: boolean;
  label: string;
  progress: boolean;
  estimateSize: boolean;
  maxRateKb?: number | undefined;
  slot?: string | undefined;
  createSlot: boolean;
  noSlot: boolean;
  tablespaceMappings: TablespaceMapping[];
  walDir?: string | undefined;
  writeRecoveryConf: boolean;
  /**
   * The database -R names in primary_conninfo: as pg_basebackup 17+ (which a standby's slot
   * synchronisation needs), the one given (-d, PGDATABASE), on a server of 17 or later; set by
   * the engine once it knows the server.
   */
  recoveryConfDbname?: string | undefined;
  noClean: boolean;
  noSync: boolean;
  manifest: boolean;
  manifestChecksums?: string | undefined;
  manifestForceEncode: boolean;
  verifyChecksums: boolean;
  /**
   * Page checksum failures end the backup as pg_basebackup's (false), or are given back in the
   * result, the pages copied as they are (the repository backup, as pgBackRest's): a cluster with
   * one damaged block is still backed up.
   */
  recordChecksumFailures?: boolean | undefined;
  statusIntervalMs: number;
  /** -j N: read the files with N workers of our own instead of BASE_BACKUP (backup/parallel/). */
  parallel?: { jobs: number; readMethod: ReadMethodChoice } | undefined;
  /** --resume: take over the interrupted or failed -j backup in the target directory, keeping what it copied. */
  resume?: boolean | undefined;
  /** Where the archives go when the target is a repository. */
  sink?: BackupSink | undefined;
  /** Refuse, before any data, a server of another system (a stanza's). */
  expectSystemIdentifier?: string | undefined;
  /** Called once the server has ended the backup (its end position known), before its WAL is in and the files synced. */
  onServerStopped?: (() => void) | undefined;
}
