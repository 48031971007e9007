// What the repository benchmarks (repo-backup.mjs, time-to-recover.mjs) share:
// running tools as the `postgres` user under GNU time, directories that user
// owns, a log line with the time, the median of a run's samples, the page cache
// warmed before a run.

import { spawnSync, execFileSync } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const pgUid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
export const pgGid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());

export const log = (m) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** A directory (and its parents) owned by postgres. */
export const mkdirPg = (p) => {
  mkdirSync(p, { recursive: true });
  chownSync(p, pgUid, pgGid);
  return p;
};

/** Runs a command as postgres under GNU time: wall seconds, peak RSS (MB), user and system CPU seconds. */
export function measured(cmd, args, env, cwd = '/tmp') {
  const r = spawnSync('/usr/bin/time', ['-f', '@@%e %M %U %S', cmd, ...args], {
    uid: pgUid, gid: pgGid, cwd, encoding: 'utf8', maxBuffer: 1 << 26,
    env: { PATH: process.env.PATH, HOME: '/var/lib/postgresql', LANG: 'C', ...env },
  });
  const m = /@@([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { s: Number(m[1]), rssMb: Number(m[2]) / 1024, user: Number(m[3]), sys: Number(m[4]), out: r.stdout };
}

/** Reads every file of a tree (the data directory): this VM evicts cold page cache, which otherwise dominates the noise. */
export function warm(dir) {
  const buf = Buffer.allocUnsafe(1 << 20);
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        let fd;
        try { fd = openSync(p, 'r'); } catch { continue; }
        try { while (readSync(fd, buf, 0, buf.length, null) > 0); } catch { /* vanished */ } finally { closeSync(fd); }
      }
    }
  };
  walk(dir);
}

/** The bytes of the regular files under a directory (a repository's backup). */
export const treeBytes = (d) => readdirSync(d, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? treeBytes(join(d, e.name)) : e.isFile() ? statSync(join(d, e.name)).size : 0), 0);
