// libpq's connection keywords (PostgreSQL 18's list), with their environment
// variables, and what pgpitr does with each. A keyword outside this list is refused
// ('invalid connection option "x"', as libpq says); a keyword in it is either acted
// on, accepted because ignoring it cannot weaken the connection, or refused with a
// hint when its value asks for something pgpitr does not do (silently ignoring
// require_auth=scram-sha-256 or gssencmode=require would loosen the connection).

export type KeywordTreatment =
  /** pgpitr acts on it (see conninfo.ts, tls-options.ts, pgpass.ts). */
  | { kind: 'used' }
  /** Accepted and ignored: it cannot make the connection less safe. */
  | { kind: 'ignored' }
  /** Accepted only with one of these values (the default first); others are not supported. */
  | { kind: 'only'; values: readonly string[] }
  /** Not supported at all: any value is refused. */
  | { kind: 'unsupported' };

export interface KeywordInfo {
  env?: string;
  treatment: KeywordTreatment;
}

const used = { kind: 'used' } as const;
const ignored = { kind: 'ignored' } as const;
const unsupported = { kind: 'unsupported' } as const;
const only = (...values: string[]): KeywordTreatment => ({ kind: 'only', values });

export const LIBPQ_KEYWORDS: ReadonlyMap<string, KeywordInfo> = new Map<string, KeywordInfo>([
  ['host', { env: 'PGHOST', treatment: used }],
  ['hostaddr', { env: 'PGHOSTADDR', treatment: used }],
  ['port', { env: 'PGPORT', treatment: used }],
  ['dbname', { env: 'PGDATABASE', treatment: used }],
  ['user', { env: 'PGUSER', treatment: used }],
  ['password', { env: 'PGPASSWORD', treatment: used }],
  ['passfile', { env: 'PGPASSFILE', treatment: used }],
  ['service', { env: 'PGSERVICE', treatment: used }], // read in service-file.ts
  ['connect_timeout', { env: 'PGCONNECT_TIMEOUT', treatment: used }],
  ['application_name', { env: 'PGAPPNAME', treatment: used }],
  ['fallback_application_name', { treatment: used }],
  ['options', { env: 'PGOPTIONS', treatment: used }],
  ['sslmode', { env: 'PGSSLMODE', treatment: used }],
  ['requiressl', { env: 'PGREQUIRESSL', treatment: used }],
  ['sslnegotiation', { env: 'PGSSLNEGOTIATION', treatment: used }],
  ['sslrootcert', { env: 'PGSSLROOTCERT', treatment: used }],
  ['sslcert', { env: 'PGSSLCERT', treatment: used }],
  ['sslkey', { env: 'PGSSLKEY', treatment: used }],
  ['sslpassword', { treatment: used }],
  ['sslcrl', { env: 'PGSSLCRL', treatment: used }],
  ['sslsni', { env: 'PGSSLSNI', treatment: ignored }], // node-postgres always sends SNI for a host name; it only names the host
  ['ssl_min_protocol_version', { env: 'PGSSLMINPROTOCOLVERSION', treatment: used }],
  ['ssl_max_protocol_version', { env: 'PGSSLMAXPROTOCOLVERSION', treatment: used }],
  // We always send replication=true (or database) as pg_basebackup and pg_receivewal do.
  ['replication', { treatment: ignored }],
  // Our sessions always use UTF8, which every server encoding converts to.
  ['client_encoding', { env: 'PGCLIENTENCODING', treatment: ignored }],
  // TCP keepalives are on unless keepalives=0, as libpq's (pg-client.ts); Node sets their start only:
  // interval, count and tcp_user_timeout stay the system's.
  ['keepalives', { treatment: used }],
  ['keepalives_idle', { treatment: used }],
  ['keepalives_interval', { treatment: ignored }],
  ['keepalives_count', { treatment: ignored }],
  ['tcp_user_timeout', { treatment: ignored }],
  ['sslcompression', { env: 'PGSSLCOMPRESSION', treatment: ignored }], // ignored by libpq too since OpenSSL dropped it
  ['sslkeylogfile', { treatment: ignored }], // a debugging aid
  ['krbsrvname', { env: 'PGKRBSRVNAME', treatment: ignored }], // only used by GSSAPI, which pgpitr does not do
  ['gsslib', { env: 'PGGSSLIB', treatment: ignored }],
  ['gssdelegation', { env: 'PGGSSDELEGATION', treatment: ignored }],
  ['load_balance_hosts', { env: 'PGLOADBALANCEHOSTS', treatment: ignored }], // one host: nothing to balance
  ['min_protocol_version', { env: 'PGMINPROTOCOLVERSION', treatment: only('3.0') }],
  ['max_protocol_version', { env: 'PGMAXPROTOCOLVERSION', treatment: ignored }], // we speak 3.0, which every server accepts
  ['gssencmode', { env: 'PGGSSENCMODE', treatment: only('prefer', 'disable') }],
  ['channel_binding', { env: 'PGCHANNELBINDING', treatment: only('prefer', 'disable') }], // prefer: SCRAM-SHA-256-PLUS over TLS (pg-client.ts)
  ['sslcertmode', { env: 'PGSSLCERTMODE', treatment: only('allow', 'disable') }],
  ['target_session_attrs', { env: 'PGTARGETSESSIONATTRS', treatment: only('any') }],
  ['require_auth', { env: 'PGREQUIREAUTH', treatment: unsupported }],
  ['requirepeer', { env: 'PGREQUIREPEER', treatment: unsupported }],
  ['sslcrldir', { env: 'PGSSLCRLDIR', treatment: unsupported }],
  ['scram_client_key', { treatment: unsupported }],
  ['scram_server_key', { treatment: unsupported }],
  ['oauth_issuer', { treatment: unsupported }],
  ['oauth_client_id', { treatment: unsupported }],
  ['oauth_client_secret', { treatment: unsupported }],
  ['oauth_scope', { treatment: unsupported }],
]);
