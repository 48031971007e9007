// basebackup --resume's journal: a resumed run's journal starts with the entries of the run it
// resumes, so that a resume that fails in turn (refused before copying, or killed) leaves them
// for the next; the last line for a path wins.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyJournal, readJournal, journalKey, JOURNAL_NAME } from '../../src/backup/parallel/copy-journal.js';
import type { JournalEntry } from '../../src/backup/parallel/copy-journal.js';

const entry = (path: string, checksum: string): JournalEntry => ({ path, size: 10, mtime_us: 1, started_us: 3_000_000, algorithm: 'CRC32C', checksum });

test('a resumed run carries the interrupted run\'s entries; its own, later, win', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-journal-'));
  try {
    const first = new CopyJournal(dir, 0o600);
    first.record(entry('base/1/1', 'aa'));
    first.record(entry('base/1/2', 'bb'));
    // Killed: the next run reads it, then starts its own journal with what it read.
    const previous = readJournal(dir);
    const second = new CopyJournal(dir, 0o600, previous.values());
    assert.deepEqual([...readJournal(dir).keys()].sort(), [journalKey('base/1/1'), journalKey('base/1/2')]);
    second.record(entry('base/1/2', 'cc'));
    // That run fails too, before it copies the rest: a third still has everything.
    const third = readJournal(dir);
    assert.equal(third.get(journalKey('base/1/1'))?.checksum, 'aa');
    assert.equal(third.get(journalKey('base/1/2'))?.checksum, 'cc');
    assert.deepEqual(readdirSync(dir), [JOURNAL_NAME]);
    new CopyJournal(dir, 0o600, third.values()).remove();
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
