// A Writable that forwards to the process's standard output with backpressure
// and never closes it (tar to stdout, `-D -`).

import { Writable } from 'node:stream';

export class StdoutWritable extends Writable {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.out.write(chunk)) cb();
    else this.out.once('drain', () => cb());
  }
}
