// The protocol session reads ahead of its parser by a bounded amount: a
// consumer that stops asking for messages (a slow disk) must stop the reading,
// so that the server is held back by the socket instead of memory growing.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Duplex } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { createServer, createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '../../src/protocol/session.js';
import { SocketReads } from '../../src/protocol/socket-reads.js';

function copyData(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = 0x64;
  head.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([head, payload]);
}

/** A socket whose far end sends `wire` in 64 KiB chunks as fast as it is read. */
function fakeSocket(wire: Buffer) {
  let sent = 0;
  const socket = new Duplex({
    read() {
      while (sent < wire.length) {
        const chunk = Buffer.from(wire.subarray(sent, sent + 65536));
        sent += chunk.length;
        if (!this.push(chunk)) return;
      }
    },
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  socket.pause();
  return { socket, sent: () => sent };
}

test('reading stops while nobody consumes, and every byte arrives once it resumes', async () => {
  const payloads: Buffer[] = [];
  for (let i = 0; i < 600; i++) payloads.push(Buffer.alloc(32768 + (i % 7), i & 0xff));
  const wire = Buffer.concat(payloads.map(copyData)); // ~20 MB
  const { socket, sent } = fakeSocket(wire);
  const session = new (Session as unknown as new (...args: unknown[]) => Session)(socket, null, 1, new Map(), 'test');
  try {
    for (let i = 0; i < 50; i++) await turn();
    const held = sent();
    assert.ok(held >= 1024 * 1024, `reads ahead (${held} bytes)`);
    assert.ok(held <= 1024 * 1024 + 3 * 65536, `but no further than its limit (${held} bytes)`);
    for (let i = 0; i < 20; i++) await turn();
    assert.equal(sent(), held, 'and stays stopped');

    let consumed = 0;
    for (const expected of payloads) {
      const m = await session.next();
      assert.equal(m.type, 'CopyData');
      assert.ok((m as { data: Buffer }).data.equals(expected));
      consumed += 5 + expected.length;
      assert.ok(sent() - consumed <= 1024 * 1024 + 3 * 65536, 'never further ahead of the consumer');
    }
    assert.equal(sent(), wire.length);
  } finally {
    session.abort();
  }
});

/** A session over a real Unix socket read through SocketReads; the far end writes `wire`. */
async function readsSession(wire: Buffer): Promise<{ session: Session; done: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-reads-'));
  const path = join(dir, 's');
  const server = createServer((s: Socket) => s.end(wire));
  await new Promise<void>((r) => server.listen(path, r));
  const reads = new SocketReads();
  const socket = createConnection({ path, onread: reads.onread });
  socket.pause();
  const session = new (Session as unknown as new (...args: unknown[]) => Session)(socket, reads, 1, new Map(), 'test');
  return {
    session,
    done: () => {
      session.abort();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('lent reads: every byte arrives, through a handful of buffers read into again', async () => {
  const payloads: Buffer[] = [];
  for (let i = 0; i < 600; i++) payloads.push(Buffer.alloc(32768 + (i % 7), i & 0xff));
  const { session, done } = await readsSession(Buffer.concat(payloads.map(copyData)));
  try {
    session.lendReads(true);
    session.splitCopyData(() => true); // pieces are views of what was read, as in a base backup
    const memory = new Set<ArrayBufferLike>();
    for (const expected of payloads) {
      const parts: Buffer[] = [];
      for (;;) {
        const m = await session.next();
        assert.ok(m.type === 'CopyData' || m.type === 'CopyDataPart');
        parts.push(Buffer.from(m.data)); // handled (copied) before the next message is asked for
        memory.add(m.data.buffer);
        if (m.type === 'CopyData' || m.last) break;
      }
      assert.ok(Buffer.concat(parts).equals(expected));
    }
    // The read-ahead limit (1 MiB) in 64 KiB reads, and a few more: not one buffer per read (~310).
    assert.ok(memory.size <= 24, `${memory.size} buffers`);
  } finally {
    done();
  }
});

test('reads not lent: a chunk handed on stays as it was, whatever is read after it', async () => {
  const payloads: Buffer[] = [];
  for (let i = 0; i < 200; i++) payloads.push(Buffer.alloc(i % 3 === 0 ? 100 : 40000, i & 0xff));
  const { session, done } = await readsSession(Buffer.concat(payloads.map(copyData)));
  try {
    const kept: Buffer[] = [];
    for (let i = 0; i < payloads.length; i++) kept.push((await session.next() as { data: Buffer }).data);
    kept.forEach((k, i) => assert.ok(k.equals(payloads[i]!), `payload ${i} intact`));
  } finally {
    done();
  }
});
