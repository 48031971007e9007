// Where `-X stream` puts WAL: an interface with two implementations, segment
// files in a pg_wal directory (plain format) and members of pg_wal.tar (tar
// format). Segments are written sequentially and padded with zeros to the
// segment size when the stream stops mid-segment, as pg_basebackup does.

export interface SegmentStore {
  open(name: string): void | Promise<void>;
  write(data: Buffer): void | Promise<void>;
  /** Close the open segment; `written` bytes were written, the rest is zero-filled. */
  close(written: number): void | Promise<void>;
  finish(): Promise<void>;
  abort(): void;
}
