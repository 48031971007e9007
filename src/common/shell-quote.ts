// Words for /bin/sh: restore_command, and the commands pgpitr's messages tell a DBA to run.

/** `s` in single quotes, a single quote inside written '\'' (always quoted: restore_command). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `s` as it is when the shell would take it as one word unchanged, else quoted (a path in a hint). */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_/.,:@%+=-]+$/.test(s) ? s : shellQuote(s);
}
