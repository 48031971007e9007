// `pgpitr check`: is this server archiving into this stanza? Checks the
// repository and stanza, the server's system identifier, wal_level,
// archive_mode and archive_command, then switches WAL and waits until that
// segment is in the repository, and that no WAL is missing from the archive
// (gaps, explained by the records of WAL dropped by the asynchronous queue
// limit), and that a restore could reach that segment (check-recovery.ts:
// a restorable backup and unbroken WAL from it; with --backup-age-max, a
// recent enough backup). Each problem is a finding with what to change. It also counts and
// removes the stale temporary files of interrupted pushes and commands (repo/archive-temp.ts, repo/stale-temps.ts),
// probes whether the store enforces exclusive create (repo/conditional-create.ts),
// and on object storage aborts incomplete multipart uploads older than a day
// (repo/stale-uploads.ts); those three in check-repository.ts.
// cli/commands/check.ts prints the findings.

import { openSqlClient } from '../protocol/sql-client.js';
import type { ConnectionSettings } from '../protocol/conninfo.js';
import { readStanza } from '../repo/stanza.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { findStored, listArchive } from '../repo/archive-store.js';
import { listDrops } from '../repo/drops.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { isPgpitrError } from '../common/errors.js';
import type { Finding } from './check-finding.js';
import { archiverFinding, readArchiver } from './check-archiver.js';
import { errorFinding } from './check-finding.js';
import { conditionalCreateFinding, markerFinding, staleTempFinding, staleUploadsFinding } from './check-repository.js';
import { backupAgeOnly, recoveryFindings } from './check-recovery.js';
import { standbyArchived } from './check-standby.js';
import { idleSlotsNote, RECEIVER_HINT, RECEIVER_WALSENDERS, receiverStored } from './check-receiver.js';
import { stanzaMismatch } from '../repo/stanza-match.js';
import { splitBrain } from './check-split-brain.js';
import { cutByServer } from './check-command-length.js';

export type { Finding } from './check-finding.js';

export interface CheckRequest {
  /** Every repository to check (the segment check waits for each). */
  repos: NumberedRepository[];
  /** The options that name the repositories in archive_command (for the hint when it is not set): --repo PATH, --config FILE, ... */
  repoArgs?: string[];
  stanza: string;
  connection: ConnectionSettings;
  archiveTimeoutMs: number;
  /** --backup-age-max: the newest restorable backup must have ended within this time. */
  backupAgeMaxMs?: number | undefined;
  /** --no-switch: judge by the last segment the server archived instead of switching WAL. */
  noSwitch?: boolean | undefined;
}

export async function checkStanza(req: CheckRequest): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const stanzas = new Map<number, StanzaInfo>();
  for (const { index, repo } of req.repos) {
    try {
      stanzas.set(index, await readStanza(repo, req.stanza));
      add({ check: 'repository', repo: index, ok: true, message: `stanza "${req.stanza}" found in ${repo.location}` });
    } catch (e) {
      add({ ...errorFinding('repository', e), repo: index });
      continue;
    }
    add({ ...(await staleTempFinding(repo, req.stanza)), repo: index });
    add({ ...(await markerFinding(repo)), repo: index });
    add({ ...(await conditionalCreateFinding(repo)), repo: index });
    const uploads = await staleUploadsFinding(repo);
    if (uploads) add({ ...uploads, repo: index });
  }
  // --backup-age-max is answered for every repository whose stanza was read, whatever stopped the rest (monitoring graphs it).
  const withAges = async () => {
    for (const { index, repo } of req.backupAgeMaxMs === undefined ? [] : req.repos) if (stanzas.has(index) && !findings.some((f) => f.check === 'backup age' && (f.repo ?? index) === index)) add({ ...(await backupAgeOnly(repo, req.stanza, stanzas.get(index)!.wal_segment_size, Date.now(), req.backupAgeMaxMs!, req.repos.length > 1 ? ` --repo ${index}` : '')), repo: index });
    return findings;
  };
  // What the repositories alone say (backup age, continuity, a restore's reach), judged up to the newest segment each holds.
  const judgeAlone = async (repos: NumberedRepository[]) => {
    for (const { index, repo } of repos) if (stanzas.has(index) && !findings.some((f) => f.repo === index && !f.ok)) await judgeRecovery(index, repo, null, req, stanzas.get(index)!.wal_segment_size, add);
  };
  let client: SqlClient;
  try {
    client = await openSqlClient(req.connection, 'pgpitr check');
  } catch (e) {
    // A finding like the others: the repositories' are said too (a server down and a stanza misnamed).
    // Not a bad option (exit 2) nor a signal.
    if (isPgpitrError(e) && (e.code === 'ERR_USAGE' || e.code === 'ERR_INTERRUPTED')) throw e;
    add(errorFinding('connection', e));
    await judgeAlone(req.repos);
    return withAges();
  }
  try {
    const s = (
      await client.query<{ sysid: string; wal_level: string; archive_mode: string; archive_command: string; standby: boolean; version: string; segsize: string }>(
        "select system_identifier::text as sysid, current_setting('wal_level') as wal_level, current_setting('archive_mode') as archive_mode, current_setting('archive_command') as archive_command, pg_is_in_recovery() as standby, current_setting('server_version_num') as version, (select setting from pg_settings where name = 'wal_segment_size') as segsize from pg_control_system()",
      )
    ).rows[0]!;
    for (const [index, stanza] of stanzas) {
      // The stanza's system, major version and segment size (pg_resetwal --wal-segsize keeps the system: every archive-push then fails).
      const differs = stanzaMismatch({ systemIdentifier: s.sysid, major: Math.floor(Number(s.version) / 10000), walSegmentSize: Number(s.segsize) }, stanza);
      add({ check: 'system identifier', repo: index, ok: differs === null, message: differs === null ? `server is system ${s.sysid}` : `the server ${differs} (stanza "${req.stanza}")`, ...(differs === null ? {} : { hint: 'point --stanza at the stanza of this cluster, or create one for it (a cluster upgraded or rebuilt since needs a stanza of its own)' }) });
    }
    const walOk = s.wal_level === 'replica' || s.wal_level === 'logical';
    add({ check: 'wal_level', ok: walOk, message: `wal_level is ${s.wal_level}`, ...(walOk ? {} : { hint: "ALTER SYSTEM SET wal_level = 'replica' and restart the server" }) });
    // A stanza fed by a WAL receiver (pgpitr receive-wal, pg_receivewal: named so in pg_stat_replication,
    // or reporting no replay position, as a standby does) needs no archive_command: judged by what the
    // WAL switch below finds in the stanza, archive_mode and archive_command then only said. Only with
    // archive_mode off: on, with no archive_command, the server keeps every segment for a command to come.
    const receiver = !s.standby && s.archive_mode === 'off' && (await client.query(`select 1 from pg_stat_replication where ${RECEIVER_WALSENDERS}`)).rows.length > 0;
    const byReceiver = (f: Finding): Finding => (f.ok || !receiver ? f : { check: f.check, ok: true, message: `warning: ${f.message}; a WAL receiver streams from this server (a walsender reporting no replay in pg_stat_replication): judged by ${req.noSwitch ? 'what it stored' : 'the WAL switch below'}` });
    // A standby archives only with 'always'; with 'on', its primary does, and it will once promoted. It cannot switch WAL.
    const modeOk = s.archive_mode === 'always' || s.archive_mode === 'on';
    add(byReceiver({
      check: 'archive_mode',
      ok: modeOk,
      message: `archive_mode is ${s.archive_mode}${s.standby ? ', and the server is a standby' : ''}${s.standby && s.archive_mode === 'on' ? ': it archives once promoted (its primary does now)' : ''}${s.archive_mode === 'off' && !receiver && !s.standby ? await idleSlotsNote(client) : ''}`,
      ...(modeOk ? {} : { hint: s.standby ? "ALTER SYSTEM SET archive_mode = 'on' (it archives once promoted) or 'always', and restart it" : "ALTER SYSTEM SET archive_mode = 'on' and restart the server" }),
    }));
    const cmd = s.archive_command;
    // The stanza may be written --stanza=S, --stanza S, each word quoted ('--stanza' 'S'), or PGPITR_STANZA=S.
    const stanzaRe = req.stanza.replace(/[.]/g, '\\.');
    const forStanza = new RegExp(`(--stanza['"]?[= ]['"]?|PGPITR_STANZA=['"]?)${stanzaRe}(['"\\s]|$)`).test(cmd);
    const pgpitr = /archive-push/.test(cmd);
    // pgpitr for another stanza (or none named) is wrong for sure; a command whose text does not tell (a
    // wrapper script) is judged by what the WAL switch below finds in the stanza, not by its text.
    const cut = cutByServer(cmd, Number(s.version));
    const cmdOk = cmd !== '' && (!pgpitr || forStanza) && cut === null;
    const first = req.repos[0]?.repo;
    const shown = hideSecrets(cmd);
    const cmdFinding: Finding = {
      check: 'archive_command',
      ok: cmdOk,
      message: cut !== null ? `archive_command is ${cut} bytes once %p and %f are replaced: PostgreSQL ${Math.floor(Number(s.version) / 10000)} cuts it at 1023 without a word, so its end is lost ('${shown}')` : !cmd ? 'archive_command is empty' : pgpitr ? `archive_command is '${shown}'` : cmd === '(disabled)' && s.archive_mode === 'off' ? "archive_command is '(disabled)': not read while archive_mode is off" : `archive_command is '${shown}' (not pgpitr archive-push as far as its text tells: ${req.noSwitch ? 'what it archived last is looked for in the stanza below' : 'the WAL switch below checks that it archives into the stanza'})`,
      ...(cut !== null ? { hint: 'shorten it: a wrapper script holding the command (archive_command = \'/path/script %p\'), a configuration file (--config, or PGPITR_CONFIG) for the options, shorter paths' } : cmdOk ? {} : { hint: `set archive_command = 'pgpitr archive-push ${pushArgs(req.repoArgs ?? ['--repo', first?.location ?? 'PATH']).join(' ')} --stanza ${req.stanza} %p' and reload the server` }),
    };
    // With a receiver, only an archive_command that archives nothing is said rather than failed (one that archives elsewhere stays wrong).
    add(cmd === '' ? byReceiver(cmdFinding) : cmdFinding);
    // The server's settings right, archiving is judged on every repository whose own findings are
    // (one down, or another system's, has said so and does not hide the others: archive-push to
    // several fails while one fails, which only the WAL switch on the others shows).
    const usable = req.repos.filter((r) => stanzas.has(r.index) && findings.every((f) => f.repo !== r.index || f.ok));
    const serverOk = findings.every((f) => f.repo !== undefined || f.ok);
    if (serverOk && usable.length > 0) {
      const on = { ...req, repos: usable };
      // A standby (archive_mode always) cannot switch WAL: judged by what it archived, as --no-switch.
      let reached: Reached | null = null;
      try {
        reached = s.standby && s.archive_mode === 'on'
          ? await standbyArchived(client, on.repos, req.stanza, add)
          : req.noSwitch && receiver ? await receiverStored(client, on.repos, req.stanza, add)
          : req.noSwitch || s.standby ? await lastArchived(client, on, add) : await switchAndWait(client, on, add, receiver);
      } catch (e) {
        // A role without the right to switch WAL (or to make the restore point before it), a
        // segment stored twice: a finding, with what to do, rather than the end of the command.
        if (endsCheck(e)) throw e;
        const denied = (e as { code?: string }).code === '42501';
        add(denied ? { check: 'archiving', ok: false, message: (e as Error).message, hint: 'run check as a superuser, or GRANT EXECUTE ON FUNCTION pg_create_restore_point(text), pg_switch_wal() to its role; or give --no-switch (judged by what the server archived last)' } : errorFinding('archiving', e));
      }
      if (reached) {
        for (const { index, repo } of on.repos) {
          if (reached.repos.has(index)) await judgeRecovery(index, repo, reached, req, stanzas.get(index)!.wal_segment_size, add);
        }
      }
    } else if (serverOk) {
      const f = await archiverFinding(client).catch(() => null);
      if (f) add(f);
    } else await judgeAlone(usable); // the server's settings wrong: the repositories are still judged
  } finally {
    await client.end().catch(() => {});
  }
  return withAges();
}

type SqlClient = Awaited<ReturnType<typeof openSqlClient>>;

/**
 * Continuity, a restore's reach and the backup's age in one repository, up to the segment
 * `reached` names, or (null: the server out of reach) the newest segment the repository holds.
 */
async function judgeRecovery(index: number, repo: NumberedRepository['repo'], reached: Reached | null, req: CheckRequest, segmentSize: number, add: (f: Finding) => void): Promise<void> {
  try {
    const files = await listArchive(repo, req.stanza);
    const drops = await listDrops(repo, req.stanza);
    const newest = files.filter((f) => /^[0-9A-F]{24}$/.test(f.name)).reduce<string | null>((m, f) => (m === null || f.name > m ? f.name : m), null);
    const wal = reached?.wal ?? newest;
    if (wal === null) return;
    for (const f of await recoveryFindings({ repo, stanza: req.stanza, segmentSize, files, drops, wal, switched: reached !== null && reached.switched !== false, backupAgeMaxMs: req.backupAgeMaxMs, nowMs: Date.now(), repoArg: req.repos.length > 1 ? ` --repo ${index}` : '' })) add({ ...f, repo: index });
  } catch (e) {
    // One repository's failure (a damaged drop record, its store out of reach): its finding; the others are still judged.
    if (isPgpitrError(e) && (e.code === 'ERR_USAGE' || e.code === 'ERR_INTERRUPTED')) throw e;
    add({ ...errorFinding('recovery', e), repo: index });
  }
}

/** A segment known to be archived, and the repositories holding it. */
interface Reached {
  wal: string;
  repos: Set<number>;
  /** False when judged without a WAL switch (--no-switch, a standby): the segment is the last archived, not one just made. */
  switched?: boolean;
}

/**
 * Switches WAL and waits for that segment to reach every repository (archive-push stores to
 * each); an 'archiving' finding per repository. Null when it reached none.
 */
async function switchAndWait(client: SqlClient, req: CheckRequest, add: (f: Finding) => void, receiver = false): Promise<Reached | null> {
  // A restore point guarantees WAL since the last switch: with none, pg_switch_wal()
  // is a no-op and its segment would never be archived.
  await client.query("select pg_create_restore_point('pgpitr check')");
  const wal = (await client.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name')).rows[0]!.name;
  const deadline = Date.now() + req.archiveTimeoutMs;
  const reached = new Set<number>();
  const archiver = async () => (await client.query<{ failed: string; last_failed_wal: string | null; last: string | null }>('select failed_count::text as failed, last_failed_wal, last_archived_wal as last from pg_stat_archiver')).rows[0];
  const failedAtStart = Number((await archiver())?.failed ?? 0);
  let settled = false;
  for (;;) {
    for (const { index, repo } of req.repos) {
      if (!reached.has(index) && (await findStored(repo, req.stanza, wal)) !== null) reached.add(index);
    }
    if (reached.size === req.repos.length || Date.now() >= deadline || settled) break;
    // The server's own word ends the wait early when its archiving of the segment failed again and
    // again (the archiver tries three times in a row). Archived but not in the stanza yet is waited
    // for: a wrapper may store it later (a spool, a store whose listing lags).
    const a = await archiver();
    if (a?.last_failed_wal === wal && Number(a.failed) - failedAtStart >= 3) settled = true;
    else await new Promise((r) => setTimeout(r, 200));
  }
  let why = '';
  if (reached.size < req.repos.length) {
    const a = await archiver();
    const last = a?.last ?? null;
    why =
      last !== null && last.slice(0, 8) === wal.slice(0, 8) && last.slice(0, 24) >= wal
        ? ` (the server archived it: archive_command stores it somewhere else than this stanza)`
        : (await splitBrain(req, wal)) ?? (a && a.failed !== '0' ? ` (pg_stat_archiver: ${a.failed} failures, last failed ${a.last_failed_wal}; see the server log)`
        : receiver ? ' (a WAL receiver streams from this server, and archive_mode is off: is it receive-wal with this --repo and --stanza?)' : '');
  }
  for (const { index } of req.repos) {
    const found = reached.has(index);
    add({
      check: 'archiving',
      repo: index,
      ok: found,
      message: found ? `WAL segment ${wal} reached the repository` : `WAL segment ${wal} did not reach the repository within ${req.archiveTimeoutMs / 1000}s${why}`,
      data: { segment: wal, reached: found },
      ...(found ? {} : { hint: receiver && why.startsWith(' (a WAL receiver') ? RECEIVER_HINT : ARCHIVING_HINT }),
    });
  }
  if (reached.size === 0) return null;
  // Files before ours may still be in flight when several are stored at once
  // (asynchronous mode): the archiver reports them in order. A receiver stores them in order, and
  // with archive_mode off the archiver reports nothing.
  // The archiver failing again and again since the switch (three tries in a row, then it waits
  // for a new segment or a minute) ends the wait too, FAILING_GRACE_MS after its third failure
  // (an outage of a few seconds on a busy server, retried at once, still passes): said below,
  // rather than after the whole archive-timeout.
  let archived = receiver;
  let failingSince: number | null = null;
  while (!archived && Date.now() < deadline) {
    const a = await archiver();
    if (a?.last && a.last.slice(0, 8) === wal.slice(0, 8) && a.last >= wal) archived = true;
    else if (Number(a?.failed ?? 0) - failedAtStart >= 3 && Date.now() - (failingSince ??= Date.now()) >= FAILING_GRACE_MS) break;
    else await new Promise((r) => setTimeout(r, 200));
  }
  // In the stanza (a receiver put it there?) while the server's archiver fails on it: pg_wal keeps
  // every segment from there on until the disk is full.
  const a = archived ? null : await archiver();
  if (a && Number(a.failed) > failedAtStart) {
    add({ check: 'archiving', ok: false, message: `the server's archiver fails (pg_stat_archiver: ${Number(a.failed) - failedAtStart} failure(s) since the switch, last failed ${a.last_failed_wal}), although ${wal} reached the stanza: pg_wal keeps every segment it has not archived`, hint: ARCHIVING_HINT });
  }
  return { wal, repos: reached };
}

/** How long check still waits for the segment to be reported archived once the archiver failed three times since the switch. */
const FAILING_GRACE_MS = 10_000;

const ARCHIVING_HINT = 'look at the server log for archive_command errors, at pg_stat_archiver, and at pusher.log in the spool (asynchronous archiving)';

/**
 * --no-switch (for monitoring, which must not make a WAL segment per run): the last segment the
 * server says it archived (pg_stat_archiver) must be in every repository, and archiving must not
 * be failing since; an 'archiving' finding per repository. Null when there is nothing to go on.
 */
async function lastArchived(client: SqlClient, req: CheckRequest, add: (f: Finding) => void): Promise<Reached | null> {
  const a = (await readArchiver(client))!;
  const at = (v: number | null) => (v === null ? null : new Date(v));
  let lastAt = at(a.lastAtMs);
  const failedAt = at(a.failedAtMs);
  if (failedAt && (!lastAt || failedAt > lastAt)) {
    add({ check: 'archiving', ok: false, message: `archiving is failing: ${a.failed} failed at ${failedAt.toISOString()}${lastAt ? `; the last file archived was ${a.last} at ${lastAt.toISOString()}` : ''}`, hint: ARCHIVING_HINT });
    return null;
  }
  if (a.last === null || lastAt === null) {
    // Statistics reset (a crash restart discards them, as does pg_stat_reset_shared('archiver')):
    // the newest .done file in archive_status is what the archiver stored last, if one is left.
    const done = await newestDone(client);
    const why = 'the server reports no file archived (pg_stat_archiver is empty: its statistics were reset, by a crash restart or pg_stat_reset_shared, or this is a standby that does not archive)';
    if (done === 'denied') {
      add({ check: 'archiving', ok: false, message: why, hint: 'run check without --no-switch against the primary once' });
      return null;
    }
    if (done === null) {
      // Nothing left to judge by is not a failure; files waiting too long still are.
      add({ check: 'archiving', ok: true, message: `warning: ${why}, and archive_status holds no .done file: judged at the next run once it archives a file; check without --no-switch judges it now` });
      await stuckFinding(client, req, add, null, null);
      return null;
    }
    a.last = done.name;
    lastAt = done.at;
    add({ check: 'archiving', ok: true, message: `warning: pg_stat_archiver is empty (its statistics were reset, by a crash restart or pg_stat_reset_shared): judged by archive_status, whose newest .done file is ${done.name}` });
  }
  if (await stuckFinding(client, req, add, a.last, lastAt)) return null;
  const reached = new Set<number>();
  const last = a.last;
  for (const { index, repo } of req.repos) {
    const found = (await findStored(repo, req.stanza, last)) !== null;
    // Not stored because asynchronous archive-push dropped it (its record says so): judged on
    // (continuity and recovery name the hole), not blamed on where archive_command stores.
    const dropped = found ? undefined : (await listDrops(repo, req.stanza)).find((d) => d.first.slice(0, 8) === last.slice(0, 8) && d.first <= last.slice(0, 24) && d.last >= last.slice(0, 24));
    if (found || dropped) reached.add(index);
    add({
      check: 'archiving',
      repo: index,
      ok: found,
      message: dropped
        ? `${last}, the last file the server archived (${lastAt.toISOString()}), is not in the repository: it was dropped at ${dropped.at} on ${dropped.host} (the archive-push queue exceeded archive-push-queue-max)`
        : `${last}, the last file the server archived (${lastAt.toISOString()}), is ${found ? '' : 'not '}in the repository`,
      ...(found ? {} : { hint: dropped ? 'find why archiving fell behind (pusher.log in the spool) or raise archive-push-queue-max; point-in-time recovery cannot cross the dropped WAL: take a new full backup' : 'archive_command stores into another repository or stanza than this check reads: compare them' }),
    });
  }
  // What recovery is judged against: a segment, or the segment a backup history file names; a
  // .partial or .history file (a promotion a moment ago) gives none: the next run will.
  const wal = /^[0-9A-F]{24}(\.[0-9A-F]{8}\.backup)?$/.test(a.last) ? a.last.slice(0, 24) : null;
  if (wal === null) {
    add({ check: 'recovery', ok: true, message: `warning: the last file archived, ${a.last}, is not a segment: recovery is judged at the next run` });
    return null;
  }
  return reached.size > 0 ? { wal, repos: reached, switched: false } : null;
}

/**
 * A hung archive_command fails nothing: files waiting longer than archive-timeout say it (a
 * finding; true). Aged by the server's clock (check often runs elsewhere, with a clock of its own).
 */
async function stuckFinding(client: SqlClient, req: CheckRequest, add: (f: Finding) => void, last: string | null, lastAt: Date | null): Promise<boolean> {
  try {
    const w = (await client.query<{ n: string; oldest: string | number | null; age: string | number | null }>("select count(*)::text as n, (extract(epoch from min(modification)) * 1000)::float8 as oldest, (extract(epoch from now() - min(modification)) * 1000)::float8 as age from pg_ls_archive_statusdir() where name like '%.ready'")).rows[0]!;
    if (w.oldest !== null && Number(w.age) > req.archiveTimeoutMs) {
      add({ check: 'archiving', ok: false, message: `archiving is stuck or behind: ${w.n} file(s) wait to be archived, the oldest since ${new Date(Number(w.oldest)).toISOString()}${last && lastAt ? `; the last archived was ${last} at ${lastAt.toISOString()}` : ''}`, hint: ARCHIVING_HINT });
      return true;
    }
  } catch (e) {
    // Only a privilege missing is a warning; a connection lost or a timeout is the command's failure.
    if ((e as { code?: string }).code !== '42501') throw e;
    add({ check: 'archiving', ok: true, message: 'warning: could not list the files waiting to be archived (pg_ls_archive_statusdir needs superuser or pg_monitor): a hung archive_command would go unseen' });
  }
  return false;
}

/** The file archive_status says was archived last (its newest .done), null when none is left, 'denied' without the right to list it. */
async function newestDone(client: SqlClient): Promise<{ name: string; at: Date } | null | 'denied'> {
  try {
    const r = (await client.query<{ name: string; at: string | number }>("select left(name, -5) as name, (extract(epoch from modification) * 1000)::float8 as at from pg_ls_archive_statusdir() where name like '%.done' order by modification desc, name desc limit 1")).rows[0];
    return r ? { name: r.name, at: new Date(Number(r.at)) } : null;
  } catch (e) {
    if ((e as { code?: string }).code !== '42501') throw e;
    return 'denied';
  }
}

/**
 * What ends check with its own exit code rather than being a finding: a bad option (2), a
 * connection lost (9: node-postgres's own errors, class 08 and 57 SQLSTATEs), a signal.
 */
function endsCheck(e: unknown): boolean {
  if (isPgpitrError(e)) return e.code === 'ERR_USAGE' || e.code === 'ERR_CONNECTION_LOST' || e.code === 'ERR_INTERRUPTED';
  const code = (e as { code?: unknown } | undefined)?.code;
  return !(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) || /^(08|57)/.test(code);
}


/** The options of a suggested archive_command: archive-push stores into every repository and refuses --repo N (check --repo 2 has it). */
function pushArgs(args: string[]): string[] {
  return args.filter((a, i) => !(a === '--repo' && /^\d+$/.test(args[i + 1] ?? '')) && !(/^\d+$/.test(a) && args[i - 1] === '--repo') && !/^--repo=\d+$/.test(a));
}

/**
 * archive_command as shown: the values of assignments such as PGPITR_REPO1_CIPHER_PASS=... or
 * AWS_SECRET_ACCESS_KEY=..., and of options such as --repo1-cipher-pass=... or --repo1-s3-key-secret X
 * (refused by pgpitr, but a wrapper may take them), hidden.
 */
export function hideSecrets(cmd: string): string {
  const secretName = '[A-Za-z0-9_-]*(?:pass|password|secret|key|token)[A-Za-z0-9_-]*';
  const value = `('[^']*'|"[^"]*"|[^\\s']+)`;
  return cmd
    .replace(new RegExp(`\\b(${secretName}=)${value}`, 'gi'), '$1***')
    // A separate value only after an option whose name ends so (--passive %p keeps its %p).
    .replace(new RegExp(`(--[A-Za-z0-9_-]*(?:pass|password|secret|key|token)\\s+)${value}`, 'gi'), '$1***')
    // A URL's password (https://user:pw@host, postgresql://u:pw@h/db): up to the last '@' of the word.
    .replace(/(\/\/[^\s:@/'"]*):[^\s'"]*@/g, '$1:***@');
}
