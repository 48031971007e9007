// An object's text parsed an array element at a time gives what JSON.parse gives, for texts
// of every shape JSON allows (strings holding quotes, backslashes, brackets and commas; nested
// arrays; empty arrays; whitespace; members that are not arrays), and refuses what it refuses.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { parseObjectByElements } from '../../src/repo/backup-set/json-by-elements.js';

const parse = (text: string) => parseObjectByElements(Buffer.from(text));

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const TRICKY = ['', '"', '\\', '\\"', '\\\\', '[', ']', '{', '}', ',', ':', ' , ] } ', 'é€😀', '\n\t', 'a"b\\"c', '\\\\"'];

function value(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 2 ? 5 : 7));
  switch (k) {
    case 0: return TRICKY[Math.floor(r() * TRICKY.length)]! + String(Math.floor(r() * 100));
    case 1: return Math.floor(r() * 1e12) - 5e11;
    case 2: return r() < 0.5 ? null : r() < 0.5;
    case 3: return r() * 1000;
    case 4: return 'p'.repeat(Math.floor(r() * 5));
    case 5: return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1));
    default: return Object.fromEntries(Array.from({ length: Math.floor(r() * 4) }, (_, i) => [`${TRICKY[i % TRICKY.length]}k${i}`, value(r, depth + 1)]));
  }
}

test('random objects with array members read as JSON.parse reads them, compact and indented', () => {
  const r = random(42);
  for (let n = 0; n < 500; n++) {
    const o: Record<string, unknown> = {};
    const members = Math.floor(r() * 6);
    for (let i = 0; i < members; i++) {
      o[`${TRICKY[Math.floor(r() * TRICKY.length)]}m${i}`] = r() < 0.6 ? Array.from({ length: Math.floor(r() * 6) }, () => value(r, 1)) : value(r, 1);
    }
    for (const text of [JSON.stringify(o), JSON.stringify(o, null, n % 3 === 0 ? '\t' : 2), ` \r\n${JSON.stringify(o)}\n `]) {
      assert.deepEqual(parse(text), JSON.parse(text), text);
    }
  }
});

test('a manifest-like text: the arrays come back whole, in order, with the other members', () => {
  const files = Array.from({ length: 3000 }, (_, i) => ({ path: `base/5/${i}`, size: i, stored: i % 2 ? { object: `o,${i}]` } : { bundle: 1, offset: i, length: 1 } }));
  const m = { format: 'x', files, directories: [], tablespaces: [{ oid: 1, location: '/a "b" [c]' }], server_manifest: null };
  const text = JSON.stringify(m);
  assert.deepEqual(parse(text), m);
  assert.deepEqual(Object.keys(parse(text) as object), Object.keys(m));
});

test('texts that are not one object go to JSON.parse whole: same result or same refusal', () => {
  for (const text of ['[1,2]', '"s"', '3', 'null', ' [ {"a":[1]} ] ']) assert.deepEqual(parse(text), JSON.parse(text));
  const bad = [
    '', '{', '{"a":[1,2}', '{"a":[1,,2]}', '{"a":[,]}', '{"a":[1 2]}', '{"a":[1,]}', '{"a":[1]', '{"a":[1]} x', '{"a":["x]}',
    '{"a":[{"b":1]]}', '{["x"]}', '{"a":[1],}', '\ufeff{"a":[]}', '{"a":[{]}]}', '{"a" [1]}', '{"a":[1]]}',
  ];
  for (const text of [...bad, '{"files":[1,2],"z": ]}', '{"a":[1],"b":{"c":[2]],"d":[3]}']) {
    let refusal = '';
    try {
      JSON.parse(text);
    } catch (e) {
      refusal = (e as Error).message;
    }
    assert.ok(refusal !== '', `JSON.parse accepts ${text}`);
    // The same refusal, word for word (a damaged manifest's message quotes it).
    assert.throws(() => parse(text), (e: Error) => e instanceof SyntaxError && e.message === refusal, text);
  }
});

test('a member named __proto__ is a member, as JSON.parse makes it', () => {
  const text = '{"__proto__":[1,2],"b":[]}';
  const o = parse(text) as Record<string, unknown>;
  assert.deepEqual(Object.getOwnPropertyDescriptor(o, '__proto__')?.value, [1, 2]);
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(o, JSON.parse(text));
});
