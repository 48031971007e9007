// check's findings about a repository itself, besides its stanza: the stale temporary files of
// interrupted pushes and commands (counted and removed, repo/archive-temp.ts, repo/stale-temps.ts), the repository marker and its
// copy (put back, repo/repo-marker.ts), whether the store enforces
// exclusive create (repo/conditional-create.ts), and on object storage the incomplete multipart
// uploads older than a day (aborted, repo/stale-uploads.ts).

import { scanArchive } from '../repo/archive-store.js';
import { staleTempsBeyondArchive } from '../repo/stale-temps.js';
import { displayPath } from '../repo/repository.js';
import type { Repository } from '../repo/repository.js';
import { abortStaleUploads } from '../repo/stale-uploads.js';
import type { StaleUploads } from '../repo/stale-uploads.js';
import { REPO_MARKER, REPO_MARKER_COPY } from '../repo/layout.js';
import { describeRepairs, isDamageRepair, openedKeyOf, readMarkerPair, repairMarker } from '../repo/repo-marker.js';
import { stanzasReadable } from '../repo/stanza.js';
import { ADVISORY_LOCKS_WARNING, probeConditionalCreate, recordConditionalCreate } from '../repo/conditional-create.js';
import type { Finding } from './check-finding.js';
import { errorFinding } from './check-finding.js';

/** Temporary files left by killed pushes and commands: removed here; a failure to remove them fails the check. */
export async function staleTempFinding(repo: Repository, stanza: string): Promise<Finding> {
  let paths: string[];
  try {
    paths = [...(await scanArchive(repo, stanza)).staleTemps, ...(await staleTempsBeyondArchive(repo, stanza, { top: true }))];
  } catch (e) {
    // The listing itself failed: the stanza's archive cannot be read (archive-push, archive-get and restore cannot either).
    const f = errorFinding('archive', e);
    return { ...f, message: `the stanza's archive cannot be listed: ${f.message}`, hint: f.hint ?? "give the repository's directories to the server's operating-system user (archive-push, archive-get and restore read them), and check the store is reachable" };
  }
  const left: string[] = [];
  for (const path of paths) {
    try {
      await repo.storage.remove(path);
    } catch (e) {
      left.push(`${displayPath(repo, path)} (${(e as Error).message})`);
    }
  }
  if (left.length > 0) {
    return {
      check: 'temporary files',
      ok: false,
      count: paths.length,
      message: `${left.length} stale temporary file(s) left by interrupted pushes or commands could not be removed: ${left.join(', ')}`,
      hint: 'run check as the repository\'s owner (the server\'s operating-system user), or remove them by hand',
    };
  }
  return { check: 'temporary files', ok: true, count: paths.length, message: `${paths.length} stale temporary file(s) left by interrupted pushes or commands${paths.length > 0 ? ', removed' : ''}` };
}

/**
 * Does the store enforce exclusive create (the repository's locks rely on it)? Probed afresh (a
 * store's behaviour may change under a repository), and the marker updated when it differs. A
 * store that ignores it passes, with a warning: the locks are advisory.
 */
export async function conditionalCreateFinding(repo: Repository): Promise<Finding> {
  try {
    const honoured = await probeConditionalCreate(repo.storage);
    await recordConditionalCreate(repo.storage, honoured);
    if (honoured) return { check: 'exclusive create', ok: true, message: 'the store refuses to create an object that exists: the repository\'s locks hold' };
    return {
      check: 'exclusive create',
      ok: true,
      message: `warning: the store does not enforce exclusive create (If-None-Match): ${ADVISORY_LOCKS_WARNING}`,
      hint: 'a store that honours If-None-Match: * on PUT (AWS S3, recent MinIO) makes the locks hold',
    };
  } catch (e) {
    return errorFinding('exclusive create', e);
  }
}

/**
 * The repository marker and its copy (repo/repo-marker.ts): whichever is missing, damaged or
 * different is put back from the one that serves (for an encrypted repository, the one whose key
 * opened), said as a warning; a repository made before copies were written gets its copy here.
 */
export async function markerFinding(repo: Repository): Promise<Finding> {
  try {
    const pair = await readMarkerPair(repo.storage);
    if (pair.marker.state === 'sound' && pair.copy.state === 'sound' && pair.marker.bytes.equals(pair.copy.bytes)) {
      return { check: 'repository marker', ok: true, message: `${REPO_MARKER} and its copy are sound and alike` };
    }
    // About to write: only with a key the stanzas read with (then proven the data's), never another repository's.
    const proven = (await stanzasReadable(repo)) > 0;
    const repairs = await repairMarker(repo.storage, await openedKeyOf(repo, proven));
    if (repairs.length === 0) return { check: 'repository marker', ok: true, message: `${REPO_MARKER} and its copy are sound and alike` };
    // A copy written for the first time, or brought up to date after a crash between the two writes: no news of damage.
    // Damage put back fails this check once (an alert: the file holding the key was damaged); the next check passes.
    return repairs.some(isDamageRepair)
      ? { check: 'repository marker', ok: false, message: `${describeRepairs(repairs)!} (put back: the next check passes)`, hint: 'the file that holds the repository key was damaged: check the storage under the repository (disk, file system, object store), and keep a copy of pgpitr-repo.json away from it' }
      : { check: 'repository marker', ok: true, message: `${describeRepairs(repairs)!} (${REPO_MARKER_COPY} keeps a second copy of the marker, which an encrypted repository's key is wrapped in)` };
  } catch (e) {
    return errorFinding('repository marker', e);
  }
}

/** Incomplete multipart uploads older than a day (object storage only): aborted, best effort; never a failure. */
export async function staleUploadsFinding(repo: Repository): Promise<Finding | null> {
  const lifecycle = 'a bucket lifecycle rule AbortIncompleteMultipartUpload (DaysAfterInitiation 1) cleans them up without pgpitr (docs/object-storage.md)';
  let r: StaleUploads | null;
  try {
    r = await abortStaleUploads(repo);
  } catch (e) {
    return { check: 'incomplete uploads', ok: true, message: `warning: could not list the incomplete multipart uploads: ${(e as Error).message}`, hint: lifecycle };
  }
  if (r === null) return null;
  if (!r.supported) return { check: 'incomplete uploads', ok: true, message: 'listing incomplete multipart uploads is not supported by this store', hint: lifecycle };
  const aborted = r.stale.length - r.failed.length;
  const others = r.others > 0 ? `; ${r.others} under the repository's root but in no stanza of it left alone` : '';
  const message = `${r.total} incomplete multipart upload(s) under the repository, ${r.stale.length} older than a day${r.stale.length > 0 ? `, ${aborted} aborted` : ''}${others}`;
  if (r.failed.length === 0) return { check: 'incomplete uploads', ok: true, count: r.stale.length, message };
  return {
    check: 'incomplete uploads',
    ok: true,
    count: r.stale.length,
    message: `warning: ${message}; could not abort ${r.failed.map((f) => `${displayPath(repo, f.upload.path)} (upload ${f.upload.uploadId}: ${f.error})`).join(', ')}`,
    hint: `the key needs s3:AbortMultipartUpload and s3:ListBucketMultipartUploads; or ${lifecycle}`,
  };
}
