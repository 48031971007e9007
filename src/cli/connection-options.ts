// libpq-style connection flags shared by every command that talks to a server.

export const connectionOptionSpec = {
  dbname: { type: 'string', short: 'd' },
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  username: { type: 'string', short: 'U' },
} as const;
