// The keep-alive HTTP(S) agents of one S3 repository: its TLS trust
// (storage-ca-file replaces the default CAs, as pgBackRest's option does;
// storage-verify-tls=n turns verification off) and, with storage-host, the
// address connected to (the endpoint's name still goes in the Host header and
// the TLS server name, so virtual-host buckets and certificates keep working).
// SDK-free.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { lookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { readFileSync } from 'node:fs';
import { PgpitrError } from '../../common/errors.js';
import type { S3StorageSettings } from './s3-settings.js';

export interface S3Agents {
  http: HttpAgent;
  https: HttpsAgent;
  destroy(): void;
}

export function makeS3Agents(settings: S3StorageSettings, maxSockets: number): S3Agents {
  let ca: Buffer | undefined;
  if (settings.caFile !== undefined) {
    try {
      ca = readFileSync(settings.caFile);
    } catch (e) {
      throw new PgpitrError('ERR_USAGE', `cannot read ${settings.label}-storage-ca-file "${settings.caFile}": ${(e as Error).message}`, {
        cause: e,
        hint: `give a readable PEM file of the CA that signed the certificate of ${settings.endpoint}`,
      });
    }
  }
  const storageHost = settings.storageHost;
  const connectTo: LookupFunction | undefined =
    storageHost === undefined ? undefined : ((_host, options, callback) => lookup(storageHost, options, callback)) as LookupFunction;
  const common = { keepAlive: true, maxSockets, ...(connectTo ? { lookup: connectTo } : {}) };
  const http = new HttpAgent(common);
  const https = new HttpsAgent({ ...common, rejectUnauthorized: settings.verifyTls, ...(ca ? { ca } : {}) });
  return {
    http,
    https,
    destroy: () => {
      http.destroy();
      https.destroy();
    },
  };
}
