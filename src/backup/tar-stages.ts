// Chooses the transform stages for one tar file of a base backup (BASE_BACKUP
// sends one per tablespace; PostgreSQL calls them "archives"): decompress what the server
// compressed when we must read inside it, edit members (-R, manifest to
// stdout), compress client-side. Used by both sinks.

import type { Duplex, Writable } from 'node:stream';
import { chain } from '../storage/chain.js';
import type { Chain } from '../storage/chain.js';
import { writeWithBackpressure } from '../storage/stream-util.js';
import { createCompressor, createDecompressor, compressionExtension, prepareCompressor } from '../storage/compress/index.js';
import type { CompressionAlgorithm } from '../storage/compress/index.js';
import type { CompressionChoice } from './options.js';

const SUFFIXES: [string, CompressionAlgorithm][] = [
  ['.gz', 'gzip'],
  ['.lz4', 'lz4'],
  ['.zst', 'zstd'],
];

/** The algorithm a server-compressed tar file name implies (base.tar.gz → gzip). */
export function serverCompressionOf(tarName: string): CompressionAlgorithm | null {
  for (const [suffix, algo] of SUFFIXES) if (tarName.endsWith(suffix)) return algo;
  return null;
}

export function decompressStage(algo: CompressionAlgorithm): Duplex {
  return createDecompressor(algo);
}

export function clientCompressStage(choice: CompressionChoice): Duplex {
  return createCompressor({
    algorithm: choice.algorithm,
    ...(choice.level !== undefined ? { level: choice.level } : {}),
    ...(choice.workers !== undefined ? { workers: choice.workers } : {}),
    ...(choice.long !== undefined ? { long: choice.long } : {}),
  });
}

/** Loads the client-side compressor's native library ahead of the data. */
export function prepareClientCompression(choice: CompressionChoice): void {
  prepareCompressor(choice.algorithm);
}

export function extensionOf(algo: CompressionAlgorithm): string {
  return compressionExtension(algo);
}

/** A Writable that also takes bytes synchronously (plain extraction): throws what its _write would fail with. */
export interface SyncReader extends Writable {
  writeNow(chunk: Buffer): void;
}

/**
 * The tar file being read by a sink that looks inside it (plain extraction, the
 * repository): decompressed first when the server compressed it, then into the
 * sink's reader, with backpressure.
 */
export class TarReading {
  private current: Chain | null = null;
  /** A reader that takes bytes synchronously, written to directly when nothing stands before it. */
  private direct: SyncReader | null = null;

  begin(name: string, reader: Writable | SyncReader): void {
    const algo = serverCompressionOf(name);
    this.current = chain(algo ? [decompressStage(algo)] : [], reader);
    this.direct = !algo && 'writeNow' in reader ? reader : null;
  }

  data(chunk: Buffer): void | Promise<void> {
    // Nearly every message of a backup: the stream's machinery (a callback and a deferred
    // completion per write) cost more than the reader's own work.
    if (this.direct !== null) return this.direct.writeNow(chunk);
    return writeWithBackpressure(this.current!.head, chunk);
  }

  async end(): Promise<void> {
    const c = this.current!;
    this.current = null;
    this.direct = null;
    c.head.end();
    await c.done;
  }

  destroy(): void {
    this.current?.destroy();
  }
}
