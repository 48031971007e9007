// `pgpitr info`: per stanza, the archive's first and last segment per
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

const HELP = `pgpitr info describes the stanzas of a repository and their WAL archive.

Usage:
  pgpitr info --repo PATH [--stanza NAME] [--output json]

${REPO_OPTIONS_HELP}`;

export async function infoCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('info', argv, { needStanza: false });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  checkRepository(o.repo);
  const names = o.stanza ? [o.stanza] : readdirSync(o.repo).filter((n) => existsSync(join(o.repo, n, 'stanza.json'))).sort();
  const report = names.map((name) => {
    const stanza = readStanza(o.repo, name);
    const scan = scanArchive(o.repo, name);
    return {
      stanza: name,
      system_identifier: stanza.system_identifier,
      pg_version: stanza.pg_major,
      archive: summarizeArchive(scan.files, stanza.wal_segment_size),
      dropped_wal: listDrops(o.repo, name),
      stale_temp_files: scan.staleTemps.length,
    };
  });
  if (o.output === 'json') {
    process.stdout.write(JSON.stringify({ repository: o.repo, stanzas: report }, null, 2) + '\n');
    return ExitCode.Ok;
  }
  const lines: string[] = [`repository: ${o.repo}`];
  for (const s of report) {
    lines.push(`stanza: ${s.stanza}`, `    system ${s.system_identifier}, PostgreSQL ${s.pg_version}`);
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

function mib(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MiB`;
}
