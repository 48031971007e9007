// START_REPLICATION PHYSICAL on a replication session: hands XLogData to a
// receiver, answers keepalives, sends periodic Standby Status Updates, and ends
// the stream (CopyDone) once the receiver's stop position has been received.
// Shared by `basebackup -X stream` and, later, `receive-wal`.

import type { Session } from './session.js';
import { encodeCopyDone, encodeQuery, encodeStandbyStatus } from './frontend-messages.js';
import { decodeReplicationPayload } from './copy-payloads.js';
import { PgpitrError } from '../common/errors.js';
import { formatLsn } from '../postgres/lsn.js';
import { quoteIdent } from './session.js';

export interface WalReceiver {
  /** Bytes of WAL starting at `start`; may return a promise to apply backpressure. */
  write(start: bigint, data: Buffer): void | Promise<void>;
  /** Position up to which WAL is durably stored (reported as flush). */
  flushed(): bigint;
  /** Position up to which WAL was received and written (reported as write); defaults to flushed(). */
  written?(): bigint;
  /**
   * Synchronous replication: make what was written durable and report it as soon as
   * everything the server sent so far is written (as pg_receivewal --synchronous).
   */
  readonly reportEveryWrite?: boolean;
  /** Makes everything written so far durable (called before such a report; never twice at once). */
  syncNow?(): void | Promise<void>;
}

const SYNC_REPORT_BYTES = 4 * 1024 * 1024;

export interface StreamOptions {
  slot?: string | undefined;
  /**
   * Report the flush position also without a slot (receive-wal --synchronous). Without either,
   * as pg_receivewal, it is reported invalid: the server must never take this receiver for a
   * synchronous standby (synchronous_standby_names = '*'), acknowledging commits that are not on
   * the one meant to be, and waiting on this one's syncs.
   */
  synchronous?: boolean | undefined;
  start: bigint;
  timeline: number;
  statusIntervalMs: number;
}

export interface StreamEnd {
  /** Set when the server ended the timeline: where the next one starts. */
  nextTimeline?: { timeline: number; start: string } | undefined;
  received: bigint;
}

export class WalStream {
  private stopAt: bigint | null = null;
  private received = 0n;
  private copyDoneSent = false;
  private inCopy = false;

  constructor(private readonly session: Session) {}

  /** Ask the stream to end once everything before `lsn` has been received. */
  stopWhenReached(lsn: bigint): void {
    this.stopAt = lsn;
    this.maybeStop();
  }

  /** Whether the stream was asked to end before `received` (stopWhenReached, stopNow). */
  stopRequested(received: bigint): boolean {
    return this.stopAt !== null && received >= this.stopAt;
  }

  /** End the stream now (after the receiver has what it needs, or on failure). */
  stopNow(): void {
    this.stopAt = 0n;
    this.maybeStop();
  }

  /** Set by run(): a Standby Status Update with the receiver's positions. */
  private sendStatus: (() => void) | null = null;

  private maybeStop(): void {
    if (this.inCopy && !this.copyDoneSent && this.stopAt !== null && this.received >= this.stopAt) this.endCopy();
  }

  /**
   * Ends our side of the stream, reporting first where the receiver got to (as
   * pg_basebackup does): a slot's restart_lsn then follows what was received,
   * even when the stream ends before the status timer or a server request.
   */
  private endCopy(): void {
    this.sendStatus?.();
    this.copyDoneSent = true;
    this.session.send(encodeCopyDone());
  }

  async run(opts: StreamOptions, rx: WalReceiver): Promise<StreamEnd> {
    const slot = opts.slot ? `SLOT ${quoteIdent(opts.slot)} ` : '';
    this.received = opts.start;
    this.copyDoneSent = false; // run again along the next timeline: a new stream
    this.session.send(encodeQuery(`START_REPLICATION ${slot}PHYSICAL ${formatLsn(opts.start)} TIMELINE ${opts.timeline}`));
    const reportFlush = opts.slot !== undefined || opts.synchronous === true;
    const sendStatus = (replyRequested = false) => {
      const flushed = rx.flushed();
      const write = rx.written?.() ?? flushed;
      this.session.send(encodeStandbyStatus({ write, flush: reportFlush ? flushed : 0n, apply: 0n, replyRequested }));
    };
    this.sendStatus = sendStatus;
    // Synchronous mode: flush and report when the socket is drained, or every 4 MiB
    // of a stream that never pauses, rather than after every message.
    // The sync runs beside the stream (one at a time): receiving goes on while the
    // disk works, and the report follows the sync it covers. What arrived during a
    // sync is synced right after it: under a steady stream, syncs follow each other
    // and the flush position trails by about one sync's worth of WAL.
    let unreported = 0;
    let syncing = false;
    let syncFailure: Error | null = null;
    // Once run() has returned or thrown (a connection lost), a sync still running reports nothing:
    // the session may be closed, and a throw from its handler would end the process.
    let ended = false;
    const flushAndReport = (): void => {
      if (ended || unreported === 0 || this.copyDoneSent || syncing) return;
      unreported = 0;
      syncing = true;
      Promise.resolve(rx.syncNow?.()).then(
        () => {
          syncing = false;
          if (ended) return;
          try {
            if (!this.copyDoneSent) sendStatus();
          } catch (e) {
            syncFailure ??= e as Error;
            return;
          }
          if (unreported > 0) flushAndReport();
        },
        (e: Error) => {
          syncing = false;
          syncFailure ??= e;
          if (ended) return;
          try {
            this.stopNow();
          } catch {
            // the session is gone: run() fails with its own error
          }
        },
      );
    };
    if (rx.reportEveryWrite) this.session.beforeWait = flushAndReport;
    let timer: NodeJS.Timeout | null = null;
    let nextTimeline: StreamEnd['nextTimeline'];
    let columns: string[] = [];
    let row: (string | null)[] | null = null;
    try {
      for (;;) {
        const msg = await this.session.next();
        switch (msg.type) {
          case 'CopyBothResponse':
            this.inCopy = true;
            sendStatus(); // at once, as pg_basebackup: a slot without restart_lsn now holds WAL from the start
            if (opts.statusIntervalMs > 0) {
              timer = setInterval(() => {
                if (!this.copyDoneSent) sendStatus();
              }, opts.statusIntervalMs);
              timer.unref();
            }
            this.maybeStop();
            break;
          case 'CopyData': {
            if (syncFailure) throw syncFailure;
            const p = decodeReplicationPayload(msg.data);
            if (p.kind === 'xlog') {
              if (p.data.length > 0) {
                const r = rx.write(p.start, p.data);
                if (r) await r;
              }
              const end = p.start + BigInt(p.data.length);
              if (end > this.received) this.received = end;
              if (rx.reportEveryWrite) {
                unreported += p.data.length;
                if (unreported >= SYNC_REPORT_BYTES) flushAndReport();
              }
              this.maybeStop();
            } else if (p.replyRequested && !this.copyDoneSent) {
              // As pg_receivewal: what was written is made durable first, so that the reply
              // covers all of it. A server shutting down asks, and waits for its walsender
              // until the flush position reaches what it sent: a reply that lags keeps
              // `pg_ctl stop` waiting for the next sync (measured: 6.4 s against 0.9 s).
              if (rx.syncNow && rx.written && !syncing && rx.flushed() < rx.written()) {
                syncing = true;
                try {
                  await rx.syncNow();
                } finally {
                  syncing = false;
                }
              }
              if (!this.copyDoneSent) sendStatus();
            }
            break;
          }
          case 'CopyDone':
            // The server ended the stream (end of timeline) or answered our CopyDone.
            if (!this.copyDoneSent) this.endCopy();
            this.inCopy = false;
            break;
          case 'RowDescription':
            columns = msg.fields;
            break;
          case 'DataRow':
            row = msg.values;
            break;
          case 'CommandComplete':
            if (columns.length >= 2 && row) {
              nextTimeline = { timeline: Number(row[0]), start: row[1] ?? '' };
            }
            columns = [];
            row = null;
            break;
          case 'ErrorResponse':
            return await this.session.failAfterError(msg.fields, 'WAL streaming');
          case 'ReadyForQuery':
            if (syncFailure) throw syncFailure;
            return { nextTimeline, received: this.received };
          default:
            throw new PgpitrError('ERR_PROTOCOL', `unexpected ${msg.type} during WAL streaming`);
        }
      }
    } finally {
      ended = true;
      if (timer) clearInterval(timer);
      this.session.beforeWait = null;
      this.sendStatus = null;
    }
  }
}
