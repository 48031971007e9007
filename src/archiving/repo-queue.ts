// One repository's queue in the asynchronous pusher: the files being stored
// there (its own slots: process-max, twice that on remote storage, whose
// round trips would otherwise leave the CPUs idle, but process-max again while
// its stores fail: more requests at a store that does not answer only hold
// more segments in pg_wal), when each last failed (its own retry
// pause), its markers in the spool, its stanza record (read again until it
// can be), and the drop records it has not taken yet. A repository that hangs
// or is down fills only its own queue: the others go on.

import type { PushSpool, MarkerKind } from './spool.js';
import { recordDrop } from '../repo/drops.js';
import type { DropRecord } from '../repo/drops.js';
import { readStanza } from '../repo/stanza.js';
import { stanzaSeenRecently } from '../repo/stanza-presence.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { repoName, repoTitle } from '../repo/numbered-repository.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';

/** Files stored at once per process-max on remote storage (object storage): each store waits on a lookup, then a PUT. */
export const REMOTE_STORES_PER_PROCESS = 2;

export class RepoQueue {
  /** File name → its store, settling once the file is let go. */
  readonly inFlight = new Map<string, Promise<void>>();
  /** File name → when its last store failed. */
  readonly failedAt = new Map<string, number>();
  /** The markers of this repository, as listed at the start of the pusher's turn. */
  markers = new Map<string, MarkerKind>();
  /** The last store here failed (logged when it takes files again). */
  failing = false;
  private flushing: Promise<void> = Promise.resolve();
  private readonly warnedPending = new Set<string>();
  /** Files stored here at once while stores succeed; process-max while they fail. */
  readonly slots: number;
  private readonly failingSlots: number;

  /**
   * `spool`: where this repository's markers and pending drops are (with one repository, the
   * stanza's spool itself: `shared`).
   */
  constructor(
    readonly repository: NumberedRepository,
    readonly spool: PushSpool,
    readonly shared: boolean,
    private readonly stanzaName: string,
    private stanza: StanzaInfo | null,
    private readonly log: (line: string) => void,
    processMax: number,
  ) {
    this.slots = repository.repo.storage.features.remote ? processMax * REMOTE_STORES_PER_PROCESS : processMax;
    this.failingSlots = processMax;
  }

  /** Every slot is taken. */
  get full(): boolean {
    return this.inFlight.size >= (this.failing ? this.failingSlots : this.slots);
  }

  get name(): string {
    return repoName(this.repository);
  }

  get title(): string {
    return repoTitle(this.repository);
  }

  /**
   * The stanza record in this repository, read again when it was last seen over a second ago
   * (repo/stanza-presence.ts): a stanza deleted, or created again for another cluster, while the
   * pusher runs is seen as such, never stored into from an old copy of its record.
   */
  async stanzaInfo(): Promise<StanzaInfo> {
    if (!this.stanza || !stanzaSeenRecently(this.repository.repo, this.stanzaName)) this.stanza = await readStanza(this.repository.repo, this.stanzaName);
    return this.stanza;
  }

  /** Whether to start storing `name` here now: a free slot, and not tried yet, or failed at least `retryMs` ago. */
  wants(name: string, now: number, retryMs: number): boolean {
    if (this.full || this.inFlight.has(name)) return false;
    const kind = this.markers.get(name);
    return kind === undefined || (kind === 'error' && now - (this.failedAt.get(name) ?? 0) >= retryMs);
  }

  settled(name: string): boolean {
    const kind = this.markers.get(name);
    return kind === 'ok' || kind === 'dropped';
  }

  private flushRunning = false;

  /**
   * Starts a flush unless one is running, without waiting for it: the pusher's loop never waits
   * on a repository that is out of reach (each attempt can take seconds of retries), which would
   * hold up the others' stores.
   */
  flushSoon(): void {
    if (this.flushRunning) return;
    this.flushRunning = true;
    this.flushPendingDrops()
      .catch(() => {})
      .finally(() => {
        this.flushRunning = false;
      });
  }

  /** One flush at a time (stores in flight call it concurrently), each after the one before. */
  flushPendingDrops(): Promise<void> {
    this.flushing = this.flushing.catch(() => {}).then(() => this.flushNow());
    return this.flushing;
  }

  /** Moves drop records kept in the spool to the repository, as soon as it takes them. */
  private async flushNow(): Promise<void> {
    for (const { id, record } of this.spool.pendingDrops()) {
      try {
        // Another system's WAL (archive_command names a stanza of another cluster, whose stores are
        // all refused): not a gap of this stanza, whose WAL it never was. Said, and forgotten.
        const system = (record as DropRecord).system_identifier;
        const stanza = system === undefined ? null : await this.stanzaInfo();
        if (stanza !== null && stanza.system_identifier !== system) {
          this.log(`warning: the dropped WAL (${id}) is of database system ${system}, ${this.shared ? 'the repository' : this.title}'s stanza "${this.stanzaName}" of system ${stanza.system_identifier}: not recorded there (archive_command names another cluster's stanza: give this server its own)`);
          this.spool.forgetPendingDrop(id);
          this.warnedPending.delete(id);
          continue;
        }
        await recordDrop(this.repository.repo, this.stanzaName, record as DropRecord);
      } catch (e) {
        if (!this.warnedPending.has(id)) {
          this.log(`warning: cannot record dropped WAL in ${this.shared ? 'the repository' : this.title} yet (kept in the spool, tried again every second): ${(e as Error).message}`);
        }
        this.warnedPending.add(id);
        return;
      }
      this.spool.forgetPendingDrop(id);
      if (this.warnedPending.delete(id)) this.log(`dropped WAL recorded in ${this.shared ? 'the repository' : this.title} (${id})`);
    }
  }
}
