// The repository marker and its copy (repo/repo-marker.ts): written twice, read
// from the copy when the marker is missing or damaged, put back from the one
// that serves, a field set in each without one file's content going over the
// other, and what verify says of them.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { describeRepairs, markerProblems, readRepoMarker, repairMarker, setMarkerField, writeRepoMarker } from '../../src/repo/repo-marker.js';

async function withRepo(fn: (dir: string, storage: PosixStorage) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-marker-'));
  try {
    await fn(dir, new PosixStorage(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fields = { format: 'pgpitr-repository', format_version: 1, cipher: { key_id: 'a'.repeat(32), wrapped_key: 'good' } };
/** The key that opened: the good one; the passphrase opens no other. */
const goodKey = { block: fields.cipher, opens: async () => false };

test('the marker is written twice; the copy serves when the marker is missing or damaged; both damaged is an error naming both', () =>
  withRepo(async (dir, storage) => {
    assert.equal(await readRepoMarker(storage, dir), null);
    await writeRepoMarker(storage, fields);
    assert.deepEqual(readFileSync(join(dir, 'pgpitr-repo.json')), readFileSync(join(dir, 'pgpitr-repo.json.copy')));
    assert.deepEqual(await readRepoMarker(storage, dir), fields);
    writeFileSync(join(dir, 'pgpitr-repo.json'), '{"format":"pgpitr-repos');
    assert.deepEqual(await readRepoMarker(storage, dir), fields);
    unlinkSync(join(dir, 'pgpitr-repo.json'));
    assert.deepEqual(await readRepoMarker(storage, dir), fields);
    writeFileSync(join(dir, 'pgpitr-repo.json'), '[]');
    writeFileSync(join(dir, 'pgpitr-repo.json.copy'), '');
    await assert.rejects(readRepoMarker(storage, dir), (e: Error) => {
      assert.match(e.message, /pgpitr-repo\.json is damaged \(not a pgpitr repository marker\), and pgpitr-repo\.json\.copy is damaged \(Unexpected end of JSON input\)/);
      return true;
    });
  }));

test('repair: from the marker by default, from the one whose key opened, and a missing copy is written', () =>
  withRepo(async (dir, storage) => {
    writeFileSync(join(dir, 'pgpitr-repo.json'), JSON.stringify(fields));
    assert.deepEqual(await markerProblems(storage), [], 'a repository made before copies: not a problem');
    assert.deepEqual(await repairMarker(storage), [{ name: 'pgpitr-repo.json.copy', was: 'missing', from: 'pgpitr-repo.json' }]);
    assert.deepEqual(await repairMarker(storage), []);
    // The marker's wrapped key changed (still JSON): the copy's key is the one that opened.
    writeFileSync(join(dir, 'pgpitr-repo.json'), JSON.stringify({ ...fields, cipher: { ...fields.cipher, wrapped_key: 'bad' } }));
    assert.match((await markerProblems(storage))[0]!.problem, /records another encryption key/);
    assert.deepEqual(await markerProblems(storage, fields.cipher), [{ object: 'pgpitr-repo.json', problem: "holds a wrapped key other than the one that opened the repository (damaged, or another repository's); pgpitr check or stanza-create puts it back from the other" }]);
    const repairs = await repairMarker(storage, goodKey);
    assert.equal(describeRepairs(repairs), 'pgpitr-repo.json held a wrapped key that does not open: rewritten from pgpitr-repo.json.copy');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'pgpitr-repo.json'), 'utf8')), fields);
    writeFileSync(join(dir, 'pgpitr-repo.json.copy'), 'x');
    assert.deepEqual(await markerProblems(storage), [{ object: 'pgpitr-repo.json.copy', problem: `damaged (Unexpected token 'x', "x" is not valid JSON); pgpitr check or stanza-create puts it back from the other` }]);
    assert.match(describeRepairs(await repairMarker(storage, goodKey))!, /^pgpitr-repo\.json\.copy was damaged \(.*\): rewritten from pgpitr-repo\.json$/);
    assert.deepEqual(await markerProblems(storage), []);
  }));

test('a key is never given up: not for a file holding none, nor for another key the passphrase opens too', () =>
  withRepo(async (dir, storage) => {
    const keyless = { format: 'pgpitr-repository', format_version: 1 };
    await writeRepoMarker(storage, fields);
    // The marker parses but holds no key ("cipher" damaged, or an unencrypted repository's put back).
    writeFileSync(join(dir, 'pgpitr-repo.json'), JSON.stringify(keyless));
    await assert.rejects(repairMarker(storage), /pgpitr-repo\.json\.copy in .* holds an encryption key and pgpitr-repo\.json does not/);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'pgpitr-repo.json.copy'), 'utf8')), fields, 'the copy keeps its key');
    assert.deepEqual(await markerProblems(storage, fields.cipher), [{ object: 'pgpitr-repo.json', problem: 'holds no encryption key, in an encrypted repository; pgpitr check or stanza-create puts it back from the other' }]);
    assert.equal(describeRepairs(await repairMarker(storage, goodKey)), 'pgpitr-repo.json held no encryption key: rewritten from pgpitr-repo.json.copy');
    // Two keys that both open: which one the stanzas need is not known here.
    writeFileSync(join(dir, 'pgpitr-repo.json.copy'), JSON.stringify({ ...fields, cipher: { key_id: 'b'.repeat(32), wrapped_key: 'other' } }));
    await assert.rejects(repairMarker(storage, { block: fields.cipher, opens: async () => true }), /hold two different repository keys, and the passphrase opens both/);
    assert.equal(JSON.parse(readFileSync(join(dir, 'pgpitr-repo.json.copy'), 'utf8')).cipher.key_id, 'b'.repeat(32));
  }));

test("a field is set in each readable file, each keeping its own content: one file's key never goes over the other", () =>
  withRepo(async (dir, storage) => {
    await writeRepoMarker(storage, fields);
    const damagedKey = { ...fields, cipher: { ...fields.cipher, wrapped_key: 'bad' } };
    writeFileSync(join(dir, 'pgpitr-repo.json'), JSON.stringify(damagedKey));
    assert.equal(await setMarkerField(storage, 'conditional_create', true), true);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'pgpitr-repo.json'), 'utf8')), { ...damagedKey, conditional_create: true });
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'pgpitr-repo.json.copy'), 'utf8')), { ...fields, conditional_create: true });
    unlinkSync(join(dir, 'pgpitr-repo.json'));
    unlinkSync(join(dir, 'pgpitr-repo.json.copy'));
    assert.equal(await setMarkerField(storage, 'conditional_create', true), false);
  }));

test('a file that cannot be read is one damaged file (the other serves); neither readable is that error, not "damaged"', () =>
  withRepo(async (dir, storage) => {
    const { mkdirSync } = await import('node:fs');
    await writeRepoMarker(storage, fields);
    unlinkSync(join(dir, 'pgpitr-repo.json'));
    mkdirSync(join(dir, 'pgpitr-repo.json')); // a directory in its place: EISDIR
    assert.deepEqual(await readRepoMarker(storage, dir), fields);
    assert.match((await markerProblems(storage))[0]!.problem, /^damaged \(cannot be read: /);
    unlinkSync(join(dir, 'pgpitr-repo.json.copy'));
    mkdirSync(join(dir, 'pgpitr-repo.json.copy'));
    await assert.rejects(readRepoMarker(storage, dir), (e: Error) => !/cannot be used/.test(e.message));
  }));
