// `pgpitr info`: per stanza, its backups (a record whose process is gone reads
// as interrupted), the archive's first and last segment per
// timeline, gaps, the last file archived and when, WAL dropped by the
// asynchronous archive-push queue limit, stale temporary files left by
// interrupted pushes, which backups can be restored and the recovery windows
// (commands/info.ts); printed here as text or JSON.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { openEachRepository } from '../../repo/open-repository.js';
import { onEachRepository, throwFirstFailure } from '../each-repository.js';
import type { StanzaFailure, StanzaReport } from '../../commands/info.js';
import { repositoryInfo } from '../../commands/info.js';
import { PgpitrError } from '../../common/errors.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { oneLine } from '../output.js';

const HELP = `pgpitr info describes the stanzas of a repository and their WAL archive.

Usage:
  pgpitr info --repo PATH [--stanza NAME] [--set ID] [--output json]

Backups (id, state, times, LSNs, WAL range, sizes, annotations; with --set, one backup and its
databases), and the archive's WAL ranges per timeline with gaps. Each complete backup that
cannot be restored now says why (a WAL segment it needs missing, a backup it takes files from
gone), and the recovery window says how far back and forward a restore can go: from the end
of the oldest restorable backup to the end of the unbroken WAL after it, along the latest
timeline (as restore without a target follows it); a gap in the archive splits it in two.

${REPO_OPTIONS_HELP}`;

export async function infoCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('info', argv, { needStanza: false, extra: { set: { type: 'string' } } });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const set = o.extra['set'] as string | undefined;
  const outcomes = await onEachRepository(await openEachRepository(o.repos, o.repoSelected), ({ repo }) => repositoryInfo(repo, { stanza: o.stanza || undefined, set }));
  // A backup is in one repository: --set is not found only when no repository that answered holds it.
  if (set !== undefined && outcomes.every((r) => r.error || r.result!.every((st) => !('backups' in st) || st.backups.length === 0)) && outcomes.some((r) => !r.error)) {
    throw new PgpitrError('ERR_NOT_FOUND', `backup "${set}" does not exist`, { hint: 'pgpitr info without --set lists the backups' });
  }
  if (o.output === 'json') {
    // The first repository's report at the top (as before several repositories existed), and each one's.
    const first = outcomes[0]!;
    const each = outcomes.map((r) => ({ repo: r.index, location: r.location, ...(r.error ? { error: r.error.message } : { stanzas: r.result! }) }));
    process.stdout.write(JSON.stringify({ format_version: 1, repository: first.location, stanzas: first.result ?? [], repositories: each }, null, 2) + '\n');
  } else {
    const lines: string[] = [];
    for (const r of outcomes) {
      lines.push(outcomes.length > 1 ? `repository ${r.index}: ${r.location}` : `repository: ${r.location}`);
      if (r.error) lines.push(`    ERROR: ${r.error.message}`);
      else describeStanzas(lines, r.result!, set);
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  throwFirstFailure(outcomes);
  // A stanza that could not be described (the others were): the command fails with its code, once all is printed.
  const failed = outcomes.flatMap((r) => r.result ?? []).find((s): s is StanzaFailure => 'error' in s);
  if (failed) return exitCodeFor(failed.code);
  return ExitCode.Ok;
}

/** How many pages failed, from the warnings as the server words them (five per file, then a file's total, then the whole total); 0: not known. */
function failureCount(messages: string[]): number {
  const whole = messages.map((m) => /^(\d+) total checksum verification failures/.exec(m)).find((x) => x !== null);
  const perFile = new Map<string, number>();
  for (const m of messages) {
    const total = /^file "(.*)" has a total of (\d+) checksum verification failures/.exec(m);
    if (total) perFile.set(total[1]!, Math.max(perFile.get(total[1]!) ?? 0, Number(total[2])));
    const one = /^checksum verification failed in file "(.*)", block/.exec(m);
    if (one && !messages.some((x) => x.startsWith(`file "${one[1]}" has a total of`))) perFile.set(one[1]!, (perFile.get(one[1]!) ?? 0) + 1);
  }
  return Math.max(whole ? Number(whole[1]) : 0, [...perFile.values()].reduce((a, n) => a + n, 0));
}

function describeStanzas(lines: string[], report: (StanzaReport | StanzaFailure)[], set: string | undefined): void {
  for (const s of report) {
    if ('error' in s) {
      lines.push(`stanza: ${s.stanza}`, `    ERROR: ${s.error}`);
      continue;
    }
    lines.push(`stanza: ${s.stanza}`, `    system ${s.system_identifier}, PostgreSQL ${s.pg_version}`);
    if (s.backups.length === 0) lines.push('    backups: none');
    for (const b of s.backups) {
      if (b.record_damaged) {
        lines.push(`    ${b.type} backup ${b.id}: RECORD DAMAGED: ${b.problem}`, '        not restorable until its backup.json is put back from a copy of the repository (pgpitr verify checks the rest)');
        continue;
      }
      lines.push(`    ${b.type} backup ${b.id}: ${b.state}${b.pinned ? (b.pin_target === 'standalone' ? ' (pinned standalone: kept with its own WAL only)' : ' (pinned)') : ''}, ${b.start_time} to ${b.stop_time ?? '...'}`);
      for (const h of b.restoring) lines.push(`      being restored (expire keeps it): ${h}`);
      if (b.state === 'complete') {
        lines.push(`        timeline ${b.timeline}, LSN ${b.start_lsn} to ${b.stop_lsn}, WAL ${b.wal.first} to ${b.wal.last} (${b.wal.source === 'included' ? 'in the backup' : 'in the archive'})`);
        lines.push(`        ${mib(b.size ?? 0)} of data, ${mib(b.stored_size ?? 0)} stored, ${b.files} files`);
        if (b.problem !== null) lines.push(`        NOT RESTORABLE: ${b.problem}`);
        const failed = failureCount(b.page_checksum_failures);
        if (b.page_checksum_failures.length > 0) lines.push(`        DAMAGED PAGES in the source: ${failed > 0 ? `${failed} page checksum failure(s)` : 'page checksum failures'}, stored as they were${set === undefined ? ' (--set names them)' : ':'}`);
        if (set !== undefined) for (const m of b.page_checksum_failures) lines.push(`          ${m}`);
      }
      if (b.prior) lines.push(`        from backup ${b.prior}${b.prior_expired ? ' (expired since: only the files it took from kept backups were needed)' : ''}; ${b.references.length > 0 ? `unchanged files in ${b.references.join(', ')}` : b.state === 'complete' ? 'every file stored in this backup' : 'unchanged files not known yet'}`);
      if (b.error) lines.push(`        error: ${b.error}`);
      for (const [k, v] of Object.entries(b.annotations)) lines.push(`        ${oneLine(k)}: ${oneLine(v)}`);
      if (set !== undefined) for (const d of b.databases) lines.push(`        database ${JSON.stringify(oneLine(d.name))} (oid ${d.oid}): ${d.size === null ? 'size not known (the backup role may not connect to it)' : mib(d.size)}`);
    }
    if (s.defaults_refused) lines.push(`    RESTORE WITHOUT --target-timeline OR --set REFUSES${s.defaults_refused.for_now ? ' FOR NOW' : ''}: ${s.defaults_refused.message}${s.defaults_refused.hint ? `; ${s.defaults_refused.hint}` : ''}`);
    for (const w of s.recovery_windows) {
      lines.push(`    recoverable: from ${w.from.time} (end of backup ${w.from.backup}, LSN ${w.from.lsn})`);
      lines.push(`        to the end of WAL segment ${w.to.segment} ${w.to.segment.slice(0, 8) === w.to.timeline.toString(16).toUpperCase().padStart(8, '0') ? 'on' : 'along'} timeline ${w.to.timeline}${w.to.archived_at ? ` (stored ${w.to.archived_at})` : ''}${w.to.backup !== w.from.backup ? `, through backup ${w.to.backup}` : ''}`);
      if (w.needs) lines.push(`        only with ${w.needs.option}: ${w.needs.why}`);
      if (w.with_set) lines.push(`        past the end of backup ${w.with_set.past}${w.with_set.until === null ? '' : ` and before the end of backup ${w.with_set.until}`}, only with --set ${w.with_set.set ?? '(a backup on the branch: none ended before it)'} (restore without --set refuses: ${w.with_set.why})`);
    }
    if (s.recovery_windows.length === 0 && s.backups.some((b) => b.state === 'complete' || b.record_damaged) && set === undefined) lines.push('    recoverable: NOTHING (no complete backup can be restored)');
    for (const u of s.unreadable_history_files) lines.push(`    UNREADABLE history file ${u}`);
    for (const c of s.conflicting_copies) lines.push(`    CONFLICT: ${c} is stored twice with different content (two clusters archiving into this stanza?): recovery stops there; pgpitr verify names the copies`);
    if (s.archive.timelines.length === 0) lines.push('    archive: empty');
    for (const t of s.archive.timelines) {
      lines.push(`    timeline ${t.timeline}: ${t.min} ... ${t.max} (${t.segments} segment${t.segments === 1 ? '' : 's'})`);
      for (const g of t.gaps) lines.push(`        ${gapWord(g)}: ${g.missing} segment(s) missing, ${g.from} to ${g.to}`);
    }
    for (const g of s.timeline_gaps) lines.push(`    ${gapWord(g)} along timeline ${g.timeline}'s history: ${g.missing} segment(s) missing, ${g.from} to ${g.to}`);
    if (s.archive.last_archived) lines.push(`    last archived: ${s.archive.last_archived.name} at ${s.archive.last_archived.at}`);
    if (s.archive.history_files.length) lines.push(`    history files: ${s.archive.history_files.join(', ')}`);
    if (s.stale_temp_files > 0) lines.push(`    stale temporary files: ${s.stale_temp_files} (left by interrupted pushes or commands; pgpitr check removes them)`);
    for (const d of s.dropped_wal) {
      lines.push(`    DROPPED: ${d.count} segment(s) of ${d.first} to ${d.last} at ${d.at} on ${d.host}: the archive-push queue (${mib(d.queued_bytes)}) exceeded archive-push-queue-max (${mib(d.queue_max_bytes)})`);
    }
  }
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MiB`;
}

/** A gap archiving left, or what expire left out between standalone backups (no point there can be recovered either). */
function gapWord(g: { left_by_expire?: boolean }): string {
  return g.left_by_expire ? 'NOT KEPT (expire, between standalone backups)' : 'GAP';
}
