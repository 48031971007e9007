#!/usr/bin/env node
// pgpitr's entry point: picks the command, runs it, and is the only place that
// ends the process (with the exit code of cli/exit-codes.ts).

import { printError } from './output.js';
import { ExitCode, failureExitCode } from './exit-codes.js';
import { PGPITR_VERSION } from '../common/version.js';
import { closestCommand } from './closest-command.js';
import type { PgpitrError } from '../common/errors.js';
import { usageError } from '../common/errors.js';
import { stdoutError } from '../storage/stdout-error.js';

// Standard output that fails (its reader closed the pipe, the disk is full) must
// not end the process with an unhandled 'error' event and a stack trace. A
// command that streams to it (basebackup -D -) fails with the error itself;
// any other output cut short turns a success into exit 5, with the error printed.
let stdoutFailure: Error | null = null;
process.stdout.on('error', (e: Error) => {
  stdoutFailure ??= e;
});
process.on('exit', () => {
  if (stdoutFailure !== null && Number(process.exitCode ?? 0) === 0) {
    printError(stdoutError(stdoutFailure));
    process.exitCode = ExitCode.Storage;
  }
});
// Standard error whose reader is gone (a pipe to head that exited): the messages are lost, not the
// work. The command goes on, cleans up as ever, and exits with its own code (pg_basebackup would die
// of SIGPIPE half-way, its target and the server's backup left behind).
process.stderr.on('error', () => {});

// Commands load on first use: archive-push and archive-get run once per WAL
// file, so start-up must not pay for modules they do not use.
type Run = (argv: string[]) => Promise<number>;
const COMMANDS: Record<string, { load: () => Promise<Run>; summary: string }> = {
  basebackup: { load: async () => (await import('./commands/basebackup.js')).basebackupCommand, summary: 'take a base backup (pg_basebackup compatible)' },
  status: { load: async () => (await import('./commands/status.js')).statusCommand, summary: 'tell whether a backup directory holds a complete backup' },
  'stanza-create': { load: async () => (await import('./commands/stanza-create.js')).stanzaCreateCommand, summary: 'record a cluster in a repository' },
  'stanza-delete': { load: async () => (await import('./commands/stanza-delete.js')).stanzaDeleteCommand, summary: 'remove a stanza: its backups and WAL archive' },
  'archive-push': { load: async () => (await import('./commands/archive-push.js')).archivePushCommand, summary: 'store a WAL file in the repository (archive_command)' },
  'archive-get': { load: async () => (await import('./commands/archive-get.js')).archiveGetCommand, summary: 'fetch a WAL file from the repository (restore_command)' },
  info: { load: async () => (await import('./commands/info.js')).infoCommand, summary: 'describe stanzas and their WAL archive' },
  check: { load: async () => (await import('./commands/check.js')).checkCommand, summary: 'verify that a server archives into its stanza' },
  backup: { load: async () => (await import('./commands/backup.js')).backupCommand, summary: 'take a full, differential or incremental backup into the repository' },
  expire: { load: async () => (await import('./commands/expire.js')).expireCommand, summary: 'remove the backups and WAL a retention policy no longer needs' },
  verify: { load: async () => (await import('./commands/verify.js')).verifyCommand, summary: 're-read every stored file and archived WAL file against its checksum' },
  restore: { load: async () => (await import('./commands/restore.js')).restoreCommand, summary: 'restore a backup and recover to a point in time' },
  'receive-wal': { load: async () => (await import('./commands/receive-wal.js')).receiveWalCommand, summary: 'stream WAL from a server (pg_receivewal compatible, or into a stanza)' },
};

function help(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(13)} ${c.summary}`);
  return `pgpitr ${PGPITR_VERSION}: PostgreSQL backup, WAL archiving and point-in-time recovery

Usage:
  pgpitr COMMAND [OPTION]...

Commands:
${lines.join('\n')}

Run "pgpitr COMMAND --help" for a command's options.
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-?' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`pgpitr ${PGPITR_VERSION}\n`);
    return ExitCode.Ok;
  }
  const command = COMMANDS[name];
  if (name === 'archive-get') failEscapesWith(name);
  if (!command) {
    // Options before the command ("pgpitr --stanza main archive-get ..."): in restore_command, that
    // must stop recovery like any archive-get failure, not read as "not in the archive".
    if (name.startsWith('-') && rest.includes('archive-get')) {
      process.stderr.write(`pgpitr: error: options come after the command: "pgpitr archive-get OPTION..."\n`);
      return failureExitCode('archive-get', 'ERR_USAGE');
    }
    const guess = closestCommand(name, Object.keys(COMMANDS));
    process.stderr.write(`pgpitr: error: unknown command "${name}"\npgpitr: hint: ${guess ? `did you mean "${guess}"? ` : ''}run "pgpitr --help" for the list of commands\n`);
    // A mistyped archive-get in restore_command must stop recovery like any archive-get failure.
    return guess ? failureExitCode(guess, 'ERR_USAGE') : ExitCode.Usage;
  }
  // Monitoring that asked for JSON gets JSON on stdout also for a failure before any report (docs/monitoring.md).
  let reported = !(JSON_REPORTS.has(name) && wantsJson(rest));
  if (!reported) {
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((...args: Parameters<typeof write>) => ((reported = true), write(...args))) as typeof process.stdout.write;
  }
  try {
    refuseNonUtf8(rest);
    return await (await command.load())(rest);
  } catch (e) {
    printError(e);
    const code = failureExitCode(name, (e as PgpitrError).code);
    if (!reported) process.stdout.write(JSON.stringify({ format_version: 1, ok: false, error: { message: (e as Error).message, hint: (e as PgpitrError).hint ?? null, exit_code: code } }, null, 2) + '\n');
    return code;
  }
}

const JSON_REPORTS = new Set(['check', 'verify', 'info', 'status']);

function wantsJson(args: string[]): boolean {
  return args.some((a, i) => a === '--output=json' || a === '-ojson' || ((a === '--output' || a === '-o') && args[i + 1] === 'json'));
}

/**
 * Node ends the process with 1 on an uncaught exception or an unhandled rejection, whatever
 * process.exitCode says; for archive-get, 1 means "not in the archive". Such a failure exits
 * with the command's failure code instead.
 */
function failEscapesWith(name: string): void {
  const fail = (e: unknown) => {
    answered = true;
    printError(e);
    process.exit(failureExitCode(name, (e as PgpitrError | undefined)?.code));
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

/**
 * Node reads arguments as UTF-8 and puts U+FFFD where a byte is not: a path or name in another
 * encoding (Latin-1) would name another file, database or restore point than the one meant
 * (black-box run X: restore --delta into a Latin-1 path wrote a new directory and left the cluster
 * as it was, reporting success). Refused.
 */
function refuseNonUtf8(args: string[]): void {
  const bad = args.find((a) => a.includes('\uFFFD'));
  if (bad === undefined) return;
  throw usageError(`argument "${bad}" is not valid UTF-8 (the bytes shown as \uFFFD): pgpitr reads paths and names as UTF-8, and would take it for another one`, 'rename the file or directory (or the database, restore point, tablespace) in UTF-8, or reach it through a link whose path is UTF-8');
}

const argv = process.argv.slice(2);
// If the event loop empties while the command still waits (a promise nobody will settle: a bug),
// Node would end the process with 0, which would read as success (a restore without pg_control,
// an archive-get that wrote nothing). The command's failure code is set until it has answered.
let answered = false;
process.on('exit', () => {
  if (answered) return;
  printError(new Error('the command stopped before it finished (a bug: please report it)'));
  process.exitCode = failureExitCode(argv[0] ?? '', undefined);
});
main(argv).then(
  (code) => {
    answered = true;
    process.exitCode = code;
  },
  (e) => {
    answered = true;
    printError(e);
    process.exitCode = failureExitCode(argv[0] ?? '', undefined);
  },
);
