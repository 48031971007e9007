// Worker-thread entry for parallel lz4 / zstd compression (see parallel.ts):
// compresses each block it receives into one complete frame with its own
// WebAssembly codec instance and sends the frame back, transferring its memory.

import { parentPort, workerData } from 'node:worker_threads';
import type { BlockJob, BlockResult, BlockWorkerConfig } from './parallel.js';
import { Lz4BlockCompressor } from './lz4.js';
import { ZstdBlockCompressor } from './zstd.js';

const config = workerData as BlockWorkerConfig;
const port = parentPort;
if (port) {
  const codec =
    config.algorithm === 'zstd'
      ? new ZstdBlockCompressor({ level: config.level, long: config.long })
      : new Lz4BlockCompressor(config.level);
  port.on('message', (job: BlockJob) => {
    let result: BlockResult;
    try {
      const out = codec.compress(Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength));
      result = { id: job.id, data: out };
      port.postMessage(result, [out.buffer as ArrayBuffer]);
    } catch (e) {
      result = { id: job.id, error: e instanceof Error ? e.message : String(e) };
      port.postMessage(result);
    }
  });
}
