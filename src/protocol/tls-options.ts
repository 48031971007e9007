// TLS settings as libpq applies them, turned into Node's tls options for
// node-postgres (which does the handshake):
// - the root certificate file (sslrootcert, else ~/.postgresql/root.crt): with
//   verify-ca / verify-full it must exist; with require (or prefer) it is used when it
//   exists, which makes require behave as verify-ca, as in libpq; sslrootcert=system
//   trusts the usual roots and demands verify-full;
// - verify-full also checks the host name (host, not hostaddr) against the certificate;
// - the client certificate (sslcert, else ~/.postgresql/postgresql.crt), when it exists,
//   with its key (sslkey, else ~/.postgresql/postgresql.key), which others must not read;
// - sslcrl (else ~/.postgresql/root.crl), sslpassword, ssl_min/max_protocol_version.
// Messages are libpq's.

import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import { PgpitrError, usageError } from '../common/errors.js';
import type { ConnectionSettings } from './conninfo.js';

/**
 * node:tls, loaded when a handshake asks for it (it is loaded by then): this module is part of
 * every command's start-up, and node:tls with node:crypto costs ~10 ms more than node:net alone.
 */
const loadTls = (): typeof import('node:tls') => createRequire(import.meta.url)('node:tls') as typeof import('node:tls');

/** The sslmodes that encrypt; prefer and allow become one of these or disable per attempt. */
export type EncryptingSslMode = 'require' | 'verify-ca' | 'verify-full';

const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

export function tlsOptions(settings: ConnectionSettings, sslmode: EncryptingSslMode, configuredMode: string): ConnectionOptions {
  const dir = join(homedir(), '.postgresql');
  const options: ConnectionOptions = {};
  const verifyHost = sslmode === 'verify-full';
  if (settings.sslrootcert === 'system') {
    if (!verifyHost) throw usageError(`weak sslmode "${configuredMode}" may not be used with sslrootcert=system (use "verify-full")`);
    options.rejectUnauthorized = true; // Node's trusted roots
  } else {
    const rootcert = settings.sslrootcert || join(dir, 'root.crt');
    const ca = readIfExists(rootcert, 'root certificate');
    if (ca !== undefined) {
      options.ca = ca;
      options.rejectUnauthorized = true;
      const crl = readIfExists(settings.sslcrl || join(dir, 'root.crl'), 'SSL certificate revocation list');
      if (crl !== undefined) options.crl = crl;
    } else if (sslmode !== 'require') {
      throw new PgpitrError('ERR_CONNECTION', `root certificate file "${rootcert}" does not exist`, {
        hint: "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.",
      });
    } else options.rejectUnauthorized = false;
  }
  // The chain is checked by rejectUnauthorized; the name only with verify-full.
  const name = settings.host ?? 'localhost';
  options.checkServerIdentity = verifyHost ? (_: string, cert: PeerCertificate) => loadTls().checkServerIdentity(name, cert) : () => undefined;

  if (settings.sslcertmode !== 'disable') Object.assign(options, clientCertificate(settings, dir));
  if (settings.sslpassword) options.passphrase = settings.sslpassword;
  options.minVersion = protocolVersion('ssl_min_protocol_version', settings.ssl_min_protocol_version) ?? 'TLSv1.2';
  const max = protocolVersion('ssl_max_protocol_version', settings.ssl_max_protocol_version);
  if (max !== undefined) options.maxVersion = max;
  return options;
}

function clientCertificate(settings: ConnectionSettings, dir: string): Pick<ConnectionOptions, 'cert' | 'key'> {
  const certFile = settings.sslcert || join(dir, 'postgresql.crt');
  const cert = readIfExists(certFile, 'certificate');
  if (cert === undefined) return {};
  const keyFile = settings.sslkey || join(dir, 'postgresql.key');
  let st;
  try {
    st = statSync(keyFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw connectionSetupError(`certificate present, but not private key file "${keyFile}"`);
    throw connectionSetupError(`could not stat private key file "${keyFile}": ${(e as Error).message}`);
  }
  if (!st.isFile()) throw connectionSetupError(`private key file "${keyFile}" is not a regular file`);
  const euid = process.geteuid?.() ?? -1;
  if ((st.uid === euid && (st.mode & 0o077) !== 0) || (st.uid === 0 && (st.mode & 0o037) !== 0)) {
    throw connectionSetupError(
      `private key file "${keyFile}" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root`,
      `chmod 0600 "${keyFile}"`,
    );
  }
  return { cert, key: readFileSync(keyFile) };
}

function readIfExists(path: string, what: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw connectionSetupError(`could not open ${what} file "${path}": ${(e as Error).message}`);
  }
}

function protocolVersion(key: string, value: string | undefined): ConnectionOptions['minVersion'] | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(TLS_VERSIONS as readonly string[]).includes(value)) throw usageError(`invalid ${key} value: "${value}"`, `use one of ${TLS_VERSIONS.join(', ')}`);
  return value as ConnectionOptions['minVersion'];
}

function connectionSetupError(message: string, hint?: string): PgpitrError {
  return new PgpitrError('ERR_CONNECTION', message, hint === undefined ? {} : { hint });
}
