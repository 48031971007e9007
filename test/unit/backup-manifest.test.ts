// The backup_manifest builder: the server's exact bytes for each line (JSON
// escaping, Encoded-Path, GMT times, no checksum keys for NONE), version 2's
// system identifier, the trailing SHA-256 over what pg_verifybackup hashes,
// and the WAL ranges of a backup that crossed timeline switches.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import {
  BackupManifestBuilder, escapeJsonString, formatLastModified, manifestVersionFor, manifestWalRanges,
} from '../../src/postgres/backup-manifest.js';
import { parseLsn } from '../../src/postgres/lsn.js';
import { parseTimelineHistory } from '../../src/postgres/timeline-history.js';

test('JSON escaping follows escape_json: short escapes, lower-case \\u00xx, UTF-8 and DEL raw', () => {
  assert.equal(escapeJsonString('base/1/1259'), '"base/1/1259"');
  assert.equal(escapeJsonString('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(escapeJsonString('\b\f\n\r\t'), '"\\b\\f\\n\\r\\t"');
  assert.equal(escapeJsonString('\x01\x1f\x1b'), '"\\u0001\\u001f\\u001b"');
  assert.equal(escapeJsonString('é/日本\x7f/'), '"é/日本\x7f/"');
});

test('Last-Modified is GMT with zero-padded fields', () => {
  assert.equal(formatLastModified(0), '1970-01-01 00:00:00 GMT');
  assert.equal(formatLastModified(1700000000.9), '2023-11-14 22:13:20 GMT');
  assert.equal(formatLastModified(951782400), '2000-02-29 00:00:00 GMT');
});

test('manifest version: 1 up to 16, 2 from 17', () => {
  assert.equal(manifestVersionFor(130023), 1);
  assert.equal(manifestVersionFor(160009), 1);
  assert.equal(manifestVersionFor(170005), 2);
  assert.equal(manifestVersionFor(180004), 2);
  for (const bad of [NaN, 15, 120000]) assert.throws(() => manifestVersionFor(bad), { code: 'ERR_INTERNAL' });
});

function checksumLineIsValid(buf: Buffer): boolean {
  // pg_verifybackup: SHA-256 of everything up to and including the second-to-last newline.
  const last = buf.lastIndexOf(0x0a);
  assert.equal(last, buf.length - 1);
  const penultimate = buf.lastIndexOf(0x0a, last - 1);
  const digest = createHash('sha256').update(buf.subarray(0, penultimate + 1)).digest('hex');
  return buf.subarray(penultimate + 1).toString() === `"Manifest-Checksum": "${digest}"}\n`;
}

test('a version 1 manifest, byte for byte', () => {
  const b = new BackupManifestBuilder({ serverVersion: 150004 });
  b.addFile({ path: 'backup_label', size: 227, mtime: 1700000000, checksumAlgorithm: 'CRC32C', checksumHex: '0a1b2c3d' });
  b.addFile({ path: 'pg_tblspc/16384/PG_15_202209061/5/16385', size: 8192, mtime: 1700000001, checksumAlgorithm: 'NONE' });
  b.addWalRange(1, parseLsn('0/2000028'), parseLsn('0/2000100'));
  const out = b.finish();
  const text = out.toString();
  const body =
    '{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n' +
    '{ "Path": "backup_label", "Size": 227, "Last-Modified": "2023-11-14 22:13:20 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "0a1b2c3d" },\n' +
    '{ "Path": "pg_tblspc/16384/PG_15_202209061/5/16385", "Size": 8192, "Last-Modified": "2023-11-14 22:13:21 GMT" }\n' +
    '],\n"WAL-Ranges": [\n' +
    '{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n' +
    '],\n';
  assert.equal(text, `${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`);
  assert.ok(checksumLineIsValid(out));
  JSON.parse(text);
});

test('version 2 puts the system identifier on the second line; 64-bit values survive', () => {
  const b = new BackupManifestBuilder({ serverVersion: 170000, systemIdentifier: 18446744073709551615n });
  b.addWalRange(1, 0x100000028n, 0x1_00001000n);
  const out = b.finish();
  assert.ok(out.toString().startsWith('{ "PostgreSQL-Backup-Manifest-Version": 2,\n"System-Identifier": 18446744073709551615,\n"Files": [\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "1/28", "End-LSN": "1/1000" }\n],\n"Manifest-Checksum": "'));
  assert.ok(checksumLineIsValid(out));
  assert.throws(() => new BackupManifestBuilder({ serverVersion: 170000 }), { code: 'ERR_INTERNAL' });
  assert.equal(new BackupManifestBuilder({ serverVersion: 180000, systemIdentifier: '7300000000000000001' }).version, 2);
});

test('paths that are not valid UTF-8 are written as Encoded-Path; non-ASCII UTF-8 stays a Path', () => {
  const b = new BackupManifestBuilder({ serverVersion: 160000 });
  b.addFile({ path: Buffer.from([0x62, 0x61, 0xff, 0x2f, 0x78]), size: 0, mtime: 0, checksumAlgorithm: 'NONE' });
  b.addFile({ path: Buffer.from([0xc0, 0xaf]), size: 0, mtime: 0, checksumAlgorithm: 'NONE' }); // overlong '/'
  b.addFile({ path: Buffer.from([0xed, 0xa0, 0x80]), size: 0, mtime: 0, checksumAlgorithm: 'NONE' }); // surrogate
  b.addFile({ path: Buffer.from('dé\u65e5', 'utf8'), size: 1, mtime: 0, checksumAlgorithm: 'NONE' });
  b.addFile({ path: 'lone\ud800', size: 0, mtime: 0, checksumAlgorithm: 'NONE' });
  b.addWalRange(1, 0n, 1n);
  const lines = b.finish().toString().split('\n');
  assert.equal(lines[2], '{ "Encoded-Path": "6261ff2f78", "Size": 0, "Last-Modified": "1970-01-01 00:00:00 GMT" },');
  assert.equal(lines[3], '{ "Encoded-Path": "c0af", "Size": 0, "Last-Modified": "1970-01-01 00:00:00 GMT" },');
  assert.equal(lines[4], '{ "Encoded-Path": "eda080", "Size": 0, "Last-Modified": "1970-01-01 00:00:00 GMT" },');
  assert.equal(lines[5], '{ "Path": "dé日", "Size": 1, "Last-Modified": "1970-01-01 00:00:00 GMT" },');
  assert.match(lines[6]!, /^\{ "Encoded-Path": "6c6f6e65/);
});

test('forceEncode writes every path as Encoded-Path', () => {
  const b = new BackupManifestBuilder({ serverVersion: 150000, forceEncode: true });
  b.addFile({ path: 'PG_VERSION', size: 3, mtime: 0, checksumAlgorithm: 'SHA224', checksumHex: 'ab'.repeat(28) });
  b.addWalRange(1, 0n, 1n);
  assert.match(b.finish().toString(), /\n\{ "Encoded-Path": "50475f56455253494f4e", "Size": 3, .*"Checksum-Algorithm": "SHA224", "Checksum": "(ab){28}" \}\n/);
});

test('misuse is refused: wrong checksum length, files after WAL ranges, no WAL range, finishing twice', () => {
  const b = new BackupManifestBuilder({ serverVersion: 150000 });
  assert.throws(() => b.addFile({ path: 'x', size: 1, mtime: 0, checksumAlgorithm: 'CRC32C', checksumHex: 'abc' }), { code: 'ERR_INTERNAL' });
  assert.throws(() => b.addFile({ path: 'x', size: -1, mtime: 0, checksumAlgorithm: 'NONE' }), { code: 'ERR_INTERNAL' });
  assert.throws(() => b.finish(), { code: 'ERR_INTERNAL' });
  b.addWalRange(1, 0n, 1n);
  assert.throws(() => b.addFile({ path: 'x', size: 1, mtime: 0, checksumAlgorithm: 'NONE' }), { code: 'ERR_INTERNAL' });
  b.finish();
  assert.throws(() => b.finish(), { code: 'ERR_INTERNAL' });
});

test('WAL ranges: one timeline, and a backup that crossed two switches on a standby', () => {
  assert.deepEqual(manifestWalRanges([], 1, 0x2000028n, 1, 0x2000100n), [{ timeline: 1, start: 0x2000028n, end: 0x2000100n }]);
  const history = parseTimelineHistory('1\t0/3000000\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n');
  // Started on 1 at 0/2800000, ended on 3 at 0/6000000: newest first, each from where it began.
  assert.deepEqual(manifestWalRanges(history, 1, 0x2800000n, 3, 0x6000000n), [
    { timeline: 3, start: 0x5000000n, end: 0x6000000n },
    { timeline: 2, start: 0x3000000n, end: 0x5000000n },
    { timeline: 1, start: 0x2800000n, end: 0x3000000n },
  ]);
  // Started on 2: timeline 1 ended before the start and is skipped.
  assert.deepEqual(manifestWalRanges(history, 2, 0x4000000n, 3, 0x6000000n), [
    { timeline: 3, start: 0x5000000n, end: 0x6000000n },
    { timeline: 2, start: 0x4000000n, end: 0x5000000n },
  ]);
  // Start timeline not in the end timeline's history.
  assert.throws(() => manifestWalRanges(history, 7, 0x5800000n, 3, 0x6000000n), { code: 'ERR_PROTOCOL' });
  // A start on 1 at a position timeline 1 never reached: every older entry is skipped and the walk runs out.
  assert.throws(() => manifestWalRanges(history, 1, 0x5800000n, 3, 0x6000000n), { code: 'ERR_PROTOCOL' });
});
