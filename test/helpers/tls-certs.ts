// Throw-away certificates for TLS tests, made with openssl: a CA, a server
// certificate it signs (names: localhost, 127.0.0.1 and any extra DNS names
// asked for, such as *.s3.pgpitr.test), a client certificate for a
// given role, and a second CA that signed none of them. The server's files are
// given to the server user (its key 0600, as PostgreSQL demands).

import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChecked, isRoot, serverUserIds } from '../harness/run.js';

export interface TestCertificates {
  dir: string;
  caCert: string;
  otherCaCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

async function openssl(args: string[]): Promise<void> {
  await runChecked('openssl', args);
}

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key };
}

async function signed(dir: string, name: string, subject: string, ca: { cert: string; key: string }, extensions: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subject, '-keyout', key, '-out', csr]);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', cert, '-extfile', ext]);
  chmodSync(key, 0o600);
  return { cert, key };
}

export async function makeTestCertificates(clientRole: string, extraServerNames: readonly string[] = []): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-tls-'));
  // Removed when the test process ends (the servers using them are stopped by then).
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const ca = await makeCa(dir, 'ca');
  const other = await makeCa(dir, 'other-ca');
  const server = await signed(dir, 'server', '/CN=localhost', ca, `subjectAltName=${['DNS:localhost', 'IP:127.0.0.1', ...extraServerNames.map((n) => `DNS:${n}`)].join(',')}\nextendedKeyUsage=serverAuth\n`);
  const client = await signed(dir, 'client', `/CN=${clientRole}`, ca, 'extendedKeyUsage=clientAuth\n');
  if (isRoot()) {
    const { uid, gid } = serverUserIds();
    for (const f of [server.cert, server.key, ca.cert]) chownSync(f, uid, gid);
  }
  for (const f of [ca.cert, other.cert, server.cert, client.cert]) chmodSync(f, 0o644);
  return { dir, caCert: ca.cert, otherCaCert: other.cert, serverCert: server.cert, serverKey: server.key, clientCert: client.cert, clientKey: client.key };
}
