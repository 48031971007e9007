// A -j backup names its WAL's timeline from the server after the start; the backup_label says the
// timeline it starts on. A standby that switched timelines since its last restartpoint starts on
// the old one: refused, not recorded with the wrong timeline.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { checkStartTimeline } from '../../src/backup/parallel/parallel-backup.js';

const label = (tli: number) => `START WAL LOCATION: 0/5000028 (file 0000000${tli}0000000000000005)\nCHECKPOINT LOCATION: 0/5000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\nSTART TIME: 2026-12-04 12:00:00 UTC\nLABEL: x\nSTART TIMELINE: ${tli}\n`;

test('the label\'s start timeline must be the one the WAL is taken from', () => {
  checkStartTimeline(label(2), 2);
  assert.throws(() => checkStartTimeline(label(1), 2), (e: { code: string; message: string }) => e.code === 'ERR_TARGET' && /started on timeline 1 \(its backup_label\) while the server was on timeline 2/.test(e.message));
  // A label without the line (not one PostgreSQL 13-18 writes) is not judged.
  checkStartTimeline('LABEL: x\n', 3);
});
