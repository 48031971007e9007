// The files a parallel backup writes on this host: created empty, one at a time,
// by a creator that starts with the copy and works from the other end of the
// list than the readers (the smallest files first, while they copy the largest).
// A file the readers reach first is claimed by its job, which creates it itself.
//
// Why: creating a file is the costliest step of copying a small one (an inode
// to find and the directory to lock: 0.4-1 ms each on the ext4 this was
// measured on, where an 8 kB copy takes ~0.05 ms). Readers that create all
// their files spend the end of a backup, when only small files are left,
// waiting on each other's directory lock and repeating each other's inode
// search; a creator alone would make them wait for it on a cluster of small
// files. Together, the creator's work is done while the readers are busy with
// the large files (bench/RESULTS.md, parallel backup).

import { close, constants, fchmod, open } from 'node:fs';
import { storageError } from '../../common/errors.js';

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

interface Entry {
  path: string;
  mode: number;
  /** Set once the creator took it: settles when the file is there (or could not be made). */
  made: Promise<void> | null;
  /** A job took it first and creates it. */
  claimed: boolean;
}

export class DestCreator {
  private readonly entries = new Map<string, Entry>();
  private readonly order: Entry[];
  private next: number;
  private stopped = false;
  private loopDone: Promise<void> = Promise.resolve();

  /** `files` in the order the readers take them: the creator starts from the last. */
  constructor(files: readonly { path: string; mode: number }[]) {
    this.order = files.map((f) => ({ path: f.path, mode: f.mode, made: null, claimed: false }));
    for (const e of this.order) this.entries.set(e.path, e);
    this.next = this.order.length - 1;
  }

  /** Starts creating in the background; stop() ends it. A file it could not make is left to its job. */
  start(): void {
    this.loopDone = this.loop();
  }

  stop(): void {
    this.stopped = true;
  }

  /** Settles once the creator has ended: met a claimed file, reached the end of the list, or stopped (its last file made). */
  drained(): Promise<void> {
    return this.loopDone;
  }

  /**
   * Who creates `path`: 'job' (the caller, with O_EXCL as usual: the creator has not
   * reached it and now never will), or a promise that settles once the creator made it
   * (the caller then opens it without creating it).
   */
  claim(path: string): 'job' | Promise<void> {
    const e = this.entries.get(path);
    if (!e) return 'job';
    if (e.made) return e.made;
    e.claimed = true;
    return 'job';
  }

  private async loop(): Promise<void> {
    while (!this.stopped && this.next >= 0) {
      const e = this.order[this.next--]!;
      if (e.claimed) break; // the readers have come this far from the other end: all is claimed
      e.made = createEmpty(e.path, e.mode);
      try {
        await e.made;
      } catch {
        // The job that copies this file will be told (its claim rejects) and fails the backup.
      }
    }
  }
}

/** Made with exactly `mode` (the source file's), which the run's umask would narrow (a 0644 file to 0600). */
function createEmpty(path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, CREATE, mode, (e, fd) => {
      if (e) {
        reject(storageError('create', path, e));
        return;
      }
      fchmod(fd, mode, (m) => {
        close(fd, (c) => {
          if (m) reject(storageError('set the mode of', path, m));
          else if (c) reject(storageError('close', path, c));
          else resolve();
        });
      });
    });
  });
}
