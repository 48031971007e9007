// A compromised server must not make pgpitr write outside its target: a
// scripted peer (test/helpers/fake-walsender.ts) sends BASE_BACKUP streams no
// honest server sends (links the server did not announce, members written
// through a link, hard links, archive names with a path) and each run must
// fail with the documented code, name the member, remove what it created, and
// leave everything outside the target as it was. The peer speaks the layout of
// each tested version (15+: one COPY with 'n'/'d'; 13-14: one COPY per archive).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { FakeWalSender, craftTar } from '../helpers/fake-walsender.js';
import type { FakeArchive, FakeTablespace, TarMember } from '../helpers/fake-walsender.js';

for (const version of versionsFromEnv()) {
  const modern = version >= 15;
  const serverVersion = `${version}.4`;
  const tsDirName = `PG_${version}_202307071`;

  test(`streams that would write through a link are refused (scripted server speaking PostgreSQL ${version})`, async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'pgpitr-unsafe-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    // What must stay as it is: a directory outside every target, with a file in it.
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'original');
    const outsideIntact = () => {
      assert.deepEqual(readdirSync(outside), ['victim'], 'a file was created outside the target');
      assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'original', 'a file outside the target was overwritten');
    };
    /** Exit 5, the member named in one error line with a hint, nothing outside touched, the target removed. */
    const refused = (r: { code: number | null; stderr: string; target: string }, member: RegExp) => {
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, member);
      assert.match(r.stderr, /^pgpitr: hint: /m);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'a stack trace was printed');
      outsideIntact();
      assert.ok(!existsSync(r.target), 'the target was left behind');
    };
    let n = 0;

    /** One backup from the scripted server; archives are base plus, before it, those of tablespaces. */
    async function backup(opts: { base: TarMember[]; tablespaces?: FakeTablespace[]; extra?: FakeArchive[]; baseName?: string; args?: string[] }) {
      const caseDir = join(root, `case${++n}`);
      mkdirSync(caseDir);
      const archives: FakeArchive[] = [...(opts.extra ?? []), { name: opts.baseName ?? 'base.tar', tablespace: null, tar: craftTar(opts.base) }];
      const fake = await FakeWalSender.start(caseDir, 5432, { serverVersion, tablespaces: opts.tablespaces ?? [], archives });
      try {
        const target = join(caseDir, 'target');
        const r = await runPgpitr(['basebackup', '-D', target, '-X', 'none', '--no-sync', ...(opts.args ?? [])], fake.env, 60_000);
        assert.ok(fake.queries.some((q) => q.startsWith('BASE_BACKUP')), `pgpitr did not get to BASE_BACKUP: ${r.stderr}`);
        return { ...r, target, caseDir };
      } finally {
        await fake.stop();
      }
    }

    await t.test('an honest stream with a tablespace is extracted (the scripted server is sound)', async () => {
      const tsOld = join(root, 'ts-honest-old');
      const tsNew = join(root, 'ts-honest-new');
      const ts = { oid: 16385, location: tsOld };
      const r = await backup({
        tablespaces: [ts],
        extra: [{ name: '16385.tar', tablespace: ts, tar: craftTar([{ name: `${tsDirName}/`, type: 'directory' }, { name: `${tsDirName}/16384/`, type: 'directory' }, { name: `${tsDirName}/16384/16386`, content: 'table' }]) }],
        base: [
          { name: 'PG_VERSION', content: `${version}\n` },
          { name: 'base/', type: 'directory' },
          { name: 'base/1/', type: 'directory' },
          { name: 'base/1/1259', content: 'catalog' },
          { name: 'pg_tblspc/', type: 'directory' },
          { name: 'pg_tblspc/16385', type: 'symlink', linkname: tsOld },
          { name: 'pg_wal/', type: 'directory' },
        ],
        args: ['-T', `${tsOld}=${tsNew}`],
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readFileSync(join(r.target, 'base/1/1259'), 'utf8'), 'catalog');
      assert.equal(readlinkSync(join(r.target, 'pg_tblspc/16385')), tsNew);
      assert.equal(readFileSync(join(tsNew, `${tsDirName}/16384/16386`), 'utf8'), 'table');
      assert.ok(!existsSync(tsOld), 'the unmapped tablespace location was written');
    });

    await t.test('modes a stream gives are kept, but never one that lets group or others write', async () => {
      const r = await backup({
        base: [
          { name: 'PG_VERSION', content: `${version}\n`, mode: 0o644 },
          { name: 'base/', type: 'directory', mode: 0o777 },
          { name: 'base/1/', type: 'directory', mode: 0o700 },
          { name: 'base/1/1259', content: 'catalog', mode: 0o666 },
          { name: 'pg_wal/', type: 'directory', mode: 0o700 },
        ],
      });
      assert.equal(r.code, 0, r.stderr);
      const mode = (p: string) => lstatSync(join(r.target, p)).mode & 0o7777;
      assert.equal(mode('PG_VERSION'), 0o644);
      assert.equal(mode('base'), 0o755);
      assert.equal(mode('base/1'), 0o700);
      assert.equal(mode('base/1/1259'), 0o644);
    });

    await t.test('a tablespace link the server did not announce, then a file through it', async () => {
      const r = await backup({
        base: [
          { name: 'PG_VERSION', content: `${version}\n` },
          { name: 'pg_tblspc/', type: 'directory' },
          { name: 'pg_tblspc/99999', type: 'symlink', linkname: outside },
          { name: 'pg_tblspc/99999/victim', content: 'pwned' },
        ],
      });
      refused(r, /pg_tblspc\/99999/);
    });

    await t.test('a file written through the link of an announced tablespace', async () => {
      const tsOld = join(root, 'ts-through-old');
      const tsNew = join(root, 'ts-through-new');
      const ts = { oid: 16385, location: tsOld };
      const r = await backup({
        tablespaces: [ts],
        extra: [{ name: '16385.tar', tablespace: ts, tar: craftTar([{ name: `${tsDirName}/`, type: 'directory' }]) }],
        base: [
          { name: 'pg_tblspc/', type: 'directory' },
          { name: 'pg_tblspc/16385', type: 'symlink', linkname: tsOld },
          { name: `pg_tblspc/16385/${tsDirName}/victim`, content: 'pwned' },
        ],
        args: ['-T', `${tsOld}=${tsNew}`],
      });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /pg_tblspc\/16385\//);
      assert.ok(!existsSync(join(tsNew, tsDirName, 'victim')), 'a member was written through the tablespace link');
      assert.ok(!existsSync(tsNew) && !existsSync(tsOld), 'a tablespace directory was left behind');
      assert.ok(!existsSync(r.target));
    });

    await t.test('a symbolic link with an ordinary name, then a file through it', async () => {
      const r = await backup({
        base: [
          { name: 'base/', type: 'directory' },
          { name: 'base/evil', type: 'symlink', linkname: outside },
          { name: 'base/evil/victim', content: 'pwned' },
        ],
      });
      refused(r, /base\/evil/);
    });

    await t.test('a hard link member', async () => {
      const r = await backup({
        base: [
          { name: 'base/', type: 'directory' },
          { name: 'base/hl', type: 'hardlink', linkname: join(outside, 'victim') },
          { name: 'base/hl', content: 'pwned' },
        ],
      });
      refused(r, /base\/hl/);
    });

    await t.test('a member named like the file the run writes is left out, never written over it', async () => {
      // A real server sends one when the source was made by pgpitr basebackup (a standby made with -R):
      // the source's own state file is not part of the backup (backup/own-files.ts).
      const r = await backup({ base: [{ name: 'pgpitr_backup.state', content: '{"status":"complete"}' }] });
      assert.equal(r.code, 0, r.stderr);
      const state = JSON.parse(readFileSync(join(r.target, 'pgpitr_backup.state'), 'utf8')) as { format?: string };
      assert.equal(state.format, 'pgpitr-backup-state', 'the member was written over the run\'s state file');
    });

    await t.test('an archive for a tablespace the server did not list', { skip: !modern && 'before 15 the client names and places archives itself' }, async () => {
      const r = await backup({
        extra: [{ name: '99999.tar', tablespace: { oid: 99999, location: outside }, tar: craftTar([{ name: 'victim', content: 'pwned' }]) }],
        base: [{ name: 'PG_VERSION', content: `${version}\n` }],
      });
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /99999\.tar/);
      outsideIntact();
      assert.ok(!existsSync(r.target));
    });

    await t.test('an archive name with a path (tar format)', { skip: !modern && 'before 15 the client names archives itself' }, async () => {
      const r = await backup({ baseName: '../escape.tar', base: [{ name: 'PG_VERSION', content: `${version}\n` }], args: ['-Ft'] });
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /\.\.\/escape\.tar/);
      assert.ok(!existsSync(join(r.caseDir, 'escape.tar')), 'an archive was written outside the target');
      assert.ok(!existsSync(r.target));
    });

    await t.test('a symbolic link that is not a tablespace in a tablespace archive', async () => {
      const tsOld = join(root, 'ts-link-old');
      const tsNew = join(root, 'ts-link-new');
      const ts = { oid: 16390, location: tsOld };
      const r = await backup({
        tablespaces: [ts],
        extra: [{ name: '16390.tar', tablespace: ts, tar: craftTar([{ name: tsDirName, type: 'symlink', linkname: outside }, { name: `${tsDirName}/victim`, content: 'pwned' }]) }],
        base: [{ name: 'pg_tblspc/', type: 'directory' }, { name: 'pg_tblspc/16390', type: 'symlink', linkname: tsOld }],
        args: ['-T', `${tsOld}=${tsNew}`],
      });
      refused(r, new RegExp(tsDirName));
      assert.ok(!existsSync(tsNew));
      assert.ok(!lstatSync(outside).isSymbolicLink());
    });
  });
}
