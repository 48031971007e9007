// `pgpitr info`: per stanza, its backups (a record whose process is gone reads
// as interrupted), the archive's first and last segment per
// timeline, gaps, the last file archived and when, WAL dropped by the
// asynchronous archive-push queue limit, stale temporary files left by
// interrupted pushes; text or JSON.

import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { readStanza, checkRepository } from '../../repo/stanza.js';
import { scanArchive } from '../../repo/archive-store.js';
import { summarizeArchive } from '../../repo/archive-summary.js';
import { listDrops } from '../../repo/drops.js';
import { ExitCode } from '../exit-codes.js';
import { PgpitrError } from '../../common/errors.js';
import { PosixStorage } from '../../storage/posix/posix-storage.js';
import { listRecords, recordProcessAlive } from '../../repo/backup-set/record.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';

const HELP = `pgpitr info describes the stanzas of a repository and their WAL archive.

Usage:
  pgpitr info --repo PATH [--stanza NAME] [--set ID] [--output json]

Backups (id, state, times, LSNs, WAL range, sizes, annotations; with --set, one backup and its
databases), and the archive's WAL ranges per timeline with gaps.

${REPO_OPTIONS_HELP}`;

export async function infoCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('info', argv, { needStanza: false, extra: { set: { type: 'string' } } });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  checkRepository(o.repo);
  const names = o.stanza ? [o.stanza] : readdirSync(o.repo).filter((n) => existsSync(join(o.repo, n, 'stanza.json'))).sort();
  const storage = new PosixStorage(o.repo);
  const set = o.extra['set'] as string | undefined;
  const report = [];
  for (const name of names) {
    const stanza = readStanza(o.repo, name);
    const scan = scanArchive(o.repo, name);
    const backups = (await listRecords(storage, name)).filter((r) => set === undefined || r.id === set).map(backupSummary);
    report.push({
      stanza: name,
      system_identifier: stanza.system_identifier,
      pg_version: stanza.pg_major,
      backups,
      archive: summarizeArchive(scan.files, stanza.wal_segment_size),
      dropped_wal: listDrops(o.repo, name),
      stale_temp_files: scan.staleTemps.length,
    });
  }
  if (set !== undefined && report.every((r) => r.backups.length === 0)) {
    throw new PgpitrError('ERR_NOT_FOUND', `backup "${set}" does not exist`, { hint: 'pgpitr info without --set lists the backups' });
  }
  if (o.output === 'json') {
    process.stdout.write(JSON.stringify({ repository: o.repo, stanzas: report }, null, 2) + '\n');
    return ExitCode.Ok;
  }
  const lines: string[] = [`repository: ${o.repo}`];
  for (const s of report) {
    lines.push(`stanza: ${s.stanza}`, `    system ${s.system_identifier}, PostgreSQL ${s.pg_version}`);
    if (s.backups.length === 0) lines.push('    backups: none');
    for (const b of s.backups) {
      lines.push(`    ${b.type} backup ${b.id}: ${b.state}${b.pinned ? ' (pinned)' : ''}, ${b.start_time} to ${b.stop_time ?? '...'}`);
      if (b.state === 'complete') {
        lines.push(`        timeline ${b.timeline}, LSN ${b.start_lsn} to ${b.stop_lsn}, WAL ${b.wal.first} to ${b.wal.last} (${b.wal.source === 'included' ? 'in the backup' : 'in the archive'})`);
        lines.push(`        ${mib(b.size ?? 0)} of data, ${mib(b.stored_size ?? 0)} stored, ${b.files} files`);
      }
      if (b.error) lines.push(`        error: ${b.error}`);
      for (const [k, v] of Object.entries(b.annotations)) lines.push(`        ${k}: ${v}`);
      if (set !== undefined) for (const d of b.databases) lines.push(`        database ${d.name} (oid ${d.oid}): ${mib(d.size)}`);
    }
    if (s.archive.timelines.length === 0) lines.push('    archive: empty');
    for (const t of s.archive.timelines) {
      lines.push(`    timeline ${t.timeline}: ${t.min} ... ${t.max} (${t.segments} segments)`);
      for (const g of t.gaps) lines.push(`        GAP: ${g.missing} segment(s) missing, ${g.from} to ${g.to}`);
    }
    if (s.archive.last_archived) lines.push(`    last archived: ${s.archive.last_archived.name} at ${s.archive.last_archived.at}`);
    if (s.archive.history_files.length) lines.push(`    history files: ${s.archive.history_files.join(', ')}`);
    if (s.stale_temp_files > 0) lines.push(`    stale temporary files: ${s.stale_temp_files} (left by interrupted pushes; the next push into their directory or pgpitr check removes them)`);
    for (const d of s.dropped_wal) {
      lines.push(`    DROPPED: ${d.count} segment(s) ${d.first} to ${d.last} at ${d.at} on ${d.host}: the archive-push queue (${mib(d.queued_bytes)}) exceeded archive-push-queue-max (${mib(d.queue_max_bytes)})`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
  return ExitCode.Ok;
}

/** A backup as info shows it: a record left "running" by a process that is gone reads as interrupted. */
function backupSummary(r: BackupRecord) {
  return {
    id: r.id,
    type: r.type,
    state: r.state === 'running' && !recordProcessAlive(r) ? 'interrupted' : r.state,
    start_time: r.start_time,
    stop_time: r.stop_time,
    timeline: r.timeline,
    start_lsn: r.start_lsn,
    stop_lsn: r.stop_lsn,
    wal: { first: r.start_wal, last: r.stop_wal, source: r.wal },
    size: r.size,
    stored_size: r.stored_size,
    files: r.file_count,
    pg_version_num: r.pg_version_num,
    backup_from: r.backup_from,
    databases: r.databases,
    annotations: r.annotations,
    pinned: r.pinned,
    error: r.error,
  };
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MiB`;
}
