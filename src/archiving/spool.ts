// The local spool of asynchronous archive-push: one directory per stanza,
// <spool-path>/<stanza>/archive-push/, where the background pusher leaves one
// marker per WAL file it has dealt with, for later archive_command calls:
//   <file>.ok       stored in the repository (archive_command may succeed at once)
//   <file>.dropped  dropped because the queue passed archive-push-queue-max
//                   (archive_command succeeds and logs the loss loudly)
//   <file>.error    the push failed; holds the message (archive_command fails
//                   with it and removes it, so the pusher tries again)
// plus pusher.lock (the running pusher), pusher.log, and drops/ (records of
// dropped WAL not yet written to the repository, because it was unreachable).
// With several repositories, the same per repository in repoN/ (its markers,
// its drops/, and owed/: copies of .history and .backup files it could not
// take past the queue limit, stored there when it returns), and the markers above mean "settled for every repository"
// (archiving/repo-settle.ts): archive_command and pgpitr-spool-wait read
// those only. Markers are written by
// rename, so a reader never sees half of one; they need no fsync: a marker lost
// in a crash only means the file is pushed again, which is idempotent.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync, accessSync, constants } from 'node:fs';
import { fsyncPathSync, makeDirsSync, writeFileAtomicSync } from '../storage/durable.js';
import { join } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { stanzaPath } from '../repo/layout.js';
import { unsafeSpool } from './spool-safety.js';

export type MarkerKind = 'ok' | 'dropped' | 'error';
export interface Marker {
  kind: MarkerKind;
  /** The message of an error or drop marker; empty for ok. */
  message: string;
}

const KINDS: readonly MarkerKind[] = ['ok', 'dropped', 'error'];

/** Where the markers of a stanza live; the default spool path is for documentation and error messages. */
export const DEFAULT_SPOOL_PATH = '/var/spool/pgpitr';

export function pushSpoolDir(spoolPath: string, stanza: string): string {
  return join(spoolPath, stanzaPath(stanza), 'archive-push');
}

/** Creates a spool directory (if needed) and checks that this user may write it. */
export function openSpoolDir(spoolPath: string, dir: string): string {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new PgpitrError('ERR_TARGET', `cannot use spool directory "${dir}": ${(e as Error).message}`, {
      hint: `create ${spoolPath} owned by the server's operating-system user (usually postgres), or set spool-path to a directory it can write`,
      cause: e,
    });
  }
  const unsafe = unsafeSpool(spoolPath, dir);
  if (unsafe !== null) {
    throw new PgpitrError('ERR_TARGET', `spool directory "${dir}" is not safe: ${unsafe}; what is there decides what archive_command reports archived and what recovery replays`, {
      hint: `use a spool path only the server's operating-system user can write (the default ${DEFAULT_SPOOL_PATH}, made with mode 0750), not one under a directory every user can write; or make it so (chown, chmod o-w) after checking what is in it`,
      // Passed by as a spool that cannot be written is (archive-push stores synchronously, archive-get fetches without the prefetch).
      cause: Object.assign(new Error(unsafe), { code: 'EPERM', path: dir }),
    });
  }
  return dir;
}

/** A failure as the spool keeps it for archive_command: the message, then the hint, then its code (its exit code's). */
export function failureText(e: { message: string; hint?: string | undefined; code?: unknown }): string {
  const code = typeof e.code === 'string' && /^ERR_[A-Z_]+$/.test(e.code) ? `\ncode: ${e.code}` : '';
  return `${e.hint ? `${e.message}\nhint: ${e.hint}` : e.message}${code}`;
}

export function parseFailureText(text: string): { message: string; hint?: string; code?: string } {
  const c = /\ncode: (ERR_[A-Z_]+)$/.exec(text);
  const [message, hint] = (c ? text.slice(0, c.index) : text).split('\nhint: ');
  return { message: message!, ...(hint === undefined ? {} : { hint }), ...(c ? { code: c[1]! } : {}) };
}

/** See PushSpool.outdated. */
const OUTDATED_SLACK_MS = 1000;

export class PushSpool {
  private constructor(readonly dir: string) {}

  /** Opens (creating if needed) the spool directory of a stanza. */
  static open(spoolPath: string, stanza: string): PushSpool {
    return new PushSpool(openSpoolDir(spoolPath, pushSpoolDir(spoolPath, stanza)));
  }

  /** The markers and pending drops of repository N, in <dir>/repoN/ (several repositories only). */
  forRepository(index: number): PushSpool {
    const dir = join(this.dir, `repo${index}`);
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    return new PushSpool(dir);
  }

  /**
   * Where what a repository's own spool kept (drop records, owed copies) waits while no configured
   * repository of that location has a spool of its own: parked/<hash of the location>/, with the
   * location in it (written, synced, before anything is moved there).
   */
  parkedFor(location: string): PushSpool {
    const dir = join(this.dir, 'parked', createHash('sha256').update(location).digest('hex').slice(0, 16));
    makeDirsSync(dir, 0o750, true);
    if (parkedLocation(dir) !== location) writeFileAtomicSync(join(dir, 'location'), location, true, 0o640);
    return new PushSpool(dir);
  }

  /** Every parked spool with the location it waits for (parkedFor). */
  parked(): { location: string; spool: PushSpool }[] {
    const root = join(this.dir, 'parked');
    let names: string[];
    try {
      names = readdirSync(root);
    } catch {
      return [];
    }
    const out: { location: string; spool: PushSpool }[] = [];
    for (const name of names.sort()) {
      const location = parkedLocation(join(root, name));
      if (location !== null) out.push({ location, spool: new PushSpool(join(root, name)) });
    }
    return out;
  }

  /**
   * Removes a parked spool emptied of its records, with what a write killed half-way left in it
   * (a temporary file: its record was parked again, whole, by the next start).
   */
  removeParked(spool: PushSpool): void {
    rmSync(spool.dir, { recursive: true, force: true });
  }

  /** Makes the removals of drop records and owed copies here durable (before what they follow is recorded). */
  syncRecords(): void {
    for (const sub of ['drops', 'owed']) if (existsSync(join(this.dir, sub))) fsyncPathSync(join(this.dir, sub));
  }

  get logPath(): string {
    return join(this.dir, 'pusher.log');
  }

  /**
   * The marker of a file; null when there is none, or, given the WAL file's path, when the marker
   * is older than that file: it was about an earlier file of that name (a data directory rolled
   * back to a snapshot writes the same names again), never about this one, and is removed.
   */
  read(name: string, walPath?: string): Marker | null {
    for (const kind of KINDS) {
      try {
        const marker = { kind, message: readFileSync(this.path(name, kind), 'utf8') };
        if (walPath === undefined || !this.outdated(name, kind, walPath)) return marker;
        this.remove(name); // so that the pusher stores this file, which it took for stored
        return null;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    return null;
  }

  /**
   * Whether the marker of `name` was written before the WAL file at walPath was last changed: its
   * ctime, which the kernel sets from this host's clock (an mtime can be set from anywhere), a
   * second of slack for a spool on a file system with coarse times. A marker wrongly taken for
   * outdated costs a second store of the file ("already archived"); so does one that cannot be
   * compared.
   */
  outdated(name: string, kind: MarkerKind, walPath: string): boolean {
    try {
      return statSync(this.path(name, kind)).mtimeMs + OUTDATED_SLACK_MS < statSync(walPath).ctimeMs;
    } catch {
      return true; // either is gone: not known to be about this file (fails closed: the file is stored again)
    }
  }

  /**
   * The repositories the markers were written for ("repoN LOCATION"), as the last pusher recorded
   * them (pusher.repos); null when none is recorded (or it cannot be read).
   */
  recordedRepositories(): string[] | null {
    try {
      return JSON.parse(readFileSync(join(this.dir, 'pusher.repos'), 'utf8')) as string[];
    } catch {
      return null;
    }
  }

  /**
   * The pg_wal directory (as the pusher's settings name it) whose files the markers here answer
   * for: written by a pusher as it starts, read by archive_command (Node and the shell), so that a
   * spool two clusters share (one stanza name, one spool-path) never answers one's file with the other's marker.
   */
  recordPgWal(pgWal: string): void {
    writeFileAtomicSync(join(this.dir, 'pusher.pgwal'), `${pgWal}\n`, false, 0o640);
  }

  /** Makes the markers here answer for `pgWal`: those written for another pg_wal are forgotten first. */
  claimFor(pgWal: string): void {
    if (this.pgWalOwner() === pgWal) return;
    this.forgetMarkers();
    this.recordPgWal(pgWal);
  }

  pgWalOwner(): string | null {
    try {
      return readFileSync(join(this.dir, 'pusher.pgwal'), 'utf8').replace(/\n$/, '');
    } catch {
      return null;
    }
  }

  /** Synced: the records parked when the repositories changed are parked by the list before it (pusher-start.ts). */
  recordRepositories(repos: string[]): void {
    writeFileAtomicSync(join(this.dir, 'pusher.repos'), JSON.stringify(repos), true, 0o640);
  }

  /** When the marker of `name` says it was true (its mtime, ms), or null without one. */
  markerTime(name: string): number | null {
    for (const kind of KINDS) {
      try {
        return statSync(this.path(name, kind)).mtimeMs;
      } catch {
        /* not this kind */
      }
    }
    return null;
  }

  /** Removes every marker here (not the drop records), and with `repositories` those of the per-repository directories. */
  forgetMarkers(repositories = true): void {
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      if (entry.isFile() && /^.+\.(ok|dropped|error)$/.test(entry.name)) unlinkSync(join(this.dir, entry.name));
      else if (repositories && entry.isDirectory() && /^repo\d+$/.test(entry.name)) new PushSpool(join(this.dir, entry.name)).forgetMarkers();
    }
  }

  /**
   * `asOfMs`: when what the marker says began to be true of the file (an "ok" from when the file
   * was read), its mtime: a file rewritten after it was read, while it was being stored, then
   * has a marker older than itself (outdated), not one that looks newer.
   */
  write(name: string, kind: MarkerKind, message = '', asOfMs?: number): void {
    const final = this.path(name, kind);
    const tmp = `${final}.tmp-${process.pid}`;
    writeFileSync(tmp, message, { mode: 0o640 });
    if (asOfMs !== undefined) utimesSync(tmp, asOfMs / 1000, asOfMs / 1000);
    renameSync(tmp, final);
    // One marker per file: a new outcome replaces an older one.
    for (const other of KINDS) if (other !== kind) this.removeKind(name, other);
  }

  remove(name: string): void {
    for (const kind of KINDS) this.removeKind(name, kind);
  }

  /** WAL file name → marker kind, for every marker present. */
  list(): Map<string, MarkerKind> {
    const out = new Map<string, MarkerKind>();
    for (const entry of readdirSync(this.dir)) {
      const m = /^(.+)\.(ok|dropped|error)$/.exec(entry);
      if (m) out.set(m[1]!, m[2] as MarkerKind);
    }
    return out;
  }

  /** What stopped the last background pusher before it could do anything (read by archive_command). */
  writeFatal(message: string): void {
    writeFileSync(join(this.dir, 'pusher.error'), message, { mode: 0o640 });
  }

  readFatal(): string | null {
    try {
      return readFileSync(join(this.dir, 'pusher.error'), 'utf8');
    } catch {
      return null;
    }
  }

  clearFatal(): void {
    try {
      unlinkSync(join(this.dir, 'pusher.error'));
    } catch {
      /* none */
    }
  }

  /** Keeps a drop record until the repository can take it. */
  savePendingDrop(id: string, record: object): void {
    const dir = join(this.dir, 'drops');
    makeDirsSync(dir, 0o750, true);
    // Synced (file and directory) before the server is let go of the files it records.
    writeFileAtomicSync(join(dir, `${id}.json`), JSON.stringify(record), true, 0o640);
  }

  pendingDrops(): { id: string; record: unknown }[] {
    const dir = join(this.dir, 'drops');
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return [];
    }
    return entries
      .filter((e) => e.endsWith('.json'))
      .sort()
      .map((e) => ({ id: e.slice(0, -5), record: JSON.parse(readFileSync(join(dir, e), 'utf8')) as unknown }));
  }

  forgetPendingDrop(id: string): void {
    unlinkSync(join(this.dir, 'drops', `${id}.json`));
  }

  /**
   * Keeps a copy of a small WAL file (a .history or .backup file) this repository could not take
   * while the queue was past its limit, to store there once it can: the server is let go of it,
   * since another repository has it.
   */
  saveOwed(name: string, source: string): void {
    const dir = join(this.dir, 'owed');
    makeDirsSync(dir, 0o750, true);
    // The only copy this repository will get: synced (file and directory) before the server lets it go.
    writeFileAtomicSync(join(dir, name), readFileSync(source), true, 0o640);
  }

  /** The copies kept by saveOwed: file name → path. */
  owed(): Map<string, string> {
    const dir = join(this.dir, 'owed');
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return new Map();
    }
    return new Map(entries.filter((e) => !/\.tmp(-\d+)?$/.test(e)).map((e) => [e, join(dir, e)]));
  }

  forgetOwed(name: string): void {
    unlinkSync(join(this.dir, 'owed', name));
  }

  private path(name: string, kind: MarkerKind): string {
    return join(this.dir, `${name}.${kind}`);
  }

  private removeKind(name: string, kind: MarkerKind): void {
    try {
      unlinkSync(this.path(name, kind));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

function parkedLocation(dir: string): string | null {
  try {
    return readFileSync(join(dir, 'location'), 'utf8');
  } catch {
    return null;
  }
}
