// completeInterruptedSegments: a .partial whose same-timeline successor exists
// here was received in full and is renamed (one in the archive may be another
// writer's, and proves nothing; a .partial the archive holds whole is removed); the newest
// .partial, a timeline's last segment before a switch and a file of the wrong
// size stay as they are.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { completeInterruptedSegments } from '../../src/wal/interrupted-segments.js';

const SEG = 1024 * 1024;

function dirWith(files: Record<string, Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-interrupted-'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}

function complete(dir: string, archived: string[] = []): { completed: string[]; warnings: string[]; names: string[] } {
  const warnings: string[] = [];
  const completed = completeInterruptedSegments(dir, readdirSync(dir), archived, SEG, true, (m) => {
    if (m.startsWith('warning')) warnings.push(m);
  });
  const names = readdirSync(dir).sort();
  rmSync(dir, { recursive: true, force: true });
  return { completed, warnings, names };
}

const full = Buffer.alloc(SEG, 1);

test('a .partial with a successor on its timeline is completed; the newest stays .partial', () => {
  const r = complete(dirWith({ '000000010000000000000005.partial': full, '000000010000000000000006.partial': full }));
  assert.deepEqual(r.completed, ['000000010000000000000005']);
  assert.deepEqual(r.names, ['000000010000000000000005', '000000010000000000000006.partial']);
});

test("a timeline's last segment before a switch stays .partial (its successor is on the next timeline)", () => {
  const r = complete(dirWith({ '000000010000000000000007.partial': full, '000000020000000000000007.partial': full, '000000020000000000000008.partial': full }));
  assert.deepEqual(r.names, ['000000010000000000000007.partial', '000000020000000000000007', '000000020000000000000008.partial']);
});

test('repository mode: a successor in the archive (stored by another writer) proves nothing; a .partial the archive holds whole goes', () => {
  // Half zeros: the run was stopped half way, archive_command stored 9 and A since.
  const half = Buffer.concat([Buffer.alloc(SEG / 2, 1), Buffer.alloc(SEG / 2)]);
  const r = complete(dirWith({ '000000010000000000000009.partial': half }), ['00000001000000000000000A']);
  assert.deepEqual(r.completed, []);
  assert.deepEqual(r.names, ['000000010000000000000009.partial']);
  const gone = complete(dirWith({ '000000010000000000000009.partial': half, '00000001000000000000000B.partial': half }), ['000000010000000000000009', '00000001000000000000000A']);
  assert.deepEqual(gone.completed, []);
  assert.deepEqual(gone.names, ['00000001000000000000000B.partial']);
});

test('a .partial of the wrong size is left alone with a warning', () => {
  const r = complete(dirWith({ '000000010000000000000005.partial': full.subarray(0, 100), '000000010000000000000006': full }));
  assert.deepEqual(r.names, ['000000010000000000000005.partial', '000000010000000000000006']);
  assert.match(r.warnings.join('\n'), /incorrect size 100/);
});

test('compressed: a .gz.partial with a successor is completed when its uncompressed size is a segment', () => {
  const r = complete(dirWith({ '000000010000000000000005.gz.partial': gzipSync(full), '000000010000000000000006.gz.partial': gzipSync(full.subarray(0, 10)) }));
  assert.deepEqual(r.names, ['000000010000000000000005.gz', '000000010000000000000006.gz.partial']);
});

test('a .partial beside a complete form of the same segment is left alone with a warning', () => {
  const r = complete(dirWith({ '000000010000000000000005.gz': gzipSync(full), '000000010000000000000005.partial': full, '000000010000000000000006.partial': full }));
  assert.deepEqual(r.names, ['000000010000000000000005.gz', '000000010000000000000005.partial', '000000010000000000000006.partial']);
  assert.match(r.warnings.join('\n'), /both 000000010000000000000005.gz and 000000010000000000000005.partial exist/);
});
