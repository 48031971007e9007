// A repository backup waits for its WAL in the archive: up to the segment holding its stop, and
// for as long as segments keep arriving (archive-timeout is the longest wait without one).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { waitForArchivedWal } from '../../src/backup/repo/archived-wal-wait.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';

const SEG = 16 * 1024 * 1024;
const name = (n: number) => `0000000100000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const record = (start: string, stop: string, from: 'primary' | 'standby' = 'primary') =>
  ({ id: '20261204-000000F', timeline: 1, start_lsn: start, stop_lsn: stop, backup_from: from }) as unknown as BackupRecord;

test('segments arriving one by one, each within archive-timeout, complete the wait however long the backlog', async () => {
  const stored = new Set<string>();
  let n = 1;
  const timer = setInterval(() => stored.add(name(n++)), 30);
  try {
    await waitForArchivedWal({ stanza: { wal_segment_size: SEG }, archiveTimeoutMs: 120, archivedAmong: async (names) => new Set(names.filter((x) => stored.has(x))) }, record('0/1000028', '0/A000100'));
    assert.ok(stored.has(name(10)));
  } finally {
    clearInterval(timer);
  }
});

test("an archiver working through segments before the backup's own is progress too: the wait goes on while they arrive", async () => {
  // 0x20 segments behind when the backup stops: its own (0x21, 0x22) arrive only after them.
  const stored = new Set<string>();
  let n = 1;
  const timer = setInterval(() => stored.add(name(n++)), 30);
  try {
    await waitForArchivedWal({ stanza: { wal_segment_size: SEG }, archiveTimeoutMs: 150, archivedAmong: async (names) => new Set(names.filter((x) => stored.has(x))) }, record('0/21000028', '0/22000100'));
    assert.ok(stored.has(name(0x22)));
  } finally {
    clearInterval(timer);
  }
  // Nothing arriving at all still ends the wait.
  await assert.rejects(
    waitForArchivedWal({ stanza: { wal_segment_size: SEG }, archiveTimeoutMs: 60, archivedAmong: async () => new Set<string>() }, record('0/21000028', '0/22000100')),
    /none archived for 0.06 s/,
  );
});

test('a stop on a segment boundary waits for the segment before it, not the one it starts (which a quiet primary may not fill for hours)', async () => {
  const stored = new Set([name(1)]);
  await assert.rejects(
    waitForArchivedWal({ stanza: { wal_segment_size: SEG }, archiveTimeoutMs: 50, archivedAmong: async (names) => new Set(names.filter((x) => stored.has(x))) }, record('0/1000028', '0/3000000', 'standby')),
    (e: Error & { hint?: string }) => {
      assert.match(e.message, new RegExp(`${name(2)} missing, none archived for 0.05 s`));
      assert.match(e.hint ?? '', /archive_timeout there/);
      return true;
    },
  );
  stored.add(name(2));
  await waitForArchivedWal({ stanza: { wal_segment_size: SEG }, archiveTimeoutMs: 50, archivedAmong: async (names) => new Set(names.filter((x) => stored.has(x))) }, record('0/1000028', '0/3000000', 'standby'));
});

test('--wal=included: nothing is waited for, a stop on a segment boundary neither', async () => {
  const stored = new Set<string>();
  const req = { stanza: { wal_segment_size: SEG }, archiveTimeoutMs: 50, archivedAmong: async (names: string[]) => new Set(names.filter((x) => stored.has(x))) };
  const included = (start: string, stop: string) => ({ ...record(start, stop, 'standby'), wal: 'included' }) as unknown as BackupRecord;
  await waitForArchivedWal(req, included('0/1000028', '0/3000100')); // its WAL is in the set: the archive holds none of it
  await waitForArchivedWal(req, included('0/1000028', '0/3000000'));
});
