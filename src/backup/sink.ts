// Where a base backup's tar files go. The engine drives a sink with the events
// of the BASE_BACKUP stream; plain-sink.ts extracts, tar-sink.ts writes tar
// files. Both also provide the SegmentStore for -X stream.

import type { TablespaceHeader } from '../protocol/base-backup-stream.js';
import type { SegmentStore } from './wal/segment-store.js';

export interface BackupSink {
  /** Called once BASE_BACKUP is sent, while the server runs its checkpoint: load what writing will need. */
  prepare?(): void;
  /** Called once the server has listed the tablespaces, before any tar file. */
  prepareTablespaces(list: TablespaceHeader[]): void;
  tarBegin(name: string, tablespace: TablespaceHeader | null): void | Promise<void>;
  tarData(chunk: Buffer): void | Promise<void>;
  tarEnd(): Promise<void>;
  manifestBegin(): void | Promise<void>;
  manifestData(chunk: Buffer): void | Promise<void>;
  manifestEnd(): Promise<void>;
  walStore(segmentSize: number): SegmentStore;
  /**
   * Plain files on this host: the directory a tablespace's files go to (null: the
   * main data directory), where a parallel backup's workers may write them
   * themselves once the tar stream has made the directories. Absent: every
   * file comes through the tar stream.
   */
  directRoot?(tablespace: TablespaceHeader | null): string;
  /** Everything received: write -R files, sync, put the manifest in place. */
  finish(): Promise<void>;
  /** Stop writing; leaves clean-up of files to OutputDirs. */
  abort(): void;
}
