// Does the store enforce exclusive create (design notes §3.2.5)? Locks are
// objects written with write({ exclusive: true }): posix enforces it with
// link(2), an object store with If-None-Match: *, but some S3-compatible
// stores accept the header and ignore it, and then two commands may both
// "take" a lock. stanza-create and check probe the store once (an exclusive
// write of a probe object, twice: the second must be refused) and record the
// answer in the repository marker as "conditional_create"; a lock taken on a
// store recorded false says that it is advisory.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { PgpitrError } from '../common/errors.js';
import type { Storage } from '../storage/storage.js';
import { REPO_MARKER } from './layout.js';
import { readRepoMarker, setMarkerField } from './repo-marker.js';

export const ADVISORY_LOCKS_WARNING =
  'locks on this store are advisory: it does not enforce exclusive create (If-None-Match), so two commands that change the same stanza (backup, expire, stanza-create) can run at once; run them one at a time';

/** The probe object's name: at the repository's top, unique to this process. */
function probePath(): string {
  return `pgpitr-probe-${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Writes a probe object exclusively, then again: true when the store refuses the second write
 * (exclusive create is enforced), false when it accepts it. The probe object is removed.
 */
export async function probeConditionalCreate(storage: Storage): Promise<boolean> {
  const path = probePath();
  const body = Buffer.from(`pgpitr probe of exclusive create, ${new Date().toISOString()}\n`);
  try {
    await storage.write(path, body, { exclusive: true, atomic: true, sync: false });
    try {
      // Other bytes the second time: a retried PUT refused (412) is taken for its own first attempt
      // when the object holds what it sends (s3-storage.ts), which would read as "not enforced".
      await storage.write(path, Buffer.concat([body, Buffer.from('again\n')]), { exclusive: true, atomic: true, sync: false });
      return false;
    } catch (e) {
      if (e instanceof PgpitrError && e.code === 'ERR_TARGET') return true;
      throw e;
    }
  } finally {
    await storage.remove(path).catch(() => {}); // best effort: a leftover probe object is harmless
  }
}

/** What the repository marker records (null: not probed yet, or no marker). */
export async function recordedConditionalCreate(storage: Storage): Promise<boolean | null> {
  const marker = await readRepoMarker(storage, storage.location).catch(() => null);
  const v = marker?.['conditional_create'];
  return typeof v === 'boolean' ? v : null;
}

/**
 * Records the probe's answer in the repository marker and its copy, keeping every other field;
 * nothing is written where it already says so. The caller holds the repository lock.
 */
export async function recordConditionalCreate(storage: Storage, honoured: boolean): Promise<void> {
  if (!(await setMarkerField(storage, 'conditional_create', honoured))) {
    throw new PgpitrError('ERR_STORAGE', `${REPO_MARKER} in ${storage.location} is missing or damaged`, { hint: 'pgpitr stanza-create initialises a repository; a damaged marker must be restored from a copy' });
  }
}
