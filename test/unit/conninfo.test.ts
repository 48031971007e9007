// Connection settings are never loosened: every keyword libpq does not know is
// refused, as are values pgpitr cannot honour, wherever they come from (-d string,
// URI, environment); the password file is read as libpq reads it; TLS options
// follow libpq's rules for the root certificate and the client key.

import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseConnectionUri, passwordFileDatabase, resolveConnectionSettings, sessionDatabase } from '../../src/protocol/conninfo.js';
import { primaryConninfo } from '../../src/postgres/recovery-config.js';
import { passwordFromFile } from '../../src/protocol/pgpass.js';
import { tlsOptions } from '../../src/protocol/tls-options.js';
import { connectionError } from '../../src/protocol/connection-errors.js';

const resolve = (dbname: string, env: NodeJS.ProcessEnv = {}) => resolveConnectionSettings({ dbname }, env);
const scratch: string[] = [];
const scratchDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
};
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

test('an unknown conninfo keyword is refused in libpq words', () => {
  assert.throws(() => resolve('host=db sslmdoe=require'), (e: Error & { code?: string }) => {
    assert.equal(e.message, 'invalid connection option "sslmdoe"');
    assert.equal(e.code, 'ERR_USAGE');
    return true;
  });
});

test('an unknown URI query parameter is refused; ssl=true means sslmode=require', () => {
  assert.throws(() => resolve('postgresql://u@db/x?sslmdoe=require'), /invalid URI query parameter: "sslmdoe"/);
  assert.equal(resolve('postgresql://u@db/x?ssl=true').sslmode, 'require');
  const s = resolve('postgresql://u@db/x?sslmode=verify-full&sslrootcert=/ca.pem&keepalives=1');
  assert.deepEqual([s.sslmode, s.sslrootcert, s.extra.keepalives], ['verify-full', '/ca.pem', '1']);
});

test('URIs are read as libpq reads them: every part optional and percent-decoded, a socket directory as host, IPv6 in brackets', () => {
  assert.deepEqual(parseConnectionUri('postgresql:///mydb?host=/var/run/postgresql'), { dbname: 'mydb', host: '/var/run/postgresql' });
  assert.deepEqual(parseConnectionUri('postgresql://%2Fvar%2Frun%2Fpostgresql/db'), { host: '/var/run/postgresql', dbname: 'db' });
  assert.deepEqual(parseConnectionUri('postgresql://'), {});
  assert.deepEqual(parseConnectionUri('postgres://h:80/db'), { host: 'h', port: '80', dbname: 'db' });
  assert.deepEqual(parseConnectionUri('postgresql://Me:a+b%40c@DB.Example:5433/x?application_name=a+b'), { user: 'Me', password: 'a+b@c', host: 'DB.Example', port: '5433', dbname: 'x', application_name: 'a+b' });
  assert.deepEqual(parseConnectionUri('postgresql://[::1]:5432/db'), { host: '::1', port: '5432', dbname: 'db' });
  assert.throws(() => parseConnectionUri('postgresql://u:%zz@h/db'), /invalid connection URI/);
  // An empty password is none (PGPASSWORD still applies); an empty IPv6 host and %00 are refused, as by libpq.
  assert.deepEqual(parseConnectionUri('postgresql://u:@h/db'), { user: 'u', host: 'h', dbname: 'db' });
  assert.throws(() => parseConnectionUri('postgresql://[]:5433/db'), /invalid connection URI/);
  assert.throws(() => parseConnectionUri('postgresql://h/d%00b'), /invalid connection URI/);
  assert.throws(() => resolve('postgresql://h1:5432,h2:5433/db'), /host lists are not supported/);
});

test('every libpq keyword is accepted; harmless ones are kept for -R', () => {
  const s = resolve('host=db keepalives_idle=30 tcp_user_timeout=1000 client_encoding=UTF8 gssencmode=disable target_session_attrs=any sslcrl=/crl.pem passfile=/pw');
  assert.equal(s.extra.keepalives_idle, '30');
  assert.equal(s.sslcrl, '/crl.pem');
  assert.equal(s.passfile, '/pw');
});

test('settings pgpitr cannot honour are refused, not ignored, from -d and from the environment', () => {
  assert.throws(() => resolve('host=db require_auth=scram-sha-256'), /connection option "require_auth" is not supported by pgpitr/);
  assert.throws(() => resolve('host=db gssencmode=require'), /gssencmode=require is not supported/);
  assert.throws(() => resolve('host=db channel_binding=require'), /channel_binding=require is not supported/);
  assert.throws(() => resolve('host=db target_session_attrs=read-write'), /target_session_attrs=read-write/);
  assert.throws(() => resolveConnectionSettings({}, { PGREQUIREAUTH: 'scram-sha-256' }), /"require_auth"/);
  assert.throws(() => resolve('host=db sslmode=requir'), /invalid sslmode value: "requir"/);
  assert.throws(() => resolve('host=db1,db2 port=5432,5433'), /host lists are not supported by pgpitr/);
  assert.throws(() => resolveConnectionSettings({}, { PGSSLMODE: 'verify_full' }), /invalid sslmode value/);
});

test('service files: found in PGSERVICEFILE then PGSYSCONFDIR, below -d and above the environment, strict too', () => {
  const dir = scratchDir('service-');
  const user = join(dir, 'user.conf');
  writeFileSync(user, '# mine\n[prod]\nhost=db1\nport=6000\nsslmode=verify-full\n\n[typo]\nsslmdoe=require\n[weak]\ngssencmode=require\n');
  mkdirSync(join(dir, 'sys'));
  writeFileSync(join(dir, 'sys', 'pg_service.conf'), '[sysonly]\nhost=db2\n');
  const env = { PGSERVICEFILE: user, PGSYSCONFDIR: join(dir, 'sys'), PGSSLMODE: 'disable', PGUSER: 'envuser' };
  const s = resolveConnectionSettings({ dbname: 'service=prod port=7000' }, env);
  assert.deepEqual([s.host, s.port, s.sslmode, s.user], ['db1', 7000, 'verify-full', 'envuser']);
  assert.equal(resolveConnectionSettings({}, { ...env, PGSERVICE: 'sysonly' }).host, 'db2');
  assert.throws(() => resolveConnectionSettings({}, { ...env, PGSERVICE: 'nope' }), /definition of service "nope" not found/);
  assert.throws(() => resolveConnectionSettings({}, { ...env, PGSERVICE: 'typo' }), /syntax error in service file ".*user.conf", line 8/);
  assert.throws(() => resolveConnectionSettings({}, { ...env, PGSERVICE: 'weak' }), /gssencmode=require is not supported by pgpitr \(given in service "weak"/);
});

test('TLS settings come from the environment as in libpq', () => {
  const s = resolveConnectionSettings({ host: 'db' }, { PGSSLMODE: 'verify-ca', PGSSLROOTCERT: '/ca', PGSSLCERT: '/c', PGSSLKEY: '/k', PGSSLCRL: '/crl' });
  assert.deepEqual([s.sslmode, s.sslrootcert, s.sslcert, s.sslkey, s.sslcrl], ['verify-ca', '/ca', '/c', '/k', '/crl']);
  assert.equal(resolveConnectionSettings({ host: 'db' }, { PGSSLROOTCERT: 'system' }).sslmode, 'verify-full');
});

test('the password file: wildcards, escapes, permissions, localhost for the default socket', () => {
  const dir = scratchDir('pgpass-');
  const file = join(dir, 'pgpass');
  writeFileSync(file, '# comment\ndb:5432:*:alice:a\\:b\nlocalhost:*:*:bob:sock\n*:*:*:carol:any\n', { mode: 0o600 });
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const base = { extra: {}, passfile: file, port: 5432 };
  assert.equal(passwordFromFile({ ...base, host: 'db' }, 'alice', warn), 'a:b');
  assert.equal(passwordFromFile({ ...base, host: 'other' }, 'alice', warn), undefined);
  assert.equal(passwordFromFile({ ...base, host: '/var/run/postgresql' }, 'bob', warn), 'sock');
  assert.equal(passwordFromFile({ ...base, host: 'x' }, 'carol', warn), 'any');
  chmodSync(file, 0o644);
  assert.equal(passwordFromFile({ ...base, host: 'x' }, 'carol', warn), undefined);
  assert.match(warnings.join('\n'), /has group or world access/);
});

test('the password file is searched with the database the session asks for: "replication" for a replication session (as pg_basebackup), "postgres" for an SQL one', () => {
  const dir = scratchDir('pgpass-db-');
  const file = join(dir, 'pgpass');
  writeFileSync(file, 'db:5432:replication:rep:forrepl\ndb:5432:postgres:rep:forsql\n', { mode: 0o600 });
  const s = { ...resolveConnectionSettings({ host: 'db', user: 'rep' }, {}), passfile: file };
  const lookup = (settings: typeof s, replication: string | null) => passwordFromFile(settings, 'rep', () => {}, {}, passwordFileDatabase(replication, sessionDatabase(settings, replication)));
  assert.equal(lookup(s, 'true'), 'forrepl');
  assert.equal(lookup(s, null), 'forsql');
  // PGDATABASE (or a database given) does not change a replication session's: "replication", as pg_basebackup's.
  const named = { ...s, dbname: 'postgres' };
  assert.equal(lookup(named, 'true'), 'forrepl');
  assert.equal(lookup({ ...s, dbname: 'app' }, null), undefined);
});

test('an empty host, port, user or database in the environment means the default, as in libpq', () => {
  const s = resolveConnectionSettings({}, { PGHOST: '', PGHOSTADDR: '', PGPORT: '', PGUSER: '', PGDATABASE: '' });
  assert.equal(s.hostaddr, undefined);
  assert.match(s.host!, /^\//, 'the default socket directory');
  assert.equal(s.port, 5432);
  assert.equal(s.user, undefined);
  assert.equal(s.dbname, undefined);
  assert.ok(s.host !== undefined && s.host !== '');
});

test('TLS options: root certificate rules, sslrootcert=system, client key permissions', () => {
  const dir = scratchDir('tlsopt-');
  const ca = join(dir, 'ca.crt');
  writeFileSync(ca, 'not really a certificate');
  const base = { extra: {}, host: 'db', sslcert: join(dir, 'none.crt') };
  // verify-ca / verify-full need the file; require without it does not verify.
  assert.throws(() => tlsOptions({ ...base, sslrootcert: join(dir, 'missing.crt') }, 'verify-full', 'verify-full'), /root certificate file ".*missing.crt" does not exist/);
  assert.equal(tlsOptions({ ...base, sslrootcert: join(dir, 'missing.crt') }, 'require', 'require').rejectUnauthorized, false);
  // require with a root certificate file present verifies the chain (as verify-ca).
  const req = tlsOptions({ ...base, sslrootcert: ca }, 'require', 'require');
  assert.equal(req.rejectUnauthorized, true);
  assert.ok(req.ca);
  assert.throws(() => tlsOptions({ ...base, sslrootcert: 'system' }, 'require', 'require'), /weak sslmode "require" may not be used with sslrootcert=system/);
  // A client certificate without its key, or with a key others can read.
  const cert = join(dir, 'client.crt');
  writeFileSync(cert, 'x');
  assert.throws(() => tlsOptions({ ...base, sslrootcert: ca, sslcert: cert, sslkey: join(dir, 'nokey') }, 'verify-ca', 'verify-ca'), /certificate present, but not private key file/);
  const key = join(dir, 'client.key');
  writeFileSync(key, 'x', { mode: 0o644 });
  chmodSync(key, 0o644);
  assert.throws(() => tlsOptions({ ...base, sslrootcert: ca, sslcert: cert, sslkey: key }, 'verify-ca', 'verify-ca'), /has group or world access/);
  chmodSync(key, 0o600);
  assert.ok(tlsOptions({ ...base, sslrootcert: ca, sslcert: cert, sslkey: key }, 'verify-ca', 'verify-ca').key);
  assert.equal(tlsOptions({ ...base, sslrootcert: ca, sslcert: cert, sslkey: key, sslcertmode: 'disable' }, 'verify-ca', 'verify-ca').key, undefined);
});

test('hints come from the SQLSTATE, not from words in the message', () => {
  const settings = { extra: {}, host: 'db', port: 5432 };
  const reject = connectionError(Object.assign(new Error('pg_hba.conf rejects replication connection for host "127.0.0.1", user "r"'), { code: '28000' }), settings);
  assert.doesNotMatch(reject.hint ?? '', /REPLICATION/);
  assert.match(reject.hint ?? '', /pg_hba\.conf/);
  const norepl = connectionError(Object.assign(new Error('permission denied to start WAL sender'), { code: '42501' }), settings);
  assert.match(norepl.hint ?? '', /REPLICATION/);
  const senders = connectionError(Object.assign(new Error('number of requested standby connections exceeds max_wal_senders'), { code: '53300' }), settings);
  assert.match(senders.hint ?? '', /max_wal_senders/);
});

test('-R primary_conninfo: hostaddr and connect_timeout, and what the environment alone set, are written as pg_basebackup writes them', () => {
  const s = resolveConnectionSettings({ dbname: 'host=db.example hostaddr=10.0.0.5 connect_timeout=7 user=rep' }, { PGSSLCRL: '/etc/pg/crl.pem', PGOPTIONS: '-c work_mem=64MB', PGDATABASE: 'ignored', PGREQUIRESSL: '1', PGSERVICEFILE: '/root/.pg_service.conf', PGPASSFILE: '/root/.pgpass', PGSSLNEGOTIATION: 'postgres' });
  const text = primaryConninfo(s);
  assert.match(text, /(^| )host=db\.example( |$)/);
  assert.match(text, /(^| )hostaddr=10\.0\.0\.5( |$)/);
  assert.match(text, /(^| )connect_timeout=7( |$)/);
  assert.match(text, /(^| )sslcrl=\/etc\/pg\/crl\.pem( |$)/);
  assert.match(text, /(^| )options='-c work_mem=64MB'( |$)/);
  assert.match(text, /(^| )sslmode=require( |$)/);
  // The password file chosen for this backup: the standby has no password without it (pg_basebackup writes it too).
  assert.match(text, /(^| )passfile=\/root\/\.pgpass( |$)/);
  // Not: what the standby's older libpq would refuse, a service file (its settings are written out).
  assert.doesNotMatch(text, /dbname|requiressl|service|sslnegotiation/);
});

test('-R primary_conninfo names the role even when none was given (the OS user, as libpq connects and PQconninfo reports)', () => {
  const s = resolveConnectionSettings({ host: 'db' }, {});
  assert.match(primaryConninfo(s), new RegExp(`(^| )user=${userInfo().username}( |$)`));
});

test('an invalid connection URI is named without its password, even one holding an unencoded "/"', () => {
  for (const uri of ['postgresql://u:ab/cd@db:x/app', 'postgresql://u@db:x/app?password=s3cret']) {
    assert.throws(() => parseConnectionUri(uri), (e: Error) => /invalid connection URI/.test(e.message) && !/ab\/cd|s3cret/.test(e.message), uri);
  }
});

test('a certificate node-postgres cannot bind the channel to is said without the certificate, with channel_binding=disable as the way out', () => {
  const e = connectionError(new Error('SASL channel binding: unknown OID 1.2.840.10040.4.3 when parsing public certificate MIIBszCCAVmgAwIBAgIU'), resolveConnectionSettings({ host: 'db' }, {}));
  assert.match(e.message, /SCRAM channel binding failed: unknown OID 1\.2\.840\.10040\.4\.3$/);
  assert.doesNotMatch(e.message, /MIIB/);
  assert.match(e.hint ?? '', /channel_binding=disable/);
});
