// Standalone pins (expire --pin-target=standalone): an archival backup kept with
// the WAL from its start to its stop, not every segment after it; and the holes
// expire then leaves in the archive, recorded so that check and info know them
// from gaps archiving left.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { decideRetention, decideSetExpiry } from '../../src/repo/retention.js';
import type { RetentionBackup } from '../../src/repo/retention.js';
import { holesBetween, insideExpiredHole, readExpiredHoles, recordExpiredHoles } from '../../src/repo/expired-holes.js';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { continuityFinding } from '../../src/commands/check-continuity.js';
import type { ArchivedFile } from '../../src/repo/archive-store.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-31T00:00:00Z');
const at = (d: number) => Date.parse('2026-12-01T00:00:00Z') + d * DAY;
// A full backup on day d starts at segment 100*d and stops 2 segments later.
const full = (d: number, extra: Partial<RetentionBackup> = {}): RetentionBackup => ({
  id: `F${d}`, state: 'complete', stopTimeMs: at(d), startSegNo: BigInt(100 * d), stopSegNo: BigInt(100 * d + 2), pinned: false, type: 'full', ...extra,
});
const ids = (l: { id: string }[]) => l.map((x) => x.id).sort();

test('a standalone pin keeps the backup and its own WAL range, not the WAL after it', () => {
  const list = [full(1, { pinned: true, pinTarget: 'standalone' }), full(5), full(10), full(20)];
  const d = decideRetention(list, { full: 2 }, NOW);
  assert.deepEqual(ids(d.keep), ['F1', 'F10', 'F20']);
  assert.match(d.keep.find((k) => k.id === 'F1')!.why, /pinned standalone/);
  assert.equal(d.walKeepFromSegNo, 1000n); // the oldest backup kept with its WAL: F10
  assert.deepEqual(d.walKeepRanges, [{ id: 'F1', fromSegNo: 100n, toSegNo: 102n }]);
  assert.equal(d.walKeptFor?.id, 'F10');
  // Pinned as before (full): every segment after it stays.
  const asBefore = decideRetention([full(1, { pinned: true }), full(5), full(10), full(20)], { full: 2 }, NOW);
  assert.equal(asBefore.walKeepFromSegNo, 100n);
  assert.deepEqual(asBefore.walKeepRanges, []);
});

test('a standalone backup the policy keeps anyway keeps the WAL after it', () => {
  // Among the 2 newest full backups: kept by the count, with its WAL.
  const d = decideRetention([full(1), full(10, { pinned: true, pinTarget: 'standalone' }), full(20)], { full: 2 }, NOW);
  assert.equal(d.walKeepFromSegNo, 1000n);
  assert.deepEqual(d.walKeepRanges, []);
  // The newest complete backup, whatever its pin.
  const newest = decideRetention([full(1), full(20, { pinned: true, pinTarget: 'standalone' })], { full: 1 }, NOW);
  assert.equal(newest.walKeepFromSegNo, 2000n);
  assert.deepEqual(newest.walKeepRanges, []);
  // The newest before a retention window recovers its first moments: kept with its WAL.
  const w = decideRetention([full(1), full(10, { pinned: true, pinTarget: 'standalone' }), full(25)], { windowMs: 10 * DAY }, NOW);
  assert.equal(w.walKeepFromSegNo, 1000n);
});

test('what a standalone incr takes files from is kept for its files, not its WAL', () => {
  const list: RetentionBackup[] = [
    full(1),
    { id: 'I2', state: 'complete', stopTimeMs: at(2), startSegNo: 200n, stopSegNo: 201n, pinned: true, pinTarget: 'standalone', type: 'incr', needs: ['F1'] },
    full(10),
    full(20),
  ];
  const d = decideRetention(list, { full: 2 }, NOW);
  assert.deepEqual(ids(d.keep), ['F1', 'F10', 'F20', 'I2']);
  assert.match(d.keep.find((k) => k.id === 'F1')!.why, /backup I2 takes files from it/);
  assert.equal(d.walKeepFromSegNo, 1000n);
  // F1 keeps its own range too: still a backup that can be restored (pinned later, say).
  assert.deepEqual(d.walKeepRanges, [
    { id: 'F1', fromSegNo: 100n, toSegNo: 102n },
    { id: 'I2', fromSegNo: 200n, toSegNo: 201n },
  ]);
  // A full kept with its WAL by what takes files from it keeps it as before.
  const chain = decideRetention([full(1), { id: 'D2', state: 'complete', stopTimeMs: at(2), startSegNo: 200n, pinned: false, type: 'diff', needs: ['F1'] }], { full: 1 }, NOW);
  assert.equal(chain.walKeepFromSegNo, 100n);
});

test('a standalone pin without a known stop, or with a damaged record beside it, removes nothing it may need', () => {
  const unknownStop = decideRetention([full(1, { pinned: true, pinTarget: 'standalone', stopSegNo: undefined }), full(10), full(20)], { full: 1 }, NOW);
  assert.equal(unknownStop.walKeepFromSegNo, 100n);
  const damaged = decideRetention([full(1, { pinned: true, pinTarget: 'standalone' }), { ...full(5), state: 'failed', damaged: true }, full(20)], { full: 1 }, NOW);
  assert.equal(damaged.walKeepFromSegNo, null);
});

test('expire --set, which knows no policy and no branch, leaves standalone backups the WAL after them', () => {
  // A window, or the newest timeline's history, may need the WAL after F1: --set cannot tell.
  const list = [full(1, { pinned: true, pinTarget: 'standalone' }), full(5), full(10), full(20)];
  const d = decideSetExpiry(list, 'F5', 'main');
  assert.equal(d.walKeepFromSegNo, 100n);
  assert.deepEqual(d.walKeepRanges, []);
});

test('the holes between standalone ranges, and whether a gap lies in one', () => {
  assert.deepEqual(holesBetween([{ fromSegNo: 100n, toSegNo: 102n }, { fromSegNo: 500n, toSegNo: 502n }], 1000n), [
    { first: 103n, last: 499n },
    { first: 503n, last: 999n },
  ]);
  assert.deepEqual(holesBetween([{ fromSegNo: 100n, toSegNo: 102n }], 103n), []); // adjacent: no hole
  assert.deepEqual(holesBetween([], 1000n), []);
  const holes = [{ first: 3n, last: 0x0fn, timeline: 2, at: '' }];
  const seg = (n: number, tli = 1) => `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
  const SEG = 16 * 1024 * 1024;
  assert.equal(insideExpiredHole(holes, { from: seg(3), to: seg(15) }, SEG), true);
  assert.equal(insideExpiredHole(holes, { from: seg(4, 2), to: seg(10, 2) }, SEG), true); // the timelines archived when it was made
  assert.equal(insideExpiredHole(holes, { from: seg(4, 3), to: seg(10, 3) }, SEG), false); // a timeline begun since: its own gap
  assert.equal(insideExpiredHole(holes, { from: seg(2), to: seg(10) }, SEG), false);
  assert.equal(insideExpiredHole(holes, { from: seg(10), to: seg(16) }, SEG), false);
});

test('check does not fail on what expire left out, and still fails on a gap beside it', () => {
  const SEG = 16 * 1024 * 1024;
  const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, '0')}`;
  const file = (n: number): ArchivedFile => ({ name: seg(n), sha256: '0'.repeat(64), extension: '.zst', mtimeMs: 0, size: 1 });
  // Kept: 1-3 (a standalone backup's range), then 20-30; 24 lost by archiving.
  const files = [1, 2, 3, ...Array.from({ length: 11 }, (_, i) => 20 + i).filter((n) => n !== 24)].map(file);
  const holes = [{ first: 4n, last: 19n, timeline: 1, at: '' }];
  const f = continuityFinding(files, [], SEG, [], seg(30), holes);
  assert.equal(f.ok, false);
  assert.match(f.message, new RegExp(`WAL missing from the archive: ${seg(24)} to ${seg(24)}; 1 range\\(s\\) left out by expire`));
  const mended = continuityFinding(files.concat(file(24)), [], SEG, [], seg(30), holes);
  assert.equal(mended.ok, true);
  assert.match(mended.message, /1 range\(s\) left out by expire between standalone backups/);
  // Without the record, the hole is a gap as before.
  assert.equal(continuityFinding(files.concat(file(24)), [], SEG, [], seg(30)).ok, false);
});

test('each expire rewrites the holes: what it keeps again is forgotten, a damaged record is replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-holes-'));
  try {
    mkdirSync(join(dir, 'main'), { recursive: true });
    const repo = repositoryOn(new PosixStorage(dir), dir);
    const brief = async () => (await readExpiredHoles(repo, 'main')).map((h) => [h.first, h.last, h.timeline]);
    // F1 standalone (100-102), F5 standalone (500-502), the rest kept from 1000.
    await recordExpiredHoles(repo, 'main', holesBetween([{ fromSegNo: 100n, toSegNo: 102n }, { fromSegNo: 500n, toSegNo: 502n }], 1000n), [], 1000n, 100n, 1);
    assert.deepEqual(await brief(), [[103n, 499n, 1], [503n, 999n, 1]]);
    // F5 pinned full since, timeline 2 archived meanwhile: kept from 500 on; the hole above it is
    // forgotten, the one below is this run's now, on timelines up to 2.
    await recordExpiredHoles(repo, 'main', holesBetween([{ fromSegNo: 100n, toSegNo: 102n }], 500n), [{ fromSegNo: 100n, toSegNo: 102n }], 500n, 100n, 2);
    assert.deepEqual(await brief(), [[103n, 499n, 2]]);
    // A range kept inside an old hole (a backup kept for its own WAL) cuts it.
    await recordExpiredHoles(repo, 'main', [], [{ fromSegNo: 100n, toSegNo: 102n }, { fromSegNo: 300n, toSegNo: 301n }], 500n, 100n, 3);
    assert.deepEqual(await brief(), [[103n, 299n, 2], [302n, 499n, 2]]);
    // A run on timeline 3 leaving out 302-399 again: there its bound is 3, beside the older hole's 2.
    await recordExpiredHoles(repo, 'main', [{ first: 302n, last: 399n }], [{ fromSegNo: 100n, toSegNo: 102n }, { fromSegNo: 300n, toSegNo: 301n }], 500n, 100n, 3);
    assert.deepEqual(await brief(), [[103n, 299n, 2], [302n, 399n, 3], [400n, 499n, 2]]);
    const SEG = 16 * 1024 * 1024;
    const name = (tli: number, n: number) => `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
    const holes = await readExpiredHoles(repo, 'main');
    assert.equal(insideExpiredHole(holes, { from: name(2, 0x150), to: name(2, 0x1f0) }, SEG), true); // across two holes, both up to 2
    assert.equal(insideExpiredHole(holes, { from: name(3, 0x140), to: name(3, 0x150) }, SEG), true);
    assert.equal(insideExpiredHole(holes, { from: name(3, 0x150), to: name(3, 0x1f0) }, SEG), false); // 400-499 only up to 2
    assert.equal(insideExpiredHole(holes, { from: name(2, 0x12c), to: name(2, 0x12d) }, SEG), false); // 300-301 kept
    // A hole without its timeline (a record of the first version of this file) is damaged.
    writeFileSync(join(dir, 'main', 'archive-expired.json'), JSON.stringify({ format: 'pgpitr-expired-wal', holes: [{ first: '1', last: '2', at: '' }] }));
    await assert.rejects(readExpiredHoles(repo, 'main'), /a hole without its timeline/);
    // Nothing standalone any more: everything below the first segment kept goes (the damaged record too).
    await recordExpiredHoles(repo, 'main', [], [], 500n, 500n, 2);
    assert.deepEqual(await brief(), []);
    // A damaged record is replaced; read, it is an error (check and info then report gaps).
    writeFileSync(join(dir, 'main', 'archive-expired.json'), '{not json');
    await assert.rejects(readExpiredHoles(repo, 'main'), /record of expired WAL .* is damaged/);
    await recordExpiredHoles(repo, 'main', [{ first: 600n, last: 700n }], [], 800n, 500n, 1);
    assert.deepEqual(await brief(), [[600n, 700n, 1]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
