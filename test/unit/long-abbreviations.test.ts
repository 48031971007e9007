// Long options abbreviated as getopt_long takes them (cli/long-abbreviations.ts), for the drop-in
// commands: a unique prefix stands for its option, an exact name wins, several are refused, and
// option values and what follows "--" are never rewritten.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { expandLongAbbreviations } from '../../src/cli/long-abbreviations.js';
import { parseBasebackupArgs } from '../../src/cli/commands/basebackup-args.js';

const spec = {
  pgdata: { type: 'string', short: 'D' },
  progress: { type: 'boolean', short: 'P' },
  'progress-format': { type: 'string' },
  label: { type: 'string', short: 'l' },
  verbose: { type: 'boolean', short: 'v' },
  version: { type: 'boolean', short: 'V' },
} as const;

test('a unique prefix stands for its option, with its value inline or next; an exact name wins over longer ones', () => {
  assert.deepEqual(expandLongAbbreviations(['--pgd', '/x', '--lab=nightly', '--verb', '--progress'], spec, 't'), ['--pgdata', '/x', '--label=nightly', '--verbose', '--progress']);
  assert.deepEqual(expandLongAbbreviations(['--progress-f', 'json'], spec, 't'), ['--progress-format', 'json']);
});

test('values are never rewritten: after a long or short option that takes one, in a short cluster, and after "--"', () => {
  assert.deepEqual(expandLongAbbreviations(['--label', '--verb', '-D', '--pgd', '-vPl', '--ver', '-Dx', '--', '--pgd'], spec, 't'), ['--label', '--verb', '-D', '--pgd', '-vPl', '--ver', '-Dx', '--', '--pgd']);
});

test('a prefix of several options is refused naming them; an unknown one is left to the parser', () => {
  assert.throws(() => expandLongAbbreviations(['--ver'], spec, 'basebackup'), /option "--ver" is ambiguous: --verbose, --version/);
  assert.deepEqual(expandLongAbbreviations(['--nothing'], spec, 't'), ['--nothing']);
});

test("a prefix the tool takes for one of its own options still means it beside pgpitr's additions", () => {
  assert.deepEqual(expandLongAbbreviations(['--prog', '--progress-f=json'], spec, 't', ['progress-format']), ['--progress', '--progress-format=json']);
  assert.throws(() => expandLongAbbreviations(['--ver'], spec, 't', ['progress-format']), /ambiguous: --verbose, --version/);
});

test('pgpitr basebackup takes what pg_basebackup takes: --checkp=fast, --pgd, --wal-m stream, --prog; --incr is refused as --incremental', () => {
  assert.throws(() => parseBasebackupArgs(['-D', '/tmp/x', '--incr=/tmp/m'], {}), /-i\/--incremental .* is not supported/);
  assert.equal(parseBasebackupArgs(['-D', '/tmp/x', '--prog'], {}).options.progress, true);
  const p = parseBasebackupArgs(['--pgd', '/tmp/x', '--checkp=fast', '--wal-m', 'stream', '--no-sy'], {});
  assert.equal(p.options.fastCheckpoint, true);
  assert.deepEqual(p.options.target, { kind: 'directory', path: '/tmp/x' });
  assert.equal(p.options.walMethod, 'stream');
  assert.equal(p.options.noSync, true);
});
