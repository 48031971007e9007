// Where `-X stream` puts WAL: an interface with three implementations, segment
// files in a pg_wal directory (plain format), members of pg_wal.tar (tar
// format) and files of a repository's backup set. Segments are written
// sequentially and padded with zeros to the segment size when the stream stops
// mid-segment, as pg_basebackup does; like it, the plain and tar stores mark
// each complete segment and the history file archived (archive_status/<name>.done),
// so that a copy restored with archive_mode on does not archive them again.

export interface SegmentStore {
  open(name: string): void | Promise<void>;
  write(data: Buffer): void | Promise<void>;
  /** Close the open segment; `written` bytes were written, the rest is zero-filled (a complete segment: written = the segment size). */
  close(written: number): void | Promise<void>;
  /** A whole small file beside the segments (the history file of the backup's timeline), before any segment. */
  whole(name: string, data: Buffer): void | Promise<void>;
  finish(): Promise<void>;
  abort(): void;
}
