// The WAL record scanner finds restore points wherever records fall: inside a
// page, across pages (the header itself split), across segments, after long
// records; and believes nothing after an XLOG_SWITCH, past the end of the WAL,
// on a recycled page, or in a record whose CRC is wrong. The WAL here is built
// byte for byte as PostgreSQL lays it out (page headers, rem_len, alignment);
// the integration tests read real servers' WAL (pitr matrix, restore-point).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { WalRecordScanner } from '../../src/postgres/wal-records.js';
import type { RestorePointRecord } from '../../src/postgres/wal-records.js';
import { crc32cJs } from '../../src/storage/filter/crc32c.js';
import { BLCK, SEG, WalBuilder, filler, restorePoint, transactionEnd, walSwitch } from '../helpers/wal-builder.js';
import type { TransactionEndRecord } from '../../src/postgres/wal-records.js';

function scan(w: WalBuilder, from = 0, segments = w.bytes.length / SEG): { found: RestorePointRecord[]; results: string[] } {
  const found: RestorePointRecord[] = [];
  const s = new WalRecordScanner({ crc32c: crc32cJs, onRestorePoint: (p) => found.push(p) });
  const results: string[] = [];
  for (let i = from; i < segments; i++) {
    const r = s.segment(w.start + BigInt(i * SEG), w.segment(i));
    results.push(r);
    if (r === 'end') break;
  }
  return { found, results };
}

const START = 0x3000000n;

test('restore points inside a page, across pages (header split) and after a record longer than a page are found with their position and time', () => {
  const w = new WalBuilder(START, 2);
  w.add(filler(100));
  const a = w.add(restorePoint('first', Date.UTC(2026, 11, 4, 11, 45)));
  w.add(filler(20_000));
  w.padTo(w.beforePageEnd(8));
  const b = w.add(restorePoint('split header', Date.UTC(2026, 11, 4, 11, 46)));
  assert.equal(Number(b) % BLCK, BLCK - 8, 'only 8 bytes of the record on its first page');
  const afterB = w.next();
  w.add(filler(300));
  const { found, results } = scan(w);
  assert.deepEqual(found.map((p) => [p.name, p.lsn, p.timeMs]), [
    ['first', a, Date.UTC(2026, 11, 4, 11, 45)],
    ['split header', b, Date.UTC(2026, 11, 4, 11, 46)],
  ]);
  assert.equal(found[1]!.end, afterB, 'its end counts the page header crossed, MAXALIGNed (recovery\'s EndRecPtr)');
  assert.deepEqual(results, ['end'], 'the WAL ends where no page was written (in the first segment)');
});

test('a restore point crossing into the next segment is found when the scan began before it, and the scan beginning in the next segment skips its rest', () => {
  const w = new WalBuilder(START, 2);
  w.padTo(START + BigInt(SEG - 40));
  const cross = w.add(restorePoint('crossing', Date.UTC(2026, 0, 1)));
  assert.ok(cross < START + BigInt(SEG) && cross + 98n > START + BigInt(SEG), 'the record crosses the segment boundary');
  // Not a whole record between the page header and the first record: the rest of one (rem_len).
  const after = w.add(restorePoint('after', Date.UTC(2026, 0, 2)));
  w.closePages();
  assert.deepEqual(scan(w).found.map((p) => [p.name, p.lsn]), [['crossing', cross], ['after', after]]);
  assert.deepEqual(scan(w, 1).found.map((p) => p.name), ['after']);
});

test('after an XLOG_SWITCH the rest of its segment is passed over; the next segment follows the switch', () => {
  const w = new WalBuilder(START, 2);
  w.add(filler(10));
  const sw = w.add(walSwitch());
  // What a switched segment's rest may hold: not records of this WAL.
  w.add(restorePoint('after switch', 0));
  w.pos = SEG;
  const second = w.add(restorePoint('next segment', 0), sw);
  w.add(filler(10));
  w.closePages();
  assert.deepEqual(scan(w).found.map((p) => [p.name, p.lsn]), [['next segment', second]]);
});

test('the WAL ends, as for recovery, at a wrong CRC, a record not following the one before, a recycled page, zeros, a missing rest', () => {
  const ends = (w: WalBuilder, what: string) => {
    w.closePages();
    const r = scan(w);
    assert.deepEqual(r.found.map((p) => p.name), [], what);
    assert.equal(r.results.at(-1), 'end', what);
  };
  const crc = new WalBuilder(START, 2);
  crc.add(restorePoint('bad crc', 0, true));
  crc.add(restorePoint('after it', 0));
  ends(crc, 'a restore point failing its CRC');

  const prev = new WalBuilder(START, 2);
  prev.add(filler(10));
  prev.add(restorePoint('not after the one before', 0), 0x12345n);
  ends(prev, 'xl_prev not the record before');

  const old = new WalBuilder(START - BigInt(4 * SEG), 1);
  old.add(restorePoint('old', 0));
  old.closePages();
  const s = new WalRecordScanner({ crc32c: crc32cJs, onRestorePoint: () => assert.fail('a recycled page is not read') });
  assert.equal(s.segment(START, old.segment(0)), 'end');

  const zeros = new WalBuilder(START, 1);
  zeros.add(filler(10));
  zeros.closePages();
  assert.equal(scan(zeros).results[0], 'end', 'zeros after the last record');

  // A record broken off at a page end: without the overwrite flag its rest is missing, the WAL ends;
  // with it, the next page's records follow the last whole record.
  for (const flagged of [false, true]) {
    const w = new WalBuilder(START, 2);
    w.padTo(w.beforePageEnd(200));
    const whole = w.add(filler(10));
    w.add(filler(3000));
    w.breakOff(whole, flagged);
    const after = w.add(restorePoint('after the overwrite', 0));
    w.closePages();
    const r = scan(w);
    assert.deepEqual(r.found.map((p) => [p.name, p.lsn]), flagged ? [['after the overwrite', after]] : [], `flagged ${flagged}`);
  }
});

test('transaction ends: a prepared transaction\'s ID and the subtransactions read from the data, past each part xinfo announces, with PostgreSQL 18\'s larger dropped-stats entries', () => {
  for (const [magic, size] of [[0xd110, 12], [0xd116, 12], [0xd118, 16]] as const) {
    const w = new WalBuilder(START, 1);
    w.magic = magic;
    const ms = Date.UTC(2026, 11, 7);
    w.add(filler(100));
    w.add(transactionEnd(ms, { prepared: true, parts: { dbinfo: true, subxacts: [901, 902], rels: 2, stats: { count: 3, size }, invals: 4, twophaseXid: 900 } }));
    w.add(transactionEnd(ms, { prepared: true, abort: true, parts: { dbinfo: true, rels: 1, stats: { count: 1, size }, twophaseXid: 910 } }));
    w.add(transactionEnd(ms, { xid: 920, parts: { subxacts: [921] } }));
    w.add(transactionEnd(ms, { xid: 930 }));
    w.add(filler(100));
    const ends: TransactionEndRecord[] = [];
    new WalRecordScanner({ crc32c: crc32cJs, onRestorePoint: () => undefined, onTransactionEnd: (t) => ends.push(t) }).segment(w.start, w.segment(0));
    assert.deepEqual(ends.map((e) => [e.xid, e.subxacts, e.commit]), [[900, [901, 902], true], [910, [], false], [920, [921], true], [930, [], true]], `page magic ${magic.toString(16)}`);
  }
});
