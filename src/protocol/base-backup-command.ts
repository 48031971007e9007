// Builds the BASE_BACKUP replication command. Servers 15 and later take a
// parenthesized option list (LABEL, PROGRESS, CHECKPOINT, WAL, WAIT, MAX_RATE,
// TABLESPACE_MAP, VERIFY_CHECKSUMS, MANIFEST, MANIFEST_CHECKSUMS, TARGET,
// TARGET_DETAIL, COMPRESSION, COMPRESSION_DETAIL); 13 and 14 the older keyword list.

import { quoteLiteral } from './session.js';

export interface BaseBackupRequest {
  label: string;
  progress: boolean;
  fastCheckpoint: boolean;
  includeWal: boolean; // -X fetch
  waitForWalArchive: boolean; // false = NOWAIT (used with -X stream / none? pg_basebackup waits unless -X stream)
  maxRateKb?: number | undefined;
  tablespaceMap: boolean;
  verifyChecksums: boolean;
  manifest: 'yes' | 'no' | 'force-encode';
  manifestChecksums?: string | undefined;
  target?: { kind: 'client' | 'server' | 'blackhole'; detail?: string | undefined } | undefined;
  serverCompression?: { algorithm: string; detail?: string | undefined } | undefined;
}

export function buildBaseBackupCommand(req: BaseBackupRequest, serverVersionNum: number): string {
  if (serverVersionNum >= 150000) {
    const opts: string[] = [`LABEL ${quoteLiteral(req.label)}`];
    if (req.progress) opts.push('PROGRESS');
    if (req.fastCheckpoint) opts.push(`CHECKPOINT 'fast'`);
    if (req.includeWal) opts.push('WAL');
    if (!req.waitForWalArchive) opts.push('WAIT false');
    if (req.maxRateKb !== undefined) opts.push(`MAX_RATE ${req.maxRateKb}`);
    if (req.tablespaceMap) opts.push('TABLESPACE_MAP');
    if (!req.verifyChecksums) opts.push('VERIFY_CHECKSUMS false');
    opts.push(`MANIFEST ${quoteLiteral(req.manifest)}`);
    if (req.manifest !== 'no' && req.manifestChecksums) opts.push(`MANIFEST_CHECKSUMS ${quoteLiteral(req.manifestChecksums)}`);
    if (req.target && req.target.kind !== 'client') {
      opts.push(`TARGET ${quoteLiteral(req.target.kind)}`);
      if (req.target.detail !== undefined) opts.push(`TARGET_DETAIL ${quoteLiteral(req.target.detail)}`);
    }
    if (req.serverCompression) {
      opts.push(`COMPRESSION ${quoteLiteral(req.serverCompression.algorithm)}`);
      if (req.serverCompression.detail) opts.push(`COMPRESSION_DETAIL ${quoteLiteral(req.serverCompression.detail)}`);
    }
    return `BASE_BACKUP (${opts.join(', ')})`;
  }
  const parts = ['BASE_BACKUP', `LABEL ${quoteLiteral(req.label)}`];
  if (req.progress) parts.push('PROGRESS');
  if (req.fastCheckpoint) parts.push('FAST');
  if (req.includeWal) parts.push('WAL');
  if (!req.waitForWalArchive) parts.push('NOWAIT');
  if (req.maxRateKb !== undefined) parts.push(`MAX_RATE ${req.maxRateKb}`);
  if (req.tablespaceMap) parts.push('TABLESPACE_MAP');
  if (!req.verifyChecksums) parts.push('NOVERIFY_CHECKSUMS');
  parts.push(`MANIFEST ${quoteLiteral(req.manifest)}`);
  if (req.manifest !== 'no' && req.manifestChecksums) parts.push(`MANIFEST_CHECKSUMS ${quoteLiteral(req.manifestChecksums)}`);
  return parts.join(' ');
}
