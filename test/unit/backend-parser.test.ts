// The sans-IO backend parser, byte-exact: messages built by hand are parsed
// whole, one byte at a time, and split at every possible point, including in
// the 5-byte header and inside large CopyData payloads.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { BackendParser } from '../../src/protocol/backend-parser.js';
import type { BackendMessage } from '../../src/protocol/backend-parser.js';
import { decodeBaseBackupPayload, decodeReplicationPayload } from '../../src/protocol/copy-payloads.js';
import { runBaseBackup } from '../../src/protocol/base-backup-stream.js';
import type { Session } from '../../src/protocol/session.js';
import { encodeQuery, encodeStandbyStatus, encodeCopyDone, encodeStartupMessage } from '../../src/protocol/frontend-messages.js';

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

// With splitCopyData, a 'd' payload that straddles chunks comes as CopyDataPart
// views of the chunks; joined, the pieces are the payload, and every other
// message (other CopyData kinds included) still comes whole.
const isData = (b: number) => b === 0x64;

function parseSplit(chunks: Buffer[]): BackendMessage[] {
  const p = new BackendParser();
  p.splitCopyData = isData;
  const out: BackendMessage[] = [];
  let parts: Buffer[] | null = null;
  for (const c of chunks) {
    p.feed(c);
    for (let m = p.next(); m; m = p.next()) {
      if (m.type === 'CopyDataPart') {
        assert.ok(m.data.length > 0, 'pieces are never empty');
        assert.equal(m.data.buffer, c.buffer, 'a piece is a view of the chunk, not a copy');
        assert.equal(m.first, parts === null);
        if (m.first) assert.equal(m.data[0], 0x64, 'only data payloads are split');
        parts = [...(parts ?? []), Buffer.from(m.data)];
        if (m.last) {
          out.push({ type: 'CopyData', data: Buffer.concat(parts) });
          parts = null;
        }
      } else {
        assert.equal(parts, null, 'no other message inside a split payload');
        out.push(m.type === 'CopyData' ? { type: 'CopyData', data: Buffer.from(m.data) } : m);
      }
    }
  }
  assert.equal(parts, null);
  assert.ok(p.drained);
  return out;
}

test('split CopyData: same payloads at every split point, in pieces that are views', () => {
  const points = new Set<number>();
  for (let i = 0; i <= 200; i++) points.add(i);
  for (let i = stream.length - 200; i <= stream.length; i++) points.add(i);
  for (let i = 0; i < stream.length; i += 997) points.add(i);
  for (const at of points) {
    assert.deepEqual(parseSplit([stream.subarray(0, at), stream.subarray(at)]), expected, `split at ${at}`);
  }
  // Chunks are fresh buffers here, so that "a view of the chunk" is checked for real.
  const fresh = (b: Buffer) => Buffer.from(b);
  const bytes: Buffer[] = [];
  for (let i = 0; i < 400; i++) bytes.push(fresh(stream.subarray(i, i + 1)));
  bytes.push(fresh(stream.subarray(400)));
  assert.deepEqual(parseSplit(bytes), expected);
  const cuts = [0, 3, 150, 160, 161, 20000, 40000, 60000, stream.length];
  assert.deepEqual(parseSplit(cuts.slice(1).map((end, i) => fresh(stream.subarray(cuts[i]!, end)))), expected);
});

test('split CopyData: a payload whose header ends a chunk, and one in many pieces', () => {
  const start = stream.indexOf(copyData);
  const cut = start + 5; // the 'd' payload's first byte opens the next chunk
  const got = parseSplit([Buffer.from(stream.subarray(0, cut)), Buffer.from(stream.subarray(cut))]);
  assert.deepEqual(got, expected);
  const p = new BackendParser();
  p.splitCopyData = isData;
  const pieces: Buffer[] = [];
  for (let off = 0; off < copyData.length; off += 1000) {
    p.feed(copyData.subarray(off, off + 1000));
    for (let m = p.next(); m; m = p.next()) {
      assert.equal(m.type, 'CopyDataPart');
      pieces.push((m as { data: Buffer }).data);
    }
  }
  assert.ok(p.drained);
  assert.equal(pieces.length, Math.ceil(copyData.length / 1000));
  assert.ok(Buffer.concat(pieces).equals(copyData.subarray(5)));
});

/** Just what runBaseBackup uses of a Session, over a real parser fed the given chunks. */
function fakeSession(chunks: Buffer[], serverVersionNum: number): Session {
  const parser = new BackendParser();
  let i = 0;
  const fake = {
    serverVersionNum,
    send() {},
    lendReads() {},
    splitCopyData(accept: ((b: number) => boolean) | null) {
      parser.splitCopyData = accept;
    },
    poll(): BackendMessage | null {
      for (;;) {
        const m = parser.next();
        if (m) return m;
        if (i === chunks.length) return null;
        parser.feed(chunks[i++]!);
      }
    },
    async next(): Promise<BackendMessage> {
      await Promise.resolve();
      const m = fake.poll();
      if (!m) throw new Error('stream ended');
      return m;
    },
    async failAfterError(): Promise<never> {
      throw new Error('server error');
    },
  };
  return fake as unknown as Session;
}

function result(columns: string[], rows: (string | null)[][]): Buffer {
  const desc = msg('T', Buffer.concat([int16(columns.length), ...columns.map((c) => Buffer.concat([cstr(c), Buffer.alloc(18)]))]));
  const data = rows.map((r) =>
    msg('D', Buffer.concat([int16(r.length), ...r.map((v) => (v === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)])))])),
  );
  return Buffer.concat([desc, ...data, msg('C', cstr('SELECT'))]);
}

test('runBaseBackup hands on archive and manifest bytes whole, wherever messages straddle chunks', async () => {
  const archive = Buffer.alloc(100_000);
  for (let i = 0; i < archive.length; i++) archive[i] = (i * 7 + (i >> 9)) & 0xff;
  const manifest = Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n'.repeat(900));
  const pieces = (b: Buffer, size: number) => {
    const out: Buffer[] = [];
    for (let off = 0; off < b.length; off += size) out.push(b.subarray(off, off + size));
    return out;
  };
  const start = result(['recptr', 'tli'], [['0/2000028', '1']]);
  const spaces = result(['spcoid', 'spclocation', 'size'], [[null, null, null]]);
  const end = Buffer.concat([result(['recptr', 'tli'], [['0/2000100', '1']]), msg('C', cstr('BASE_BACKUP')), msg('Z', Buffer.from('I'))]);
  const modern = Buffer.concat([
    start,
    spaces,
    copyOut,
    msg('d', Buffer.concat([Buffer.from('n'), cstr('base.tar'), cstr('')])),
    ...pieces(archive, 32768).map((p) => msg('d', Buffer.concat([Buffer.from('d'), p]))),
    progress,
    msg('d', Buffer.from('m')),
    ...pieces(manifest, 32768).map((p) => msg('d', Buffer.concat([Buffer.from('d'), p]))),
    msg('c', Buffer.alloc(0)),
    end,
  ]);
  const legacy = Buffer.concat([
    start,
    spaces,
    copyOut,
    ...pieces(archive, 32768).map((p) => msg('d', p)),
    msg('c', Buffer.alloc(0)),
    copyOut,
    ...pieces(manifest, 32768).map((p) => msg('d', p)),
    msg('c', Buffer.alloc(0)),
    end,
  ]);
  for (const [version, wire, tarEnd] of [[150000, modern, Buffer.alloc(0)], [140000, legacy, Buffer.alloc(1024)]] as const) {
    for (const size of [65536, 65536 - 1, 40000, 4099, 777]) {
      const chunks = pieces(wire, size).map((c) => Buffer.from(c));
      const got = { archive: [] as Buffer[], manifest: [] as Buffer[], names: [] as string[], ended: 0, finished: '' };
      await runBaseBackup(fakeSession(chunks, version), 'BASE_BACKUP', {
        started() {},
        tablespaces() {},
        tarBegin(name) {
          got.names.push(name);
        },
        tarData(c) {
          got.archive.push(Buffer.from(c));
        },
        tarEnd() {
          got.ended++;
        },
        manifestBegin() {},
        manifestData(c) {
          got.manifest.push(Buffer.from(c));
        },
        manifestEnd() {},
        progress() {},
        finished(lsn) {
          got.finished = lsn;
        },
      });
      const what = `server ${version}, chunks of ${size}`;
      assert.deepEqual(got.names, ['base.tar'], what);
      assert.ok(Buffer.concat(got.archive).equals(Buffer.concat([archive, tarEnd])), what);
      assert.ok(Buffer.concat(got.manifest).equals(manifest), what);
      assert.equal(got.ended, 1, what);
      assert.equal(got.finished, '0/2000100', what);
    }
  }
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

test('replication and base backup payloads shorter than their header: a protocol error naming the message, not a RangeError', () => {
  const cases: Array<[() => unknown, RegExp]> = [
    [() => decodeReplicationPayload(Buffer.concat([Buffer.from('w'), int64(0x2000000n), int64(0x2000100n)])), /truncated XLogData message from the server: 17 bytes, at least 25/],
    [() => decodeReplicationPayload(Buffer.concat([Buffer.from('k'), int64(42n), int64(7n)])), /truncated keepalive message from the server: 17 bytes, at least 18/],
    [() => decodeBaseBackupPayload(Buffer.from([0x70, 0, 0])), /truncated BASE_BACKUP progress message/],
  ];
  for (const [decode, message] of cases) {
    assert.throws(decode, (e: Error & { code?: string }) => e.code === 'ERR_PROTOCOL' && message.test(e.message));
  }
});

test('start-up messages: Authentication and BackendKeyData, at every split point', () => {
  const startup = Buffer.concat([msg('R', int32(0)), msg('S', Buffer.concat([cstr('server_version'), cstr('15.18')])), msg('K', Buffer.concat([int32(4242), int32(77)])), msg('R', int32(10)), ready]);
  const whole = parseAll([startup]);
  assert.deepEqual(whole, [
    { type: 'Authentication', request: 0 },
    { type: 'ParameterStatus', name: 'server_version', value: '15.18' },
    { type: 'BackendKeyData', pid: 4242 },
    { type: 'Authentication', request: 10 },
    { type: 'ReadyForQuery', status: 'I' },
  ]);
  for (let i = 1; i < startup.length; i++) assert.deepEqual(parseAll([startup.subarray(0, i), startup.subarray(i)]), whole, `split at ${i}`);
});

test('frontend messages are byte-exact', () => {
  assert.deepEqual([...encodeStartupMessage({ user: 'u', replication: 'true' })], [
    0, 0, 0, 33, 0, 3, 0, 0, ...Buffer.from('user\0u\0replication\0true\0'), 0,
  ]);
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

test('DataRow values as bytes (rowEncoding latin1): a history file in the server\'s encoding comes back byte for byte', () => {
  const file = Buffer.concat([Buffer.from('1\t0/3000000\tat restore point "caf'), Buffer.from([0xe9]), Buffer.from('"\n')]); // LATIN1 é: not UTF-8
  const row = msg('D', Buffer.concat([int16(2), int32(16), Buffer.from('00000002.history'), int32(file.length), file]));
  const p = new BackendParser();
  p.rowEncoding = 'latin1';
  p.feed(row);
  const m = p.next() as { type: 'DataRow'; values: string[] };
  assert.ok(Buffer.from(m.values[1]!, 'latin1').equals(file));
  // Decoded as UTF-8 (the default), the byte would have become U+FFFD.
  const q = new BackendParser();
  q.feed(row);
  assert.ok(!Buffer.from((q.next() as { values: string[] }).values[1]!, 'utf8').equals(file));
});
