// The sans-IO backend parser, byte-exact: messages built by hand are parsed
// whole, one byte at a time, and split at every possible point, including in
// the 5-byte header and inside large CopyData payloads.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { BackendParser } from '../../src/protocol/backend-parser.js';
import type { BackendMessage } from '../../src/protocol/backend-parser.js';
import { decodeBaseBackupPayload, decodeReplicationPayload } from '../../src/protocol/copy-payloads.js';
import { encodeQuery, encodeStandbyStatus, encodeCopyDone } from '../../src/protocol/frontend-messages.js';

function msg(code: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = code.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstr = (s: string) => Buffer.from(s + '\0');
function int16(n: number) {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
function int32(n: number) {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
function int64(n: bigint) {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
}

const rowDescription = msg('T', Buffer.concat([int16(2), cstr('recptr'), Buffer.alloc(18), cstr('tli'), Buffer.alloc(18)]));
const dataRow = msg('D', Buffer.concat([int16(2), int32(9), Buffer.from('0/2000028'), int32(-1)]));
const commandComplete = msg('C', cstr('SELECT 1'));
const copyOut = msg('H', Buffer.concat([Buffer.from([0]), int16(0)]));
const big = Buffer.alloc(70000, 7);
const copyData = msg('d', Buffer.concat([Buffer.from('d'), big]));
const newArchive = msg('d', Buffer.concat([Buffer.from('n'), cstr('base.tar'), cstr('')]));
const progress = msg('d', Buffer.concat([Buffer.from('p'), int64(123456789n)]));
const error = msg('E', Buffer.concat([cstr('SERROR'), cstr('VERROR'), cstr('C42704'), cstr('Mreplication slot "x" does not exist'), cstr('Hcreate it'), Buffer.from([0])]));
const ready = msg('Z', Buffer.from('I'));
const stream = Buffer.concat([rowDescription, dataRow, commandComplete, copyOut, newArchive, copyData, progress, error, ready]);

function parseAll(chunks: Buffer[]): BackendMessage[] {
  const p = new BackendParser();
  const out: BackendMessage[] = [];
  for (const c of chunks) {
    p.feed(c);
    for (let m = p.next(); m; m = p.next()) out.push(m.type === 'CopyData' ? { type: 'CopyData', data: Buffer.from(m.data) } : m);
  }
  assert.ok(p.drained);
  return out;
}

const expected = parseAll([stream]);

test('parses every message type byte-exact', () => {
  assert.deepEqual(
    expected.map((m) => m.type),
    ['RowDescription', 'DataRow', 'CommandComplete', 'CopyOutResponse', 'CopyData', 'CopyData', 'CopyData', 'ErrorResponse', 'ReadyForQuery'],
  );
  assert.deepEqual(expected[0], { type: 'RowDescription', fields: ['recptr', 'tli'] });
  assert.deepEqual(expected[1], { type: 'DataRow', values: ['0/2000028', null] });
  assert.deepEqual(expected[2], { type: 'CommandComplete', tag: 'SELECT 1' });
  assert.deepEqual(expected[7], {
    type: 'ErrorResponse',
    fields: { severity: 'ERROR', sqlState: '42704', message: 'replication slot "x" does not exist', hint: 'create it' },
  });
  const payloads = expected.filter((m) => m.type === 'CopyData').map((m) => decodeBaseBackupPayload((m as { data: Buffer }).data));
  assert.deepEqual(payloads[0], { kind: 'new-archive', archiveName: 'base.tar', tablespacePath: '' });
  assert.equal(payloads[1]!.kind, 'data');
  assert.ok((payloads[1] as { data: Buffer }).data.equals(big));
  assert.deepEqual(payloads[2], { kind: 'progress', bytesDone: 123456789n });
});

test('same messages at every split point of the stream', () => {
  const points = new Set<number>();
  for (let i = 0; i <= 200; i++) points.add(i);
  for (let i = stream.length - 200; i <= stream.length; i++) points.add(i);
  for (let i = 0; i < stream.length; i += 997) points.add(i);
  for (const at of points) {
    assert.deepEqual(parseAll([stream.subarray(0, at), stream.subarray(at)]), expected, `split at ${at}`);
  }
});

test('same messages fed one byte at a time, and in three uneven parts', () => {
  const bytes: Buffer[] = [];
  for (let i = 0; i < 400; i++) bytes.push(stream.subarray(i, i + 1));
  bytes.push(stream.subarray(400));
  assert.deepEqual(parseAll(bytes), expected);
  assert.deepEqual(parseAll([stream.subarray(0, 3), stream.subarray(3, 40000), stream.subarray(40000)]), expected);
});

test('CopyData inside one chunk is a view, not a copy', () => {
  const p = new BackendParser();
  p.feed(copyData);
  const m = p.next();
  assert.equal(m?.type, 'CopyData');
  assert.equal((m as { data: Buffer }).data.buffer, copyData.buffer);
});

test('rejects a garbage length', () => {
  const p = new BackendParser();
  p.feed(Buffer.from([0x64, 0x7f, 0xff, 0xff, 0xff]));
  assert.throws(() => p.next(), /invalid message length/);
});

test('replication payloads: XLogData and keepalive', () => {
  const x = decodeReplicationPayload(Buffer.concat([Buffer.from('w'), int64(0x2000000n), int64(0x2000100n), int64(5n), Buffer.from('WAL')]));
  assert.deepEqual({ ...x, data: (x as { data: Buffer }).data.toString() }, { kind: 'xlog', start: 0x2000000n, walEnd: 0x2000100n, sendTime: 5n, data: 'WAL' });
  const k = decodeReplicationPayload(Buffer.concat([Buffer.from('k'), int64(42n), int64(7n), Buffer.from([1])]));
  assert.deepEqual(k, { kind: 'keepalive', walEnd: 42n, sendTime: 7n, replyRequested: true });
});

test('frontend messages are byte-exact', () => {
  assert.deepEqual([...encodeQuery('IDENTIFY_SYSTEM')], [0x51, 0, 0, 0, 20, ...Buffer.from('IDENTIFY_SYSTEM'), 0]);
  assert.deepEqual([...encodeCopyDone()], [0x63, 0, 0, 0, 4]);
  const s = encodeStandbyStatus({ write: 0x10n, flush: 0x20n, apply: 0n, clock: 99n, replyRequested: true });
  assert.equal(s.length, 1 + 4 + 34);
  assert.equal(s[5], 'r'.charCodeAt(0));
  assert.equal(s.readBigInt64BE(6), 0x10n);
  assert.equal(s.readBigInt64BE(14), 0x20n);
  assert.equal(s.readBigInt64BE(30), 99n);
  assert.equal(s[38], 1);
});
