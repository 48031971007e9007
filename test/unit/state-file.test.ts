// `pgpitr status` judges a "running" state by the process that wrote it: alive
// is not enough, it must be the same process (start time, boot id), else a dead
// backup whose pid was reused reads as running.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPgpitr } from '../helpers/pgpitr.js';
import { StateFile, STATE_RESERVED_BYTES, readStateFile } from '../../src/backup/state-file.js';

const linux = process.platform === 'linux';

function stateWith(dir: string, fields: Record<string, unknown>): void {
  const state = {
    format: 'pgpitr-backup-state',
    format_version: 1,
    status: 'running',
    pid: process.pid, // alive: this test
    host: hostname(),
    label: 'pid reuse',
    pgpitr_version: '0',
    started_at: new Date().toISOString(),
    ...fields,
  };
  writeFileSync(join(dir, 'pgpitr_backup.state'), JSON.stringify(state));
}

function ownStartTime(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

test('status: a live pid that is another process reads as interrupted', { skip: !linux && 'needs /proc' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

  stateWith(dir, { pid_start_time: String(Number(ownStartTime()) + 12345), boot_id: bootId });
  let r = await runPgpitr(['status', dir]);
  assert.equal(r.code, 12, r.stdout + r.stderr);
  assert.match(r.stdout, /interrupted/);

  stateWith(dir, { pid_start_time: ownStartTime(), boot_id: '00000000-0000-0000-0000-000000000000' });
  r = await runPgpitr(['status', dir]);
  assert.equal(r.code, 12, `another boot: ${r.stdout}${r.stderr}`);

  stateWith(dir, { pid_start_time: ownStartTime(), boot_id: bootId });
  r = await runPgpitr(['status', dir]);
  assert.equal(r.code, 10, `the same process: ${r.stdout}${r.stderr}`);

  stateWith(dir, {}); // a state file from an older pgpitr: judged by the pid alone
  r = await runPgpitr(['status', dir]);
  assert.equal(r.code, 10, `old state file: ${r.stdout}${r.stderr}`);
});

test('the state file records the process identity and reserves room for the final record', { skip: !linux && 'needs /proc' }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sf = new StateFile(dir, 'x', false);
  sf.write();
  const st = readStateFile(dir);
  assert.equal(st.pid_start_time, ownStartTime());
  assert.equal(st.boot_id, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  assert.equal(st.pid_ns, readlinkSync('/proc/self/ns/pid'));
  assert.equal(st.heartbeat_s, 15);
  sf.finish('complete'); // stops its heartbeat: the test ends
  assert.equal(statSync(sf.path).size, STATE_RESERVED_BYTES);
});

test('status: a backup written in another pid namespace (a container sharing the host name), or on another host, is running as far as can be told here, and says so', { skip: !linux && 'needs /proc' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Its pid is free here: in this namespace it would read as interrupted.
  stateWith(dir, { pid: 2 ** 22 + 17, pid_ns: 'pid:[4026500000]' });
  let r = await runPgpitr(['status', dir]);
  assert.equal(r.code, 10, r.stdout + r.stderr);
  assert.match(r.stdout, /written in another pid namespace \(another container of this host\): whether its process still runs cannot be told from here/);
  stateWith(dir, { pid: 2 ** 22 + 17, pid_ns: readlinkSync('/proc/self/ns/pid') });
  r = await runPgpitr(['status', dir]);
  assert.equal(r.code, 12, `the same namespace: ${r.stdout}${r.stderr}`);
  stateWith(dir, { pid: 2 ** 22 + 17, host: 'elsewhere' });
  r = await runPgpitr(['status', dir, '--output', 'json']);
  assert.equal(r.code, 10, r.stdout + r.stderr);
  assert.equal((JSON.parse(r.stdout) as { process_judged_here: boolean }).process_judged_here, false);
  r = await runPgpitr(['status', dir]);
  assert.match(r.stdout, /written on host elsewhere: whether its process still runs cannot be told from here/);

  // A container restarted (same host name, another pid namespace) after a crash: the state file is
  // no longer touched (heartbeat), so the backup reads interrupted once eight beats and two minutes
  // went by (ten for another host), and --resume can take it over.
  const old = (s: number) => {
    const t = Date.now() / 1000 - s;
    utimesSync(join(dir, 'pgpitr_backup.state'), t, t);
  };
  stateWith(dir, { pid: 2 ** 22 + 17, pid_ns: 'pid:[4026500000]', heartbeat_s: 15 });
  old(60);
  assert.equal((await runPgpitr(['status', dir])).code, 10);
  old(180);
  r = await runPgpitr(['status', dir]);
  assert.equal(r.code, 12, r.stdout + r.stderr);
  assert.match(r.stdout, /it stopped touching its state file \(its state file was last touched 18\d s ago\)/);
  // --resume writes into it only after 30 minutes of silence: a paused process would wake up beside it.
  const resume = () => runPgpitr(['basebackup', '-D', dir, '-j', '2', '--resume', '-h', join(dir, 'no-server'), '-p', '1']);
  r = await resume();
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--resume takes it over once its state file has not been touched for 30 minutes/);
  old(2400);
  r = await resume();
  assert.notEqual(r.code, 0);
  assert.doesNotMatch(r.stderr, /has not been touched/);
  stateWith(dir, { pid: 2 ** 22 + 17, host: 'elsewhere', heartbeat_s: 15 });
  old(180);
  assert.equal((await runPgpitr(['status', dir])).code, 10, 'another host: its clock may differ');
  old(700);
  assert.equal((await runPgpitr(['status', dir])).code, 12);
  // Another boot of this host: gone, whatever namespace it ran in.
  stateWith(dir, { pid: 2 ** 22 + 17, pid_ns: 'pid:[4026500000]', boot_id: '00000000-0000-0000-0000-000000000000' });
  assert.equal((await runPgpitr(['status', dir])).code, 12);
});

test('a state file whose status is not one pgpitr writes (a newer format, a hand edit) never reads as complete', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sf = new StateFile(dir, 'x', false);
  sf.write();
  const text = readFileSync(sf.path, 'utf8').replace('"status": "running"', '"status": "done"').replace('"status":"running"', '"status":"done"');
  assert.match(text, /"done"/);
  writeFileSync(sf.path, text);
  assert.throws(() => readStateFile(dir), /unknown status "done"/);
});

test('status: no state file is "no state" (6); one there that cannot be read is said so (5), not "no state"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const none = await runPgpitr(['status', dir]);
  assert.equal(none.code, 6, none.stderr);
  assert.match(none.stderr, /no pgpitr backup state in/);
  // Unreadable (root reads any file: a directory in its place stands for EACCES here).
  const sf = new StateFile(dir, 'x', false);
  mkdirSync(sf.path);
  const unreadable = await runPgpitr(['status', dir]);
  assert.equal(unreadable.code, 5, unreadable.stderr);
  assert.match(unreadable.stderr, /the pgpitr backup state ".*" cannot be read: EISDIR/);
});
