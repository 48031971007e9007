// archive_command's length as the server runs it. PostgreSQL 15 and older build the command,
// %p and %f replaced, into a buffer of MAXPGPATH (1024) bytes and cut what does not fit, without a
// word: the asynchronous form with long paths (a spool, a repository, a configuration file) then
// loses its last arguments, and every archive_command fails (black-box run X: check said it was ok).

const MAXPGPATH = 1024;
/** %p as the archiver passes it (pg_wal/ and a segment's name), %f (the name). */
const P_LENGTH = 'pg_wal/'.length + 24;
const F_LENGTH = 24;

/** The command's length once %p and %f are replaced, when a server of `versionNum` cuts it; else null. */
export function cutByServer(cmd: string, versionNum: number): number | null {
  if (versionNum >= 160000) return null;
  let n = 0;
  for (let i = 0; i < cmd.length; i++) {
    const next = cmd[i + 1];
    if (cmd[i] === '%' && (next === 'p' || next === 'f' || next === '%')) {
      n += next === 'p' ? P_LENGTH : next === 'f' ? F_LENGTH : 1;
      i++;
    } else n += Buffer.byteLength(cmd[i]!);
  }
  return n > MAXPGPATH - 1 ? n : null;
}
