// Renders backup progress: one redrawn line on a terminal (like pg_basebackup
// -P), a line per second otherwise, or JSON lines for programs
// (--progress-format=json). Also prints -v messages.

import type { BackupReporter, ProgressSnapshot } from '../backup/reporter.js';
import { PROGRAM, printLine } from './output.js';

export interface ViewOptions {
  progress: boolean;
  format: 'text' | 'json';
  verbose: number;
  out?: NodeJS.WriteStream;
  /** Said once on a terminal, without -P or -v, when the wait for the server's checkpoint begins (a spread one can take minutes). */
  checkpointWaitNote?: string | undefined;
}

export class ProgressView implements BackupReporter {
  private last = 0;
  private lastPhase = '';
  private drawn = false;
  private noted = false;
  private readonly out: NodeJS.WriteStream;
  private readonly started = Date.now();

  constructor(private readonly opts: ViewOptions) {
    this.out = opts.out ?? process.stderr;
  }

  progress(s: ProgressSnapshot): void {
    if (!this.opts.progress) {
      this.noteCheckpointWait(s);
      return;
    }
    const now = Date.now();
    const phaseChanged = s.phase !== this.lastPhase;
    const interval = this.opts.format === 'json' ? 500 : this.out.isTTY ? 200 : 1000;
    if (!phaseChanged && now - this.last < interval) return;
    this.last = now;
    this.lastPhase = s.phase;
    if (this.opts.format === 'json') {
      this.out.write(JSON.stringify(jsonOf(s, now - this.started)) + '\n');
      return;
    }
    const line = textOf(s, this.opts.verbose > 0);
    if (this.out.isTTY) {
      const width = this.out.columns ?? 120;
      this.out.write('\r' + line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length + 10)));
      this.drawn = true;
    } else {
      this.out.write(line + '\n');
    }
  }

  info(message: string): void {
    if (this.opts.verbose === 0) return;
    this.breakLine();
    if (this.opts.format === 'json' && this.opts.progress) {
      this.out.write(JSON.stringify({ type: 'message', level: 'info', message }) + '\n');
    } else printLine(message);
  }

  warn(message: string): void {
    this.breakLine();
    if (this.opts.format === 'json' && this.opts.progress) {
      this.out.write(JSON.stringify({ type: 'message', level: 'warning', message }) + '\n');
    } else printLine(`warning: ${message}`);
  }

  serverNotice(text: string): void {
    this.breakLine();
    if (this.opts.format === 'json' && this.opts.progress) {
      this.out.write(JSON.stringify({ type: 'message', level: 'warning', message: text }) + '\n');
    } else this.out.write(text + '\n');
  }

  /** Final redraw so the line shows 100% and ends with a newline. */
  done(s: ProgressSnapshot | null): void {
    if (s && this.opts.progress) {
      this.last = 0;
      this.lastPhase = '';
      this.progress(s);
    }
    this.breakLine();
  }

  private noteCheckpointWait(s: ProgressSnapshot): void {
    const note = this.opts.checkpointWaitNote;
    if (note === undefined || this.noted || this.opts.verbose > 0 || !this.out.isTTY || s.phase !== 'waiting for checkpoint to finish') return;
    this.noted = true;
    this.out.write(`${PROGRAM}: ${note}\n`);
  }

  private breakLine(): void {
    if (this.drawn) {
      this.out.write('\n');
      this.drawn = false;
    }
  }
}

function kb(n: number): number {
  return Math.floor(n / 1024);
}

function textOf(s: ProgressSnapshot, withFile: boolean): string {
  // An estimate the copy outgrew (files grew meanwhile) is raised to what was done, as pg_basebackup does.
  const total = s.bytesTotal === null ? null : Math.max(s.bytesTotal, s.bytesDone);
  const pct = total ? Math.min(100, Math.floor((s.bytesDone * 100) / total)) : null;
  const size = total !== null ? `${kb(s.bytesDone)}/${kb(total)} kB (${pct}%)` : `${kb(s.bytesDone)} kB`;
  const ts = `${s.tablespacesDone}/${s.tablespacesTotal} tablespace${s.tablespacesTotal === 1 ? '' : 's'}`;
  const file = withFile && s.currentFile && s.phase === 'streaming database files' ? ` (${s.currentFile})` : '';
  return `${size}, ${ts}, ${s.phase}${file}`;
}

function jsonOf(s: ProgressSnapshot, elapsedMs: number): Record<string, unknown> {
  return {
    type: 'progress',
    phase: s.phase,
    bytes_done: s.bytesDone,
    bytes_total: s.bytesTotal,
    percent: s.bytesTotal ? Math.min(100, Math.round((s.bytesDone * 1000) / s.bytesTotal) / 10) : null,
    tablespaces_done: s.tablespacesDone,
    tablespaces_total: s.tablespacesTotal,
    elapsed_seconds: Math.round(elapsedMs / 100) / 10,
  };
}
