// One copier thread (copy-worker.ts) seen from restore's main thread: run()
// hands it a file and resolves with its answer; one file at a time.

import { Worker } from 'node:worker_threads';
import type { CopyJob, CopyReply } from './copy-job.js';

export class CopyThread {
  private readonly worker: Worker;
  private pending: { resolve(r: CopyReply): void; reject(e: Error): void } | null = null;
  private broken: Error | null = null;

  constructor() {
    this.worker = new Worker(new URL('./copy-worker.js', import.meta.url));
    this.worker.on('message', (reply: CopyReply) => {
      const p = this.pending;
      this.pending = null;
      p?.resolve(reply);
    });
    const fail = (e: Error): void => {
      this.broken ??= e;
      const p = this.pending;
      this.pending = null;
      p?.reject(e);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`a restore copier thread exited (code ${code})`)));
  }

  run(job: CopyJob): Promise<CopyReply> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.pending) return Promise.reject(new Error('a restore copier thread was handed two files at once'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(job);
    });
  }

  async stop(): Promise<void> {
    this.broken ??= new Error('the restore copier thread was stopped');
    await this.worker.terminate();
  }
}
