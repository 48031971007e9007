// Tar headers round-trip (long names, large sizes, links), the tar parser at
// every split point, LSN/segment arithmetic, conninfo parsing, -Z and -r parsing.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { encodeHeader, decodeHeader, TAR_END } from '../../src/storage/tar/tar-header.js';
import type { TarEntry } from '../../src/storage/tar/tar-header.js';
import { TarParser } from '../../src/storage/tar/tar-parser.js';
import { parseLsn, formatLsn, segmentFileName, parseSegmentFileName } from '../../src/postgres/lsn.js';
import { parseConninfoString, resolveConnectionSettings } from '../../src/protocol/conninfo.js';
import { parseCompressOption } from '../../src/cli/compress-option.js';
import { parseMaxRate, parseTablespaceMapping } from '../../src/cli/commands/basebackup-args.js';
import { ConfinedDir } from '../../src/storage/confined-dir.js';
import { TarRewriter } from '../../src/backup/tar/tar-rewriter.js';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';

const entry = (e: Partial<TarEntry>): TarEntry => ({ name: 'x', type: 'file', size: 0, mode: 0o600, mtime: 1700000000, linkname: '', ...e });

test('tar headers round-trip', () => {
  for (const e of [
    entry({ name: 'base/1/1259', size: 8192 }),
    entry({ name: 'pg_tblspc/16384', type: 'symlink', linkname: '/srv/ts1' }),
    entry({ name: 'base/1/hard', type: 'hardlink', linkname: 'base/1/1259' }),
    entry({ name: 'pg_wal', type: 'directory', mode: 0o700 }),
    entry({ name: 'a/'.repeat(60) + 'file', size: 1 }),
    entry({ name: 'big', size: 9 * 1024 ** 3 }),
  ]) {
    const d = decodeHeader(encodeHeader(e));
    assert.deepEqual(d, { ...e, name: e.name.replace(/\/$/, '') + (e.type === 'directory' ? '/' : '') });
  }
});

test('tar parser gives the same events at every split', () => {
  const data = Buffer.alloc(1000, 3);
  const archive = Buffer.concat([encodeHeader(entry({ name: 'f', size: 1000 })), data, Buffer.alloc(24), encodeHeader(entry({ name: 'd', type: 'directory' })), TAR_END]);
  const run = (chunks: Buffer[]) => {
    const p = new TarParser('t');
    const out: string[] = [];
    for (const c of chunks) {
      p.feed(c);
      for (let ev = p.next(); ev; ev = p.next()) out.push(ev.kind === 'entry' ? `entry:${ev.entry.name}` : ev.kind === 'data' ? `data:${ev.data.length}` : ev.kind);
    }
    return out.filter((x) => !x.startsWith('data')).join(',') + `|${out.filter((x) => x.startsWith('data')).reduce((a, x) => a + Number(x.slice(5)), 0)}`;
  };
  const whole = run([archive]);
  assert.equal(whole, 'entry:f,entry-end,entry:d/,entry-end,end|1000');
  for (let i = 0; i <= archive.length; i += 7) assert.equal(run([archive.subarray(0, i), archive.subarray(i)]), whole, `split ${i}`);
});

test('LSN and segment names', () => {
  assert.equal(parseLsn('16/B374D848'), 0x16b374d848n);
  assert.equal(formatLsn(0x16b374d848n), '16/B374D848');
  assert.equal(segmentFileName(1, parseLsn('1/2000000') / 16777216n, 16777216), '000000010000000100000002');
  assert.deepEqual(parseSegmentFileName('000000020000000100000002', 16777216), { timeline: 2, segNo: 0x102n });
  assert.throws(() => parseLsn('nope'), /invalid LSN/);
});

test('conninfo strings, URIs and precedence', () => {
  assert.deepEqual(parseConninfoString(`host=db1 port=5433 application_name='my app' password='it\\'s'`), { host: 'db1', port: '5433', application_name: 'my app', password: "it's" });
  const s = resolveConnectionSettings({ dbname: 'postgresql://u:p%40ss@h1:6000/db?sslmode=require', port: '7000' }, {});
  assert.equal(s.host, 'h1');
  assert.equal(s.port, 7000);
  assert.equal(s.user, 'u');
  assert.equal(s.password, 'p@ss');
  assert.equal(s.sslmode, 'require');
  const e = resolveConnectionSettings({}, { PGHOST: 'envhost', PGPORT: '5999', PGUSER: 'envuser' });
  assert.deepEqual([e.host, e.port, e.user], ['envhost', 5999, 'envuser']);
});

test('-Z, -r and -T parsing', () => {
  assert.deepEqual(parseCompressOption('server-zstd:level=5,workers=2', false), { location: 'server', algorithm: 'zstd', level: 5, workers: 2, detail: 'level=5,workers=2' });
  assert.deepEqual(parseCompressOption('lz4', false), { location: 'client', algorithm: 'lz4' });
  assert.deepEqual(parseCompressOption('6', false), { location: 'client', algorithm: 'gzip', level: 6 });
  assert.equal(parseCompressOption('0', false), null);
  assert.throws(() => parseCompressOption('gzip:99', false), /expects a compression level between 1 and 9/);
  assert.equal(parseMaxRate('32'), 32);
  assert.equal(parseMaxRate('2M'), 2048);
  assert.throws(() => parseMaxRate('31'), /out of range/);
  assert.deepEqual(parseTablespaceMapping('/a\\=b=/c'), { oldDir: '/a=b', newDir: '/c' });
});

test('paths from archives cannot escape the target', () => {
  const dir = new ConfinedDir('/t', 'archive "a"');
  assert.equal(dir.pathOf('base/1/2'), '/t/base/1/2');
  assert.equal(dir.pathOf('./base//1/'), '/t/base/1');
  for (const bad of ['/etc/passwd', '../x', 'a/../../x', '', './', 'a\0b']) assert.throws(() => dir.pathOf(bad), /refusing member/);
});

test('tar rewriter (-R): an appended member replaces one of the same name in the input (a standby source\'s standby.signal), never doubles it', async () => {
  const conf = Buffer.from("primary_conninfo = 'old'\n");
  const input = Buffer.concat([
    encodeHeader(entry({ name: 'standby.signal', size: 3 })), Buffer.from('old'), Buffer.alloc(509),
    encodeHeader(entry({ name: 'PG_VERSION', size: 3 })), Buffer.from('15\n'), Buffer.alloc(509),
    encodeHeader(entry({ name: 'postgresql.auto.conf', size: conf.length })), conf, Buffer.alloc(512 - conf.length),
    TAR_END,
  ]);
  const rw = new TarRewriter({ tarName: 'base.tar', edit: new Map([['postgresql.auto.conf', (old: Buffer) => Buffer.concat([old, Buffer.from("primary_conninfo = 'new'\n")])]]), append: [{ name: 'standby.signal', content: Buffer.alloc(0) }] });
  const out = await collect(Readable.from([input.subarray(0, 700), input.subarray(700)]).pipe(rw));
  const p = new TarParser('base.tar');
  p.feed(out);
  const names: string[] = [];
  const sizes = new Map<string, number>();
  for (let ev = p.next(); ev; ev = p.next()) if (ev.kind === 'entry') { names.push(ev.entry.name); sizes.set(ev.entry.name, ev.entry.size); }
  assert.deepEqual(names.sort(), ['PG_VERSION', 'postgresql.auto.conf', 'standby.signal']);
  assert.equal(sizes.get('standby.signal'), 0);
  assert.equal(sizes.get('postgresql.auto.conf'), conf.length + "primary_conninfo = 'new'\n".length);
});

test('-t: "client" is the default said aloud; with a server target, -Z and -z without a location compress on the server (pg_basebackup)', async () => {
  const { parseBasebackupArgs } = await import('../../src/cli/commands/basebackup-args.js');
  const env = { PGHOST: '/tmp', PGPORT: '5432' };
  const client = parseBasebackupArgs(['-t', 'client', '-D', '/tmp/x', '-Ft', '-Z', 'gzip'], env).options;
  assert.deepEqual(client.target, { kind: 'directory', path: '/tmp/x' });
  assert.equal(client.compression?.location, 'client');
  for (const z of [['-Z', 'gzip'], ['-z'], ['-Z', 'zstd:5']]) {
    const server = parseBasebackupArgs(['-t', 'server:/srv/bk', '-X', 'fetch', ...z], env).options;
    assert.equal(server.compression?.location, 'server', z.join(' '));
  }
  assert.throws(() => parseBasebackupArgs(['-t', 'server:/srv/bk', '-X', 'fetch', '-Z', 'client-gzip'], env), /client-side compression is not possible when a backup target is specified/);
  assert.throws(() => parseBasebackupArgs(['-t', 'client:x', '-X', 'fetch'], env), /target "client" does not accept a target detail/);
});

test('pg_basebackup 17\'s --sync-method is accepted (each file is synced either way); --incremental is refused naming what to use', async () => {
  const { parseBasebackupArgs } = await import('../../src/cli/commands/basebackup-args.js');
  const env = { PGHOST: '/tmp', PGPORT: '5432' };
  for (const m of ['fsync', 'syncfs']) assert.equal(parseBasebackupArgs(['-D', '/tmp/x', '--sync-method', m], env).options.noSync, false);
  assert.throws(() => parseBasebackupArgs(['-D', '/tmp/x', '--sync-method', 'fdatasync'], env), /unrecognized sync method: fdatasync/);
  assert.throws(() => parseBasebackupArgs(['-D', '/tmp/x', '-N', '--sync-method', 'fsync'], env), /--sync-method cannot be used with --no-sync/);
  for (const i of [['-i', '/b/backup_manifest'], ['--incremental=/b/backup_manifest']]) {
    assert.throws(() => parseBasebackupArgs(['-D', '/tmp/x', ...i], env), (e: Error & { hint?: string }) => /--incremental .* is not supported/.test(e.message) && /pgpitr backup --type incr/.test(e.hint ?? ''));
  }
  assert.equal(parseBasebackupArgs(['-D/tmp/mydir'], env).options.target.kind, 'directory');
});

test('a tar member name that is not valid UTF-8 is refused, named, never decoded into another name (black-box run X)', () => {
  const h = encodeHeader({ name: 'cafe.conf', type: 'file', size: 0, mode: 0o600, mtime: 0, linkname: '' });
  h[3] = 0xe9; // 'caf\xe9.conf', a Latin-1 name; the checksum made again
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  assert.throws(() => decodeHeader(h), (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_CHECK' && /a file name in the backup that is not valid UTF-8/.test(e.message) && /rename it in UTF-8/.test(e.hint ?? ''));
});
