// restore writes a restore_command that runs archive-get, which reads the configuration file's
// sections as archive-get ([stanza:archive-get], [stanza], [global:archive-get], [global]), never
// restore's own; secrets are never passed on the command line. Which secrets restore read that
// archive-get would not.

import { configForCommand, configValue, SECRET_REPO_KEYS } from '../common/config-file.js';
import type { ConfigSections } from '../common/config-file.js';
import { envName } from '../repo/repo-settings.js';
import type { RepoSettings } from '../repo/repo-settings.js';

/** The repositories' secrets `config` (the file as `command` reads it) gives otherwise than archive-get's reading of the same file. */
export function secretsOnlyFor(loaded: ConfigSections, config: ConfigSections, stanza: string, repos: RepoSettings[], env: NodeJS.ProcessEnv): string[] {
  const theirs = configForCommand(loaded, 'archive-get');
  const out: string[] = [];
  for (const r of repos) {
    for (const key of SECRET_REPO_KEYS) {
      const name = `repo${r.index}-${key}`;
      if (env[envName(r.index, key)] !== undefined) continue;
      const mine = configValue(config, stanza || undefined, name);
      if (mine !== undefined && mine !== configValue(theirs, stanza || undefined, name)) out.push(name);
    }
  }
  return out;
}
