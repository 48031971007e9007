// Worker-thread entry for parallel zstd compression (see parallel.ts): loads
// the zstd WebAssembly module once, compresses each block it receives into one
// complete frame and sends it back, transferring the memory.

import { parentPort, workerData } from 'node:worker_threads';
import type { BlockJob, BlockResult, BlockWorkerConfig } from './parallel.js';
import { loadZstdWasm, compressZstdBlock } from './zstd.js';

const config = workerData as BlockWorkerConfig;
const port = parentPort;
if (port) {
  const z = loadZstdWasm();
  port.on('message', (job: BlockJob) => {
    z.then((codec) => {
      const out = compressZstdBlock(codec, Buffer.from(job.buffer, 0, job.length), config.level);
      const data = new Uint8Array(out.length);
      data.set(out);
      const result: BlockResult = { id: job.id, data, buffer: job.buffer };
      port.postMessage(result, [data.buffer as ArrayBuffer, job.buffer]);
    }).catch((e: unknown) => {
      const result: BlockResult = { id: job.id, error: e instanceof Error ? e.message : String(e) };
      port.postMessage(result);
    });
  });
}
