// restore --delta over a cluster whose pg_wal holds WAL the archive lacks (restore/unarchived-wal.ts):
// segments of this system after the backup's start, not recycled ones; refused for a recovery to the
// end of the archive when they are the followed branch's or marked for archiving (.ready: a promoted
// standby whose archive_command failed), said otherwise.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judgeUnarchivedWal, unarchivedWalIn } from '../../src/restore/unarchived-wal.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';
import { SEG as WSEG, WalBuilder, filler, walSwitch } from '../helpers/wal-builder.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123458';
const name = (tli: number, segNo: number) => segmentFileName(tli, BigInt(segNo), SEG);

test('unarchivedWalIn / judgeUnarchivedWal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-unarch-'));
  try {
    mkdirSync(join(dir, 'archive_status'));
    for (const [tli, segNo] of [[1, 3], [1, 5], [1, 6], [2, 6]] as const) writeFileSync(join(dir, name(tli, segNo)), walSegment({ segNo, segmentSize: SEG, systemId: SYSID, timeline: tli }));
    // A recycled file: an older segment's header under a future name.
    writeFileSync(join(dir, name(1, 9)), walSegment({ segNo: 2, segmentSize: SEG, systemId: SYSID }));
    // Another system's.
    writeFileSync(join(dir, name(1, 7)), walSegment({ segNo: 7, segmentSize: SEG, systemId: '1' }));
    writeFileSync(join(dir, 'archive_status', `${name(2, 6)}.ready`), '');
    const found = unarchivedWalIn(dir, { segmentSize: SEG, systemIdentifier: SYSID, from: 4n * BigInt(SEG), archived: new Set([name(1, 5)]), inBackup: new Set(), backupStop: 0n });
    assert.deepEqual(found?.names, [name(1, 6), name(2, 6)], 'before the backup, archived, recycled and foreign ones left out');
    assert.deepEqual([...found!.ready], [name(2, 6)]);
    const lines: string[] = [];
    const o = (kind: 'end' | 'immediate', standby = false) => ({ target: kind === 'end' ? { kind } as const : { kind } as const, standby, stanza: 'main', archiveEnd: name(1, 5), log: (l: string) => void lines.push(l) });
    // The branch follows timeline 1: its segment 6 refuses; so does timeline 2's, marked .ready.
    assert.throws(() => judgeUnarchivedWal([found!], (n) => n.startsWith('00000001'), o('end')), new RegExp(`holds WAL the archive does not: ${name(1, 6)} to ${name(2, 6)} \\(2 segments\\)`));
    // Timeline 2's alone, unmarked (a copy promoted with archiving off): said, not refused.
    const copy = { ...found!, names: [name(2, 6)], ready: new Set<string>() };
    judgeUnarchivedWal([copy], (n) => n.startsWith('00000001'), o('end'));
    assert.match(lines.join('\n'), /warning: WAL the archive does not hold goes with the old cluster/);
    // With a target, or for a standby: said.
    judgeUnarchivedWal([found!], () => true, o('immediate'));
    judgeUnarchivedWal([found!], () => true, o('end', true));
    assert.equal(lines.length, 3);
    // What the warning advises: archive-push only for a primary's WAL on the followed branch.
    lines.length = 0;
    judgeUnarchivedWal([{ ...found!, ready: new Set<string>() }], (n) => n.startsWith('00000001'), o('immediate'));
    assert.match(lines[0]!, new RegExp(`no later restore could read ${name(1, 6)} .*archive it first with pgpitr archive-push`));
    assert.match(lines[0]!, new RegExp(`${name(2, 6)} in .* is WAL of a timeline this restore does not follow .*never archive it into this stanza`));
    judgeUnarchivedWal([copy], (n) => n.startsWith('00000001'), o('immediate'));
    assert.doesNotMatch(lines[1]!, /archive-push/);
    judgeUnarchivedWal([found!], () => true, { ...o('immediate', true), oldStandby: true });
    assert.match(lines[2]!, /the old cluster was in recovery \(a standby\): that WAL came from its primary.*do not archive-push it from here.*if the primary is lost.*archive those first/);
    assert.match(lines[2]!, new RegExp(`${name(2, 6)} in .* it marked for archiving itself: archive it first`));
    // A promotion whose archiving failed: its history file marked .ready, its segment being written
    // never is, and is the only copy of what was committed since: refused too.
    writeFileSync(join(dir, name(3, 6)), walSegment({ segNo: 6, segmentSize: SEG, systemId: SYSID, timeline: 3 }));
    writeFileSync(join(dir, 'archive_status', '00000003.history.ready'), '');
    const promoted = unarchivedWalIn(dir, { segmentSize: SEG, systemIdentifier: SYSID, from: 4n * BigInt(SEG), archived: new Set([name(1, 5), name(1, 6), name(2, 6)]), inBackup: new Set(), backupStop: 0n });
    assert.deepEqual([...promoted!.ready], [name(3, 6)]);
    assert.throws(() => judgeUnarchivedWal([promoted!], (n) => n.startsWith('00000001'), o('end')), new RegExp(`holds WAL the archive does not: ${name(3, 6)}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unarchivedWalIn: a segment the backup holds is the old cluster\'s only copy when written past the backup\'s stop', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-unarch-stop-'));
  try {
    const start = 5n * BigInt(WSEG);
    const seg = segmentFileName(1, 5n, WSEG);
    const judge = (b: WalBuilder, stop: bigint) => {
      writeFileSync(join(dir, seg), b.segment(0));
      return unarchivedWalIn(dir, { segmentSize: WSEG, systemIdentifier: '7', from: start, archived: new Set(), inBackup: new Set([`pg_wal/${seg}`]), backupStop: stop })?.names ?? [];
    };
    const upToStop = () => {
      const b = new WalBuilder(start, 1);
      b.add(filler(100));
      b.add(filler(300));
      return { b, stop: b.next() };
    };
    const same = upToStop();
    assert.deepEqual(judge(same.b, same.stop), [], 'nothing past the stop: the backup\'s copy holds it all');
    const switched = upToStop();
    switched.b.add(walSwitch());
    assert.deepEqual(judge(switched.b, switched.stop), [], 'a primary\'s backup stop: only its WAL switch follows');
    const more = upToStop();
    more.b.add(filler(50));
    assert.deepEqual(judge(more.b, more.stop), [seg], 'a standby\'s backup: its primary went on writing into the stop segment');
    const thenSwitch = upToStop();
    thenSwitch.b.add(filler(50));
    thenSwitch.b.add(walSwitch());
    assert.deepEqual(judge(thenSwitch.b, thenSwitch.stop), [seg], 'a transaction before the switch');
    assert.deepEqual(judge(more.b, start + BigInt(WSEG)), [], 'a segment before the stop\'s: the backup holds it whole');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
