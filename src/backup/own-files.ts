// pgpitr's own files at the top of a plain backup: the state file and the
// parallel copy journal. A data directory made by `pgpitr basebackup -Fp` (a
// standby made with -R, any copy started where it was written) keeps its state
// file, so a backup of that cluster meets it among the server's files. It is
// never part of the new backup: it describes the backup that made the source,
// and the new target has its own, which it must not replace.

import { STATE_FILE_NAME } from './state-file.js';
import { JOURNAL_NAME } from './parallel/copy-journal.js';

/** Names, relative to the main data directory, that a backup leaves out. */
export const OWN_FILES: ReadonlySet<string> = new Set([STATE_FILE_NAME, JOURNAL_NAME]);
