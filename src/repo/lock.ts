// A repository lock: an exclusively created file holding pid and host. A lock
// whose process is gone on this host is stale and taken over. Commands that
// change shared state (stanza-create, later backup and expire) hold it;
// archive-push needs none because each file lands by an atomic rename.

import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  /** What the holder runs with, for a newcomer to compare (the background pusher's options). */
  settings?: string[];
}

export class RepoLock {
  private constructor(private readonly path: string) {}

  static acquire(dir: string, name: string, command: string, settings?: string[]): RepoLock {
    const path = join(dir, `${name}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o640);
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), command, at: new Date().toISOString(), ...(settings ? { settings } : {}) }));
        closeSync(fd);
        return new RepoLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw storageError('create lock file', path, e);
        const holder = readHolder(path);
        if (holder && holder.host === hostname() && !processAlive(holder.pid)) {
          try {
            unlinkSync(path); // stale: its process is gone
          } catch {
            /* someone else took it over */
          }
          continue;
        }
        throw new PgpitrError('ERR_TARGET', `repository is locked by ${holder ? `"${holder.command}" (pid ${holder.pid} on ${holder.host})` : 'another command'}`, {
          hint: `wait for it to finish; if that process no longer exists, remove ${path}`,
        });
      }
    }
    throw new PgpitrError('ERR_TARGET', `could not take the repository lock ${path}`);
  }

  release(): void {
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    return null;
  }
}

/** Whether a process of this host is alive (EPERM: it is, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process holding a lock, if it is alive on this host (or on another host: then assumed alive). */
export function liveLockHolder(dir: string, name: string): LockHolder | null {
  const holder = readHolder(join(dir, `${name}.lock`));
  if (!holder) return null;
  return holder.host !== hostname() || processAlive(holder.pid) ? holder : null;
}
