// The background fetcher's side of pgpitr-spool-get (bin/): restore_command's
// shell asks the running fetcher for a WAL file it has not prefetched (a
// history file, the segment recovery reads again at its end, one past the
// window) by writing <spool>/ask.<shell pid>-<random>: the file's name, the directory
// restore_command runs in, its %p and archive-get's options, each ended by a
// NUL. The fetcher answers ask.<...>.found (the file, whole), .absent (the
// archive does not hold it: decided after the request, as archive-get decides)
// or .none (no answer: the shell runs archive-get, which decides and reports);
// it renames the request .taken at once, so that a shell whose request nobody
// takes (a fetcher killed, its pid reused) gives up within seconds.
// A Node start is ~0.1 s; the answer, a few milliseconds of a running process.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../repo/lock.js';

/** A request of restore_command's shell. */
export interface SpoolAsk {
  /** The WAL file asked for (%f). */
  name: string;
  /** Where restore_command runs (the data directory, when PostgreSQL runs it). */
  cwd: string;
  /** Its %p, as given (relative to cwd when PostgreSQL runs it). */
  dest: string;
  /** archive-get's options in restore_command. */
  args: string[];
}

/**
 * Answers one request: true, the file was written at `into`; false, the archive does not hold it
 * (decided as archive-get decides, after the request); null, no answer (archive-get then runs).
 */
export type AskAnswerer = (ask: SpoolAsk, into: string) => Promise<boolean | null>;

const ASK = /^ask\.(\d+)-[A-Za-z0-9]+$/;
const ANSWER = /^ask\.(\d+)-[A-Za-z0-9]+(\.tmp|\.taken|\.answer|\.found|\.absent|\.none|\.fetching)(\.pgpitr-tmp)?$/;

/** The requests waiting in a spool listing (names ask.PID-RANDOM). */
export function waitingAsks(names: Iterable<string>): string[] {
  return [...names].filter((n) => ASK.test(n));
}

/** Whether a spool file belongs to a request of a shell still running (clearSpool keeps those). */
export function liveAskFile(name: string): boolean {
  const pid = (ASK.exec(name) ?? ANSWER.exec(name))?.[1];
  return pid !== undefined && processAlive(Number(pid));
}

/** Whether a file name is a request's or its answer's (the prefetch leaves them to this file). */
export function isAskFile(name: string): boolean {
  return ASK.test(name) || ANSWER.test(name);
}

/**
 * Takes request `ask` (ask.PID-RANDOM) of spool `dir` (renamed .taken: the shell then knows a
 * fetcher has it), answers it and lets go of it only once the answer is there. Never throws.
 */
export async function answerAsk(dir: string, ask: string, answerer: AskAnswerer, log: (line: string) => void): Promise<void> {
  const path = join(dir, ask);
  const taken = `${path}.taken`;
  try {
    renameSync(path, taken);
  } catch {
    return; // the shell gave up on it
  }
  let request: SpoolAsk | null = null;
  let outcome: boolean | null = null;
  const into = `${path}.fetching`;
  try {
    request = parseAsk(readFileSync(taken));
    if (request !== null) outcome = await answerer(request, into);
  } catch (e) {
    log(`error: answering ${request?.name ?? ask}: ${(e as Error).message}`);
    outcome = null;
  }
  try {
    if (outcome === true) {
      // Whole before it gets its name: the shell moves it to %p as soon as it sees it.
      const fd = openSync(into, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(into, `${path}.found`);
    } else {
      removeQuietly(into);
      const tmp = `${path}.answer`;
      writeFileSync(tmp, '');
      renameSync(tmp, `${path}.${outcome === false ? 'absent' : 'none'}`);
    }
    if (request !== null) log(`answered ${request.name}: ${outcome === true ? 'fetched' : outcome === false ? 'not in the archive' : 'left to archive-get'}`);
  } catch (e) {
    removeQuietly(into);
    log(`error: answering ${request?.name ?? ask}: ${(e as Error).message}`);
  } finally {
    // Let go of the request (the shell, seeing neither it nor an answer, runs archive-get); the
    // answer of a shell gone meanwhile is removed here (clearSpool removes any left).
    removeQuietly(taken);
    if (!processAlive(Number(ASK.exec(ask)![1]))) for (const s of ['.found', '.absent', '.none']) removeQuietly(path + s);
  }
}

/** The request's fields; null when it is not whole (three fields and the NUL ending the last). */
export function parseAsk(bytes: Buffer): SpoolAsk | null {
  const text = bytes.toString('utf8');
  if (!text.endsWith('\0')) return null;
  const [name, cwd, dest, ...args] = text.slice(0, -1).split('\0');
  if (!name || !cwd || !dest) return null;
  return { name, cwd, dest, args };
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone */
  }
}
