// A WAL file on the server's side (pg_wal, restore_command's %p): read for
// archive-push into a pooled buffer, and written for archive-get. The
// repository never sees these paths: it takes and gives bytes
// (repo/archive-store.ts).

import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { PgpitrError, storageError } from '../common/errors.js';
import { poolFor } from '../storage/buffer-pool.js';
import { headerOfSegment } from '../postgres/wal-page-header.js';
import { writeFileAtomicSync } from '../storage/durable.js';

/** Reads a WAL file; one of segment size into a pooled buffer (give it back with poolFor(segmentSize).give). */
export async function readPgWalFile(source: string, segmentSize: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(source, 'r');
  } catch (e) {
    throw storageError('read WAL file', source, e);
  }
  try {
    const size = (await fh.stat()).size;
    if (size !== segmentSize) return await fh.readFile();
    const buf = poolFor(segmentSize).take();
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    // Shrank while read: the segment check reports it (a view, never given back to the pool).
    if (off < size) return buf.subarray(0, off);
    return buf;
  } catch (e) {
    throw storageError('read WAL file', source, e);
  } finally {
    await fh.close();
  }
}

/**
 * Writes a fetched WAL file at `dest` (restore_command's %p) under a temporary name first, so
 * that recovery never reads a partial file. Not synced: PostgreSQL reads it at once and fetches
 * it again after a crash. Synchronous calls: one file per process, nothing to overlap with.
 */
export function writePgWalFile(dest: string, data: Buffer): void {
  const tmp = `${dest}.pgpitr-tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, dest);
  } catch (e) {
    // A full disk must not keep a partial copy (the prefetch's spool may share pg_wal's file system).
    try {
      unlinkSync(tmp);
    } catch {
      /* not made, or gone */
    }
    throw storageError('write restored WAL file', dest, e);
  }
}

/**
 * Puts WAL file `name` into `dataDir`'s pg_wal for recovery to read there (restore_command then
 * answers "not found"); whether it did. `padded` (a segment's received part, zeros after it) is
 * marked archived first (archive_status/<name>.done): the archiver must never store it under the
 * whole segment's name (nor PostgreSQL rename it to .partial and archive it: the new timeline's
 * first segment holds its WAL up to the fork), and PostgreSQL removes it later. Synced: unlike a
 * fetched file, this one is found in pg_wal after a power loss, where a renamed but empty file
 * would read as the end of WAL. A file of this segment pg_wal holds already is kept when it holds as much
 * (placed before), replaced when `data` goes on past its end (a backup's copy of its stop
 * segment, zeros after the stop: kept, recovery would end there), and when the two differ before
 * the shorter one's end, recovery is stopped (thrown): which is this system's WAL is not known.
 */
export function placeInPgWal(dataDir: string, name: string, data: Buffer, padded: boolean): boolean {
  const dest = join(dataDir, 'pg_wal', name);
  let there: Buffer | null = null;
  try {
    there = readFileSync(dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('read WAL file', dest, e);
  }
  // A file whose first page is not this segment's is no WAL of it (a recycled segment, named for
  // later use, holds an old one's): replaced.
  if (there !== null && !isSegment(there, name)) there = null;
  if (there !== null) {
    const held = endOfContent(there);
    const got = endOfContent(data);
    const common = Math.min(held, got);
    if (!there.subarray(0, common).equals(data.subarray(0, common))) {
      throw new PgpitrError('ERR_CHECK', `${dest} and what receive-wal received of ${name} differ: recovery is stopped rather than handed either`, {
        hint: `if the file in pg_wal is a leftover (copied by hand, another cluster's), remove it and start the server again; to end recovery before ${name} instead, move receive-wal's copy of it aside`,
      });
    }
    if (got <= held) return false;
  }
  if (padded) writeFileAtomicSync(join(dataDir, 'pg_wal', 'archive_status', `${name}.done`), Buffer.alloc(0));
  writeFileAtomicSync(dest, data);
  return true;
}

function isSegment(data: Buffer, name: string): boolean {
  return headerOfSegment(name, data)?.segmentSize === data.length;
}

/** The length of `data` without its trailing zeros. */
export function endOfContent(data: Buffer): number {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  return end;
}
