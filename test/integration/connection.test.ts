// Connection settings are never silently loosened, and behave as libpq's: unknown
// keywords refused, a missing password reported at once in libpq's words, TLS
// (verify-ca / verify-full, the root and client certificates) applied to the
// replication connection itself, hints chosen by SQLSTATE, and a connection lost
// mid-backup told apart from one that could not be made.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, CLI } from '../helpers/pgpitr.js';
import { makeTestCertificates } from '../helpers/tls-certs.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

for (const version of versionsFromEnv()) {
  test(`connection settings are strict and libpq-faithful (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    // Our own temporary directories (certificates, homes) go at the end too.
    const scratch: string[] = [];
    const scratchDir = (prefix: string) => {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      scratch.push(dir);
      return dir;
    };
    t.after(() => {
      for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
    });
    const certs = await makeTestCertificates('certuser');
    scratch.push(certs.dir);
    const src = await TestCluster.create({
      version,
      name: `conn${version}`,
      conf: {
        listen_addresses: '127.0.0.1,127.0.0.2',
        password_encryption: 'scram-sha-256',
        authentication_timeout: '60s',
        ssl: 'on',
        ssl_cert_file: certs.serverCert,
        ssl_key_file: certs.serverKey,
        ssl_ca_file: certs.caCert,
      },
      hba: [
        'host all scram 127.0.0.0/8 scram-sha-256',
        'host replication scram 127.0.0.0/8 scram-sha-256',
        'host replication rejected 127.0.0.0/8 reject',
        // tlsuser gets in over TLS only, certuser with a client certificate only.
        'hostssl all tlsuser 127.0.0.0/8 trust',
        'hostssl replication tlsuser 127.0.0.0/8 trust',
        'host all tlsuser 127.0.0.0/8 reject',
        'host replication tlsuser 127.0.0.0/8 reject',
        'hostssl replication certuser 127.0.0.0/8 cert',
        'host replication certuser 127.0.0.0/8 reject',
      ],
    });
    await createSampleData(src, { rows: 20000 });
    await src.sql(
      "create role scram login replication password 'secret'; create role rejected login replication; create role tlsuser login replication; create role certuser login replication",
    );
    // A home without ~/.postgresql or ~/.pgpass: only what each case gives is used.
    const home = scratchDir('pgpitr-home-');
    const env = { ...clusterEnv(src), HOME: home, PGPASSFILE: join(home, 'no-pgpass') };
    const port = String(src.port);
    const tcp = (conninfo: string) => `host=127.0.0.1 port=${port} ${conninfo}`;
    /** A replication command that needs only IDENTIFY_SYSTEM-level access: create, then drop a slot. */
    const slotRoundTrip = async (conninfo: string, user: string, extraEnv: NodeJS.ProcessEnv = {}) => {
      const created = await runPgpitr(['receive-wal', '-S', 'conn_test', '--create-slot', '-d', conninfo, '-U', user], { ...env, ...extraEnv });
      if (created.code === 0) {
        const dropped = await runPgpitr(['receive-wal', '-S', 'conn_test', '--drop-slot', '-d', conninfo, '-U', user], { ...env, ...extraEnv });
        assert.equal(dropped.code, 0, dropped.stderr);
      }
      return created;
    };

    await t.test('an unknown conninfo keyword or URI parameter is refused, not ignored', async () => {
      const out = join(src.tempDir('typo'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-d', tcp('sslmdoe=require')], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /invalid connection option "sslmdoe"/);
      assert.ok(!existsSync(out));
      const uri = await runPgpitr(['basebackup', '-D', out, '-d', `postgresql://127.0.0.1:${port}/postgres?sslmdoe=require`], env);
      assert.equal(uri.code, 2, uri.stderr);
      assert.match(uri.stderr, /invalid URI query parameter: "sslmdoe"/);
      const recv = await runPgpitr(['receive-wal', '-D', out, '-d', tcp('sslmdoe=require')], env);
      assert.equal(recv.code, 2, recv.stderr);
      const repo = src.tempDir('typo-repo');
      const stanza = await runPgpitr(['stanza-create', '--repo', repo, '--stanza', 'main', '-d', tcp('sslmdoe=require')], env);
      assert.equal(stanza.code, 2, stanza.stderr);
      assert.match(stanza.stderr, /invalid connection option "sslmdoe"/);
      // The same rule in a service file (PGSERVICE), whose good settings apply.
      const serviceFile = join(home, 'services.conf');
      writeFileSync(serviceFile, `[typo]\nhost=127.0.0.1\nport=${port}\nsslmdoe=require\n[tls]\nhost=127.0.0.1\nport=${port}\nsslmode=verify-full\nsslrootcert=${certs.caCert}\n`);
      const svc = await runPgpitr(['basebackup', '-D', out], { ...env, PGSERVICEFILE: serviceFile, PGSERVICE: 'typo' });
      assert.equal(svc.code, 2, svc.stderr);
      assert.match(svc.stderr, /syntax error in service file/);
      assert.ok(!existsSync(out));
      const good = await slotRoundTrip('service=tls', 'tlsuser', { PGSERVICEFILE: serviceFile });
      assert.equal(good.code, 0, good.stderr);
    });

    await t.test('SCRAM and no password: fails at once, in libpq words', async () => {
      const out = join(src.tempDir('nopw'), 'b');
      const started = Date.now();
      const r = await runPgpitr(['basebackup', '-D', out, '-d', tcp('sslmode=disable'), '-U', 'scram', '-w'], env);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /fe_sendauth: no password supplied/);
      assert.doesNotMatch(r.stderr, /must be a string/);
      // The server's authentication_timeout is 60 s: a socket left open would keep us that
      // long. 20 s is far from both ends (a start-up takes well under a second), so this
      // bound cannot flake on a loaded machine and still tells the two apart.
      assert.ok(seconds < 20, `took ${seconds} s: the socket was left open until authentication_timeout`);
      assert.ok(!existsSync(out));
      // The same through TLS (sslmode prefer, the default) and for a SQL connection.
      const repo = src.tempDir('nopw-repo');
      const sql = await runPgpitr(['stanza-create', '--repo', repo, '--stanza', 'main', '-d', tcp(''), '-U', 'scram'], env);
      assert.equal(sql.code, 3, sql.stderr);
      assert.match(sql.stderr, /fe_sendauth: no password supplied/);
      const ok = await slotRoundTrip(tcp(''), 'scram', { PGPASSWORD: 'secret' });
      assert.equal(ok.code, 0, ok.stderr);
      // The password file as pg_basebackup and pg_receivewal read it: a replication connection is
      // searched with the database "replication" (PostgreSQL's documentation writes such lines).
      const passfile = join(src.tempDir('pgpass'), 'pgpass');
      writeFileSync(passfile, '*:*:replication:scram:secret\n', { mode: 0o600 });
      const viaFile = await slotRoundTrip(tcp(''), 'scram', { PGPASSFILE: passfile });
      assert.equal(viaFile.code, 0, viaFile.stderr);
    });

    await t.test('a pg_hba.conf reject is not answered with a REPLICATION hint', async () => {
      const out = join(src.tempDir('hba'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-d', tcp('sslmode=disable'), '-U', 'rejected'], env);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /pg_hba\.conf rejects/);
      const hint = /hint: (.*)/.exec(r.stderr)?.[1] ?? '';
      assert.match(hint, /pg_hba\.conf/);
      assert.doesNotMatch(hint, /REPLICATION/);
    });

    await t.test('verify-full with the CA: the replication connection itself uses TLS', async () => {
      // tlsuser is refused without TLS, so a backup that succeeds went through TLS.
      const out = join(src.tempDir('tls'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-c', 'fast', '-X', 'stream', '-d', `host=localhost hostaddr=127.0.0.1 port=${port} sslmode=verify-full sslrootcert=${certs.caCert}`, '-U', 'tlsuser'], env);
      assert.equal(r.code, 0, r.stderr);
      const slot = await slotRoundTrip(tcp(`sslmode=verify-full sslrootcert=${certs.caCert}`), 'tlsuser');
      assert.equal(slot.code, 0, slot.stderr);
    });

    await t.test('verify-full fails with a CA that did not sign the server certificate', async () => {
      const r = await slotRoundTrip(tcp(`sslmode=verify-full sslrootcert=${certs.otherCaCert}`), 'tlsuser');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /certificate verify failed/);
      const missing = await slotRoundTrip(tcp(`sslmode=verify-ca sslrootcert=${join(home, 'none.crt')}`), 'tlsuser');
      assert.equal(missing.code, 3, missing.stderr);
      assert.match(missing.stderr, /root certificate file ".*none\.crt" does not exist/);
    });

    await t.test('verify-full fails on a host name the certificate does not list; verify-ca passes', async () => {
      const full = await slotRoundTrip(`host=127.0.0.2 port=${port} sslmode=verify-full sslrootcert=${certs.caCert}`, 'tlsuser');
      assert.equal(full.code, 3, full.stderr);
      assert.match(full.stderr, /does not match host name "127\.0\.0\.2"/);
      const ca = await slotRoundTrip(`host=127.0.0.2 port=${port} sslmode=verify-ca sslrootcert=${certs.caCert}`, 'tlsuser');
      assert.equal(ca.code, 0, ca.stderr);
    });

    await t.test('require with ~/.postgresql/root.crt present verifies the chain, as libpq does', async () => {
      const wrongHome = scratchDir('pgpitr-home-');
      mkdirSync(join(wrongHome, '.postgresql'));
      copyFileSync(certs.otherCaCert, join(wrongHome, '.postgresql', 'root.crt'));
      const r = await slotRoundTrip(tcp('sslmode=require'), 'tlsuser', { HOME: wrongHome });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /certificate verify failed/);
      const none = await slotRoundTrip(tcp('sslmode=require'), 'tlsuser');
      assert.equal(none.code, 0, none.stderr);
    });

    await t.test('client certificate authentication with sslcert/sslkey, PGSSLCERT/PGSSLKEY and ~/.postgresql', async () => {
      const r = await slotRoundTrip(tcp(`sslmode=verify-full sslrootcert=${certs.caCert} sslcert=${certs.clientCert} sslkey=${certs.clientKey}`), 'certuser');
      assert.equal(r.code, 0, r.stderr);
      const fromEnv = await slotRoundTrip(tcp(''), 'certuser', { PGSSLMODE: 'verify-ca', PGSSLROOTCERT: certs.caCert, PGSSLCERT: certs.clientCert, PGSSLKEY: certs.clientKey });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      const certHome = scratchDir('pgpitr-home-');
      mkdirSync(join(certHome, '.postgresql'));
      copyFileSync(certs.caCert, join(certHome, '.postgresql', 'root.crt'));
      copyFileSync(certs.clientCert, join(certHome, '.postgresql', 'postgresql.crt'));
      copyFileSync(certs.clientKey, join(certHome, '.postgresql', 'postgresql.key'));
      chmodSync(join(certHome, '.postgresql', 'postgresql.key'), 0o600);
      const defaults = await slotRoundTrip(tcp('sslmode=verify-full'), 'certuser', { HOME: certHome });
      assert.equal(defaults.code, 0, defaults.stderr);
      chmodSync(join(certHome, '.postgresql', 'postgresql.key'), 0o644);
      const loose = await slotRoundTrip(tcp('sslmode=verify-full'), 'certuser', { HOME: certHome });
      assert.equal(loose.code, 3, loose.stderr);
      assert.match(loose.stderr, /has group or world access/);
      const without = await slotRoundTrip(tcp(`sslmode=verify-full sslrootcert=${certs.caCert}`), 'certuser');
      assert.equal(without.code, 3, without.stderr);
    });

    await t.test('a hostssl-only pg_hba.conf refuses sslmode=disable; SQL connections use TLS too', async () => {
      const r = await slotRoundTrip(tcp('sslmode=disable'), 'tlsuser');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /pg_hba\.conf/);
      // stanza-create's SQL connection with the default sslmode (prefer) goes over TLS.
      const repo = src.tempDir('tls-repo');
      const sql = await runPgpitr(['stanza-create', '--repo', repo, '--stanza', 'main', '-d', tcp(''), '-U', 'tlsuser'], env);
      assert.equal(sql.code, 0, sql.stderr);
    });

    /** A slow backup started with these arguments, resolved once it streams files. */
    const slowBackup = async (args: string[]) => {
      const child = spawn(process.execPath, [CLI, 'basebackup', '-r', '512k', '-c', 'fast', '--progress-format=json', ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      await new Promise<void>((res, rej) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (/"bytes_done":[1-9]/.test(stderr)) res();
        });
        void exited.then(() => rej(new Error(`backup ended before streaming: ${stderr}`)));
      });
      return { exited, stderr: () => stderr };
    };

    await t.test('a connection cut mid-backup exits 9, not 3 "could not connect"', async () => {
      const proxy = await startTcpProxy(src.port);
      try {
        const out = join(src.tempDir('cut'), 'b');
        const b = await slowBackup(['-D', out, '-d', `host=127.0.0.1 port=${proxy.port} sslmode=disable`]);
        proxy.cut();
        const code = await b.exited;
        assert.equal(code, 9, b.stderr());
        assert.doesNotMatch(b.stderr(), /could not connect/);
        assert.match(b.stderr(), /connection/);
        assert.ok(!existsSync(out), 'target left behind');
      } finally {
        await proxy.close();
      }
    });

    await t.test('the walsender terminated mid-backup (FATAL 57P01) exits 9 as well', async () => {
      const out = join(src.tempDir('lost'), 'b');
      const b = await slowBackup(['-D', out]);
      await src.sql("select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'walsender'");
      const code = await b.exited;
      assert.equal(code, 9, b.stderr());
      assert.doesNotMatch(b.stderr(), /could not connect/);
      assert.match(b.stderr(), /terminating connection due to administrator command/);
      assert.ok(!existsSync(out), 'target left behind');
    });
  });
}
