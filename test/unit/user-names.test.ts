// Names and values users give: an annotation or a backup label shown in a text report stays on its line
// (cli/output.ts oneLine): a newline in it cannot forge another line of the report; a stanza name
// (repo/layout.ts) never names a path elsewhere nor one of the repository's own files.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { oneLine } from '../../src/cli/output.js';

test('oneLine escapes control characters and leaves the rest', () => {
  assert.equal(oneLine('ticket=OPS-42 é'), 'ticket=OPS-42 é');
  assert.equal(oneLine('x\n    full backup 20991231-000000F: complete'), 'x\\n    full backup 20991231-000000F: complete');
  assert.equal(oneLine('a\tb\rc\u0007\u007f'), 'a\\tb\\rc\\x07\\x7f');
});

test('stanza names: path characters, the repository\'s own file names and over-long names are refused', async () => {
  const { checkNewStanzaName, stanzaPath } = await import('../../src/repo/layout.js');
  assert.equal(stanzaPath('main-16'), 'main-16');
  for (const bad of ['../x', 'a/b', '..', 'pgpitr-repo.json', 'pgpitr-repo.json.copy', 'repository.lock', 'x'.repeat(256)]) {
    assert.throws(() => stanzaPath(bad), (e: { code?: string; message: string }) => e.code === 'ERR_USAGE' && /invalid stanza name/.test(e.message), bad);
  }
  // An existing stanza of such a name stays usable; a new one is refused.
  for (const odd of ['x'.repeat(129), 'main.tmp-1', 'pgpitr-probe-x', 'repository.lock.takeover']) {
    assert.equal(stanzaPath(odd), odd);
    assert.throws(() => checkNewStanzaName(odd), /invalid stanza name .* for a new stanza/, odd);
  }
  checkNewStanzaName('x'.repeat(128));
  checkNewStanzaName('pgpitr-main');
});
