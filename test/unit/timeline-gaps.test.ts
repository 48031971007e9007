// Gaps where timelines meet (a primary lost with WAL not archived, its standby promoted), and
// check's continuity verdict on them and on segments still arriving.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { planArchiveOf } from '../../src/restore/plan-inputs.js';
import { gapsBetweenTimelines } from '../../src/restore/timeline-gaps.js';
import { continuityFinding } from '../../src/commands/check-continuity.js';
import type { ArchivedFile } from '../../src/repo/archive-store.js';

const SEG = 16 * 1024 * 1024;
const seg = (t: number, n: number) => `${t.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const range = (t: number, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => seg(t, from + i));

async function archiveOf(names: string[], histories: Record<string, string>) {
  const all = [...names, ...Object.keys(histories)];
  return { all, archive: await planArchiveOf({ names: () => all, readHistory: async (n) => (histories[n] === undefined ? null : Buffer.from(histories[n]!)) }, SEG) };
}
const files = (names: string[]): ArchivedFile[] => names.map((name) => ({ name, size: 1, mtimeMs: 0 }) as unknown as ArchivedFile);

test('segments missing where timeline 2 begins (the primary lost 0B and 0C, its standby promoted in 0D) are a gap along timeline 2', async () => {
  const names = [...range(1, 1, 0x0a), `${seg(1, 0x0d)}.partial`, ...range(2, 0x0d, 0x10)];
  const { all, archive } = await archiveOf(names, { '00000002.history': '1\t0/D000100\tno recovery target specified\n' });
  assert.deepEqual(gapsBetweenTimelines(archive, all), [{ timeline: 2, from: seg(1, 0x0b), to: seg(1, 0x0c), missing: 2, resumes: seg(2, 0x0d) }]);
  const f = continuityFinding(files(all), [], SEG, gapsBetweenTimelines(archive, all), seg(2, 0x10));
  assert.equal(f.ok, false);
  assert.match(f.message, new RegExp(`${seg(1, 0x0b)} to ${seg(1, 0x0c)} \\(along timeline 2's history\\)`));
});

test('an unbroken switch is no gap: timeline 1 to its switch segment, timeline 2 from it; timeline 1 past the fork is its own', async () => {
  const names = [...range(1, 1, 0x0c), `${seg(1, 0x0d)}.partial`, ...range(1, 0x0e, 0x0f), ...range(2, 0x0d, 0x10)];
  const { all, archive } = await archiveOf(names, { '00000002.history': '1\t0/D000100\tx\n' });
  assert.deepEqual(gapsBetweenTimelines(archive, all), []);
  // Three timelines, the middle one with nothing archived: the gap spans it.
  const three = [...range(1, 1, 5), ...range(3, 0x0a, 0x0b)];
  const t3 = await archiveOf(three, { '00000002.history': '1\t0/8000000\tx\n', '00000003.history': '1\t0/8000000\tx\n2\t0/A000000\ty\n' });
  assert.deepEqual(gapsBetweenTimelines(t3.archive, t3.all), [{ timeline: 3, from: seg(1, 6), to: seg(2, 9), missing: 4, resumes: seg(3, 0x0a) }]);
});

test('check: a gap after the segment the server last archived is still arriving (asynchronous pushes store out of order), one before it is missing', () => {
  const names = [...range(1, 1, 5), seg(1, 7)];
  assert.equal(continuityFinding(files(names), [], SEG, [], seg(1, 5)).ok, true);
  assert.match(continuityFinding(files(names), [], SEG, [], seg(1, 5)).message, /up to 000000010000000000000005 \(what is missing after it, the server has not archived yet\)/);
  // A gap reaching past the server's last archived segment (that one not in this repository): judged up to it.
  const straddling = continuityFinding(files([...range(1, 1, 5), seg(1, 9)]), [], SEG, [], seg(1, 7));
  assert.equal(straddling.ok, false);
  assert.match(straddling.message, /000000010000000000000006 to 000000010000000000000007/);
  const late = continuityFinding(files(names), [], SEG, [], seg(1, 7));
  assert.equal(late.ok, false);
  assert.match(late.message, /WAL missing from the archive: 000000010000000000000006 to 000000010000000000000006/);
  assert.match(late.hint ?? '', /take a new full backup now/);
  // A backup taken after the gap restores to now: the gap costs older points only, a warning.
  const after = continuityFinding(files(names), [], SEG, [], seg(1, 7), [], 'B7');
  assert.equal(after.ok, true);
  assert.match(after.message, /^warning: WAL missing from the archive: 000000010000000000000006 to 000000010000000000000006: the points in it cannot be recovered; backup B7, taken after it, restores to now/);
  assert.doesNotMatch(after.hint ?? '', /take a new full backup now/);
});
