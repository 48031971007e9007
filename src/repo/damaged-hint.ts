// What to do about an archived file whose stored copy fails its checks. A push of
// that name finds it there (by name, as pgBackRest's) and leaves it: a good copy
// goes in only once the damaged one is out.

export const DAMAGED_ARCHIVED_FILE_HINT =
  "the repository file is damaged: move it out of the archive, then push a good copy again (pgpitr archive-push PATH: the server's pg_wal may still hold it), or restore it from another copy of the archive";
