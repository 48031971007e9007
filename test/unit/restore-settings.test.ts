// The recovery settings restore writes: one replaceable block in
// postgresql.auto.conf, every other recovery setting commented out (there and
// in postgresql.conf), a standby keeping how it reaches its primary; what a
// DBA adds with --recovery-option and --archive-mode off.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { recoverySettingsBlock, setsSetting, withRecoverySettings, withoutRecoverySettings } from '../../src/postgres/restore-settings.js';
import { recoveryOptions } from '../../src/restore/recovery-options.js';

const block = recoverySettingsBlock({ restoreCommand: "pgpitr archive-get %f '%p'", target: { name: 'recovery_target_time', value: '2026-12-01 11:45:00+00' }, timeline: '2', action: 'promote' });

test('the block is quoted for postgresql.conf and replaces an earlier one', () => {
  assert.match(block, /restore_command = 'pgpitr archive-get %f ''%p'''/);
  assert.match(block, /recovery_target_timeline = '2'/);
  const once = withRecoverySettings("shared_buffers = '1GB'\n", block);
  const twice = withRecoverySettings(once, block);
  assert.equal(twice, once);
  assert.equal(twice.match(/recovery settings written by pgpitr restore: begin/g)!.length, 1);
});

test('a value with a line break (a restore point named so, a path) is written with the escapes PostgreSQL reads back, never raw', async () => {
  const b = recoverySettingsBlock({ restoreCommand: "pgpitr archive-get --config '/etc/pg\nitr.conf' %f '%p'", target: { name: 'recovery_target_name', value: 'before\r\nthe drop' }, timeline: 'current' });
  const inside = b.split('\n').filter((l) => /^\w+ = /.test(l));
  assert.ok(inside.length > 0);
  for (const line of inside) assert.match(line, /^\w+ = '([^'\\\n\r]|\\.|'')*'$/, line);
  assert.match(b, /recovery_target_name = 'before\\r\\nthe drop'/);
  const { parseTargetTime, parseTargetOptions } = await import('../../src/restore/restore-target.js');
  assert.throws(() => parseTargetTime('2026-12-01 11:45:00\n+00'), /invalid --target-time/);
  // What restore itself writes refuses line breaks: ALTER SYSTEM would write the escape back raw.
  assert.throws(() => parseTargetOptions({ name: 'before\nthe drop' }), /--target-name holds a line break/);
  const { refuseLineBreaks } = await import('../../src/commands/restore.js');
  assert.throws(() => refuseLineBreaks(['--config', '/etc/pg\nitr.conf'], 'main', null), /restore_command cannot hold a line break/);
  assert.throws(() => refuseLineBreaks(['--repo1-s3-region=eu\n'], 'main', '/var/spool/pgpitr'), /restore_command cannot hold a line break/);
  assert.doesNotThrow(() => refuseLineBreaks(['--config', '/etc/pgpitr.conf'], 'main', null));
  assert.equal(parseTargetTime('2026-12-01 11:45:00 +00'), Date.parse('2026-12-01T11:45:00Z'));
});

test('every recovery setting gets a value in the block: a stale one in a file restore does not rewrite never applies', () => {
  const lines = block.split('\n');
  const at = (name: string) => lines.findIndex((l) => l.startsWith(`${name} = `));
  // The targets not used are emptied, before the one used (PostgreSQL refuses a second target as it applies them).
  for (const t of ['recovery_target', 'recovery_target_lsn', 'recovery_target_name', 'recovery_target_xid']) {
    assert.equal(lines[at(t)], `${t} = ''`);
    assert.ok(at(t) < at('recovery_target_time'));
  }
  assert.equal(lines[at('recovery_target_time')], "recovery_target_time = '2026-12-01 11:45:00+00'");
  assert.equal(lines[at('recovery_target_inclusive')], "recovery_target_inclusive = 'on'");
  assert.equal(lines[at('recovery_target_action')], "recovery_target_action = 'promote'");
  assert.equal(lines[at('recovery_min_apply_delay')], "recovery_min_apply_delay = '0'");
  assert.equal(lines[at('recovery_end_command')], "recovery_end_command = ''");
  const exclusive = recoverySettingsBlock({ restoreCommand: 'x', target: { name: 'recovery_target_xid', value: '42' }, inclusive: false, timeline: '1', action: 'pause' });
  assert.match(exclusive, /^recovery_target_inclusive = 'off'$/m);
  assert.equal(exclusive.match(/^recovery_target_xid = /gm)!.length, 1);
  // A standby keeps its apply delay and archive clean-up from its configuration.
  const standby = recoverySettingsBlock({ restoreCommand: 'x', timeline: 'latest', standby: true });
  assert.ok(!/recovery_min_apply_delay|archive_cleanup_command/.test(standby));
  assert.match(standby, /^recovery_target_time = ''$/m);
});

test('other recovery settings are commented out; a standby keeps its connection to the primary', () => {
  const conf = "recovery_target_xid = '42'\nprimary_conninfo = 'host=p'\nwork_mem = '4MB'\nrecovery_min_apply_delay = '5min'\n";
  const plain = withoutRecoverySettings(conf);
  assert.match(plain, /^# disabled by pgpitr restore: recovery_target_xid = '42'$/m);
  assert.match(plain, /^# disabled by pgpitr restore: primary_conninfo/m);
  assert.match(plain, /^work_mem = '4MB'$/m);
  const standby = withoutRecoverySettings(conf, true);
  assert.match(standby, /^primary_conninfo = 'host=p'$/m);
  assert.match(standby, /^recovery_min_apply_delay = '5min'$/m);
  assert.match(standby, /^# disabled by pgpitr restore: recovery_target_xid/m);
});

test('--recovery-option and --archive-mode off: added to the block, after restore\'s own, each spelled as PostgreSQL names it', () => {
  const extra = recoveryOptions(["primary-conninfo=host=primary user=rep password='it''s'", 'recovery_min_apply_delay=5min'], 'off');
  assert.deepEqual(
    extra.map((o) => o.name),
    ['primary_conninfo', 'recovery_min_apply_delay', 'archive_mode'],
  );
  const b = recoverySettingsBlock({ restoreCommand: 'pgpitr archive-get %f "%p"', timeline: 'latest', extra });
  const lines = b.split('\n');
  assert.deepEqual(lines.slice(1, -2), [
    `restore_command = 'pgpitr archive-get %f "%p"'`,
    `recovery_target = ''`,
    `recovery_target_lsn = ''`,
    `recovery_target_name = ''`,
    `recovery_target_time = ''`,
    `recovery_target_xid = ''`,
    `recovery_target_inclusive = 'on'`,
    `recovery_target_timeline = 'latest'`,
    `recovery_target_action = 'pause'`,
    `recovery_end_command = ''`,
    `archive_cleanup_command = ''`,
    `primary_conninfo = 'host=primary user=rep password=''it''''s'''`,
    `recovery_min_apply_delay = '5min'`,
    `archive_mode = 'off'`,
  ]);
  // A restore_command given replaces restore's own.
  const own = recoverySettingsBlock({ restoreCommand: 'pgpitr archive-get %f "%p"', timeline: '1', extra: recoveryOptions(['restore_command=cp /mnt/wal/%f "%p"'], undefined) });
  assert.match(own, /^restore_command = 'cp \/mnt\/wal\/%f "%p"'$/m);
  assert.equal(own.match(/restore_command/g)!.length, 1);
  // Spaces around the value are PostgreSQL's to refuse ("hot_standby = ' off'"): trimmed.
  assert.deepEqual(recoveryOptions(['hot_standby =  off '], undefined), [{ name: 'hot_standby', value: 'off' }]);
  // --archive-mode preserve adds nothing.
  assert.deepEqual(recoveryOptions([], 'preserve'), []);
});

test('a standby\'s own primary_conninfo gives way to one given with --recovery-option', () => {
  const auto = "primary_conninfo = 'host=old'\nprimary_slot_name = 's1'\n";
  const b = recoverySettingsBlock({ restoreCommand: 'x', timeline: 'latest', extra: [{ name: 'primary_conninfo', value: 'host=new' }] });
  const out = withRecoverySettings(auto, b, true, ['primary_conninfo']);
  assert.match(out, /^# disabled by pgpitr restore: primary_conninfo = 'host=old'$/m);
  assert.match(out, /^primary_slot_name = 's1'$/m);
  assert.match(out, /^primary_conninfo = 'host=new'$/m);
  assert.ok(setsSetting(out, 'primary_conninfo'));
  assert.ok(!setsSetting("# primary_conninfo = 'x'\n", 'primary_conninfo'));
});

test('--recovery-option refuses what would bypass restore\'s checks or cannot be written', () => {
  const refused: [string[], string | undefined, RegExp][] = [
    [['recovery_target_time=2026-12-01'], undefined, /use --target-time/],
    [['recovery-target-timeline=3'], undefined, /use --target-timeline/],
    [['recovery_target_action=promote'], undefined, /use --target-action/],
    [['primary_conninfo'], undefined, /is not KEY=VALUE/],
    [['=x'], undefined, /is not KEY=VALUE/],
    [['bad name=1'], undefined, /not a setting's name/],
    [['work_mem=1\nrestore_command=evil'], undefined, /line break/],
    [['work_mem=1MB', 'work-mem=2MB'], undefined, /given twice/],
    [['archive_mode=on'], 'off', /both by --archive-mode and by --recovery-option/],
    [[], 'on', /is not off or preserve/],
  ];
  for (const [texts, mode, message] of refused) {
    assert.throws(() => recoveryOptions(texts, mode), (e: Error & { code?: string }) => e.code === 'ERR_USAGE' && message.test(e.message + ' ' + String((e as { hint?: string }).hint)), `${texts.join(' ')} ${mode ?? ''}`);
  }
  assert.deepEqual(recoveryOptions(['auto_explain.log_min_duration=250ms', 'primary_conninfo='], undefined), [
    { name: 'auto_explain.log_min_duration', value: '250ms' },
    { name: 'primary_conninfo', value: '' },
  ]);
});

test('basebackup -R of a restored cluster leaves out the recovery target its restore wrote (a standby cloned from it would stop there and promote)', async () => {
  const { appendToAutoConf } = await import('../../src/postgres/recovery-config.js');
  const block = recoverySettingsBlock({ restoreCommand: 'pgpitr archive-get %f "%p"', target: { name: 'recovery_target', value: 'immediate' }, timeline: '2', action: 'promote' });
  const source = `# Do not edit this file manually!\nwork_mem = '64MB'\n${block}recovery_target_time = '2026-12-01 11:45:00+00'\n`;
  const out = appendToAutoConf(Buffer.from(source), "primary_conninfo = 'host=primary'\n").toString();
  const active = out.split('\n').filter((l) => /^\s*[a-z_]+\s*=/.test(l));
  assert.deepEqual(active.filter((l) => l.startsWith('recovery_target')), [], 'no target left');
  assert.ok(active.includes("work_mem = '64MB'") && active.includes('restore_command = \'pgpitr archive-get %f "%p"\''), 'the rest stays (restore_command too)');
  assert.equal(active.at(-1), "primary_conninfo = 'host=primary'");
  assert.match(out, /# disabled by pgpitr basebackup -R: recovery_target_time/);
  // A source without any: as it was, with -R's lines after it.
  assert.equal(appendToAutoConf(Buffer.from("work_mem = '64MB'"), "primary_conninfo = 'x'\n").toString(), "work_mem = '64MB'\nprimary_conninfo = 'x'\n");
});

test('a standby restored from a backup whose configuration names a slot is told so, unless --recovery-option names one', async () => {
  const { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { writeRecoverySettings } = await import('../../src/restore/write-recovery-settings.js');
  const { settingValue } = await import('../../src/postgres/restore-settings.js');
  assert.equal(settingValue("primary_slot_name = 'it''s'\n#primary_slot_name = 'x'\n", 'primary_slot_name'), "it's");
  assert.equal(settingValue("primary_slot_name = 'a'\nprimary_slot_name=b # last wins\n", 'primary_slot_name'), 'b');
  assert.equal(settingValue("primary_conninfo = 'host=x'\n", 'primary_slot_name'), undefined);
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-settings-'));
  try {
    const run = (auto: string, conf: string, options: { name: string; value: string }[]) => {
      writeFileSync(join(dir, 'postgresql.auto.conf'), auto);
      writeFileSync(join(dir, 'postgresql.conf'), conf);
      const lines: string[] = [];
      writeRecoverySettings(dir, {
        target: { target: { kind: 'end' }, exclusive: false, timeline: 'latest', action: 'promote' },
        standby: true,
        restoreCommand: () => 'pgpitr archive-get %f "%p"',
        recoveryOptions: options,
        log: (l) => lines.push(l),
      }, 1, 1, false);
      return lines.join('\n');
    };
    assert.match(run("primary_slot_name = 's1'\n", '', []), /the standby keeps primary_slot_name 's1' from the backup's configuration/);
    assert.match(run('', "primary_slot_name = 'c1'\n", []), /keeps primary_slot_name 'c1'/);
    assert.doesNotMatch(run("primary_slot_name = ''\n", "primary_slot_name = 'c1'\n", []), /keeps primary_slot_name/, 'postgresql.auto.conf wins');
    assert.doesNotMatch(run("primary_slot_name = 's1'\n", '', [{ name: 'primary_slot_name', value: 's2' }]), /keeps primary_slot_name/);
    assert.ok(existsSync(join(dir, 'standby.signal')));
    // The slot --recovery-option names replaces the kept one.
    assert.match(readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8'), /^# disabled by pgpitr restore: primary_slot_name = 's1'\n[^]*^primary_slot_name = 's2'$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
